"""``forge generate ARTIFACT --prompt TEXT``: text from a causal language model, streamed.

A built-in plugin (its ``forge_register_commands`` adds the command). The artifact's task must
be ``text``: the prompt is encoded with the tokenizer the model trained with (bytes, or its BPE
from the cache), each new token runs the model's ``n_sup_inference`` supervision steps (``--n-sup``
overrides) on the last ``seq_len`` tokens, and its text goes to stdout as it is produced.
``--temperature 0`` is the argmax (no randomness); above 0 a draw, among the ``--top-k`` likeliest
tokens when given, from a generator seeded by ``--seed``: the same seed gives the same text.
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


def generate_text(model: torch.nn.Module, tokenizer: Any, seq_len: int, prompt: str, *, max_tokens: int,
                  temperature: float, top_k: int | None, seed: int | None, n_sup: int | None = None,
                  write: Callable[[str], None] | None = None) -> str:
    """The continuation of ``prompt`` as text; ``write`` receives it piece by piece as tokens come
    (bytes that do not yet form a whole UTF-8 character wait for the next token)."""
    from agent_forge.phases.common.evaluation import generate_tokens, inference_steps

    if temperature < 0:
        raise ConfigError(f"--temperature {temperature}: give 0 (argmax) or more")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"--top-k {top_k}: give 1 or more, or leave it out (every token)")
    ids = tokenizer.encode(prompt) or [tokenizer.eos]  # an empty prompt starts a new document
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

    generate_tokens(model, torch.tensor([ids]), max_tokens, n_sup=n_sup or inference_steps(model), seq_len=seq_len,
                    device=torch.device("cpu"), temperature=temperature, top_k=top_k, generator=generator,
                    stop_token=tokenizer.eos, on_token=on_token)
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
) -> None:
    """Continue --prompt with a text model, streaming the new text to stdout."""
    from agent_forge.plugin_host import get_host

    model, tokenizer, seq_len = load_generator(get_host(), artifact)

    def write(piece: str) -> None:
        sys.stdout.write(piece)
        sys.stdout.flush()

    generate_text(model, tokenizer, seq_len, prompt, max_tokens=max_tokens, temperature=temperature, top_k=top_k,
                  seed=seed, n_sup=n_sup, write=write)
    sys.stdout.write("\n")


@hookimpl
def forge_register_commands(cli):
    cli.command("generate")(generate)
