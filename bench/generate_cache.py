"""Generation with and without the cache across tokens (issue 30), interleaved in one process.

``forge generate`` keeps every network application's keys and values across tokens
(``--cache``, the default) or recomputes the window for every token (``--no-cache``). This times
both on the same model and prompt, alternating A B B A A B ... so that a change in the machine's
load hits both alike, checks that they produce the same tokens, and prints tokens per second of
each (the whole generation, the prompt's first pass included), their ratio per round and the load
average before and after. Report ratios, not speeds: the speeds measure the load as much as the code.

    # a trained artifact (task 'text'):
    .venv/bin/python bench/generate_cache.py --artifact runs/lm64/artifacts/model-0.json
    # random weights of a given shape (speed does not depend on the weights):
    .venv/bin/python bench/generate_cache.py --d-model 256 --seq-len 256 --prompt-len 192 --new-tokens 32
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch

from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate
from agent_forge.phases.common.evaluation import generate_tokens, inference_steps


def load_avg() -> str:
    """The 1, 5 and 15 minute load averages (Linux), or n/a."""
    path = Path("/proc/loadavg")
    return " ".join(path.read_text().split()[:3]) if path.exists() else "n/a"


def build(args: argparse.Namespace) -> tuple[torch.nn.Module, int, int, str]:
    """(model, seq_len, vocab, description)."""
    if args.artifact:
        from agent_forge.plugin_host import get_host
        from agent_forge.plugins.generate import load_generator

        model, tokenizer, seq_len = load_generator(get_host(), Path(args.artifact))
        cfg = model.cfg
        vocab = model.head.weight.shape[0]
        what = f"artifact {args.artifact}"
    else:
        torch.manual_seed(0)
        cfg = TRMConfig(d_model=args.d_model, n_layers=args.n_layers, n_heads=args.heads, n_kv_heads=args.kv_heads,
                        n=args.n, T=args.T, n_sup=args.n_sup, halting_head=False, step_scales=True)
        seq_len, vocab = args.seq_len, args.vocab
        model = TRMEnhancedCognate(cfg, vocab_size=vocab, seq_len=seq_len, causal=True)
        what = "random weights"
    params = sum(p.numel() for p in model.parameters())
    what += (f": d_model {cfg.d_model}, {cfg.n_layers} layers, {cfg.n_heads} heads ({cfg.n_kv_heads or cfg.n_heads}"
             f" KV), n {cfg.n}, T {cfg.T}, n_sup {inference_steps(model)}, seq_len {seq_len}, vocab {vocab},"
             f" {params:,} parameters")
    return model.eval(), seq_len, vocab, what


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--artifact", help="A text model's manifest; else random weights of the shape below.")
    ap.add_argument("--d-model", type=int, default=64)
    ap.add_argument("--n-layers", type=int, default=2)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--n", type=int, default=2)
    ap.add_argument("--T", type=int, default=1)
    ap.add_argument("--n-sup", type=int, default=4)
    ap.add_argument("--seq-len", type=int, default=64)
    ap.add_argument("--vocab", type=int, default=257)
    ap.add_argument("--prompt-len", type=int, default=8)
    ap.add_argument("--new-tokens", type=int, default=56, help="New tokens per generation (past seq_len - prompt"
                                                                " the window slides).")
    ap.add_argument("--rounds", type=int, default=4, help="Pairs of runs (A B, then B A, ...).")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: the least exposed to the load).")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, seq_len, vocab, what = build(args)
    n_sup = inference_steps(model)
    prompt = torch.randint(0, vocab, (1, args.prompt_len), generator=torch.Generator().manual_seed(0))
    print("command:", shlex.join([".venv/bin/python", "bench/generate_cache.py", *sys.argv[1:]]))
    print(what)
    print(f"prompt {args.prompt_len} tokens, {args.new_tokens} new (greedy), {args.threads} thread(s);"
          f" the window slides after {max(seq_len - args.prompt_len, 0)} new tokens")
    cache_mb = model.cache_bytes(1, min(args.prompt_len + args.new_tokens - 1, seq_len), n_sup) / 2**20
    print(f"cache: {cache_mb:.1f} MiB; load average before: {load_avg()}")

    def run(cache: bool) -> tuple[float, torch.Tensor]:
        start = time.perf_counter()
        out = generate_tokens(model, prompt, args.new_tokens, n_sup=n_sup, seq_len=seq_len,
                              device=torch.device("cpu"), cache=cache)
        return args.new_tokens / (time.perf_counter() - start), out

    rates: dict[bool, list[float]] = {False: [], True: []}
    ratios = []
    for r in range(args.rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        outs = {}
        for cache in order:
            rate, outs[cache] = run(cache)
            rates[cache].append(rate)
        same = torch.equal(outs[True], outs[False])
        ratios.append(rates[True][-1] / rates[False][-1])
        print(f"round {r + 1}: uncached {rates[False][-1]:.2f} tok/s, cached {rates[True][-1]:.2f} tok/s,"
              f" ratio {ratios[-1]:.2f}, same tokens: {same}", flush=True)
        if not same:
            sys.exit("cached and uncached tokens differ")
    print(f"median: uncached {statistics.median(rates[False]):.2f} tok/s, cached {statistics.median(rates[True]):.2f}"
          f" tok/s; ratio median {statistics.median(ratios):.2f} (min {min(ratios):.2f}, max {max(ratios):.2f})")
    print(f"load average after: {load_avg()}")


if __name__ == "__main__":
    main()
