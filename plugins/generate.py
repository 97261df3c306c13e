"""``forge generate ARTIFACT --prompt TEXT``: text from a causal language model, streamed.

A built-in plugin (its ``forge_register_commands`` adds the command). The artifact's task must
be ``text``: the prompt is encoded with the tokenizer the model trained with (bytes, or its BPE
from the cache), each new token runs the model's ``n_sup_inference`` supervision steps (``--n-sup``
overrides) on the last ``seq_len`` tokens, and its text goes to stdout as it is produced.
``--temperature 0`` is the argmax (no randomness); above 0 a draw, among the ``--top-k`` likeliest
tokens when given, from a generator seeded by ``--seed``: the same seed gives the same text.

A cache across tokens (``--cache``, on by default where the model allows it) keeps the keys and
values of every network application, so each token computes only its own position until the
window slides (:func:`~agent_forge.phases.common.evaluation.generate_tokens`); the same text, at a
fraction of the compute (docs/cognate.md, "Generation"; docs/performance.md measures it).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Optional

import torch
import typer

from agent_forge import hookimpl
from agent_forge.config import validate
from agent_forge.errors import ConfigError


def load_generator(host: Any, artifact_path: Path) -> tuple[torch.nn.Module, Any, int]:
    """``(model, tokenizer, seq_len)`` for a text artifact; a ConfigError for any other task."""
    from agent_forge.phases.common.loading import load_model
    from agent_forge.plugins.datasets.text import TextConfig, tokenizer_for

    artifact, model = load_model(host, artifact_path)
    dataset = artifact.task.info.get("dataset") or {"name": artifact.task.name, "config": {}}
    if dataset["name"] != "text" or not artifact.task.causal:
        raise ConfigError(f"forge generate: {artifact_path} was trained on task {dataset['name']!r}; it needs a"
                          " causal language model trained on task 'text' (e.g. --variant lm_conservative)")
    cfg = validate(TextConfig, dataset["config"], "task")
    tokenizer = tokenizer_for(cfg, int(artifact.task.info.get("data_seed", 0)), artifact.task.info.get("bpe_sha"))
    return model, tokenizer, artifact.task.seq_len


#: Default of ``--cache-max-mb``: the largest cache across tokens ``forge generate`` allocates.
CACHE_MAX_MB = 2048


def use_cache(model: torch.nn.Module, cache: bool | None, *, positions: int, n_sup: int, max_mb: float,
              note: Callable[[str], None] | None = None) -> bool:
    """Whether to generate with a cache across tokens. ``cache`` None (the default): where the model
    supports one and it fits ``max_mb``, else without (``note`` says why); True: the same, but a
    ConfigError where it cannot; False: never."""
    if cache is False:
        return False
    refusal = model.cache_refusal() if hasattr(model, "cache_refusal") else (
        f"{type(model).__name__} has no cached decoding (a causal TRM has)")
    if refusal is None:
        need = model.cache_bytes(1, positions, n_sup) / 2**20
        if need > max_mb:
            shown = f"{need:,.0f}" if need >= 10 else f"{need:.2g}"
            refusal = (f"it would take {shown} MiB ({positions} positions x {n_sup} supervision steps), over"
                       f" --cache-max-mb {max_mb:g}; raise --cache-max-mb, lower --max-tokens or --n-sup, or pass"
                       " --no-cache")
    if refusal is None:
        return True
    if cache:
        raise ConfigError(f"forge generate --cache: no cache across tokens: {refusal}")
    if note is not None:
        note(f"forge generate: no cache across tokens ({refusal}); every token recomputes the window")
    return False


def generate_text(model: torch.nn.Module, tokenizer: Any, seq_len: int, prompt: str, *, max_tokens: int,
                  temperature: float, top_k: int | None, seed: int | None, n_sup: int | None = None,
                  write: Callable[[str], None] | None = None, cache: bool | None = None,
                  cache_max_mb: float = CACHE_MAX_MB, note: Callable[[str], None] | None = None) -> str:
    """The continuation of ``prompt`` as text; ``write`` receives it piece by piece as tokens come
    (bytes that do not yet form a whole UTF-8 character wait for the next token). ``cache``,
    ``cache_max_mb`` and ``note`` as in :func:`use_cache`; the text is the same either way."""
    from agent_forge.phases.common.evaluation import cache_positions, generate_tokens, inference_steps

    if temperature < 0:
        raise ConfigError(f"--temperature {temperature}: give 0 (argmax) or more")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"--top-k {top_k}: give 1 or more, or leave it out (every token)")
    ids = tokenizer.encode(prompt) or [tokenizer.eos]  # an empty prompt starts a new document
    n_sup = n_sup or inference_steps(model)
    cached = use_cache(model, cache, positions=cache_positions(len(ids), max_tokens, seq_len), n_sup=n_sup,
                       max_mb=cache_max_mb, note=note)
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    produced: list[int] = []
    shown = ""

    def on_token(tok: torch.Tensor) -> None:
        nonlocal shown
        produced.append(int(tok[0]))
        text = tokenizer.decode(produced)
        # A partial UTF-8 sequence decodes to U+FFFD at the end: hold it back until it completes.
        stable = text.rstrip("\ufffd")
        if write is not None and len(stable) > len(shown) and stable.startswith(shown):
            write(stable[len(shown):])
            shown = stable

    generate_tokens(model, torch.tensor([ids]), max_tokens, n_sup=n_sup, seq_len=seq_len,
                    device=torch.device("cpu"), temperature=temperature, top_k=top_k, generator=generator,
                    stop_token=tokenizer.eos, on_token=on_token, cache=cached)
    text = tokenizer.decode(produced)
    if write is not None and text.startswith(shown) and len(text) > len(shown):
        write(text[len(shown):])
    return text


def generate(
    artifact: Path = typer.Argument(..., help="Artifact manifest (.json) of a model trained on task 'text'."),
    prompt: str = typer.Option(..., "--prompt", help="Text to continue."),
    max_tokens: int = typer.Option(64, "--max-tokens", min=1, help="Most new tokens (stops early at end of document)."),
    temperature: float = typer.Option(0.8, "--temperature", min=0.0, help="0: argmax; higher: more random."),
    top_k: Optional[int] = typer.Option(None, "--top-k", min=1, help="Sample among the K likeliest tokens only."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the sampler: the same seed, the same text."),
    n_sup: Optional[int] = typer.Option(None, "--n-sup", min=1,
                                        help="Supervision steps per token (default: the model's n_sup_inference)."),
    cache: Optional[bool] = typer.Option(
        None, "--cache/--no-cache",
        help="Keep every recursion step's attention keys and values across tokens, so a token computes only its"
             " own position until the window slides (the same text). Default: on where the model allows it"
             " (a causal TRM without a filled memory bank) and it fits --cache-max-mb, with a note on stderr"
             " where not; --cache: an error instead of the note."),
    cache_max_mb: float = typer.Option(
        CACHE_MAX_MB, "--cache-max-mb", min=0.0,
        help="Largest cache to allocate, in MiB (2**20 bytes); it takes n_sup*T*(n+1)*n_layers slots x 2 x"
             " n_kv_heads*head_dim x 4 bytes per token of the window."),
) -> None:
    """Continue --prompt with a text model, streaming the new text to stdout.

    Each token runs the model's whole recursion; by default a cache across tokens makes it compute
    only the new position (--no-cache: recompute the window every token, for comparison)."""
    from agent_forge.plugin_host import get_host

    model, tokenizer, seq_len = load_generator(get_host(), artifact)

    def write(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    def note(line: str) -> None:
        sys.stderr.write(line + "\n")

    generate_text(model, tokenizer, seq_len, prompt, max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                  seed=seed, n_sup=n_sup, write=write, cache=cache, cache_max_mb=cache_max_mb, note=note)
    sys.stdout.write("\n")


@hookimpl
def forge_register_commands(cli):
    cli.command("generate")(generate)
