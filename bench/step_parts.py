"""The small parts of a training step, each timed against the whole step: the optimizer
(torch's AdamW as a per-parameter loop, ``foreach`` and ``fused``), the EMA update (a ``lerp_``
per parameter, as ``callbacks.ema`` does, against one ``torch._foreach_lerp_``), and the batch
refill (data draw and augmentation), and the evaluation the trainer runs every
``trainer.eval_every`` steps.

    .venv/bin/python bench/step_parts.py [--shape nanotrm_port | --variant trm_small] [--repeats 20] [--rounds 5]

Builds the trainer as ``bench/throughput.py`` does and takes two steps so gradients and Adam's
moments exist. Each candidate then works on its own copy of the parameters (with the same
gradients), so none disturbs the others; the blocks run interleaved, ``--rounds`` times, and the
medians are printed in milliseconds and as a share of the median training step measured in the
same rounds. Not a test: on a loaded machine read the shares and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from throughput import SHAPES, build  # noqa: E402

from agent_forge.plugin_host import load_plugins  # noqa: E402


def copies(params: list[torch.nn.Parameter]) -> list[torch.nn.Parameter]:
    out = []
    for p in params:
        q = torch.nn.Parameter(p.detach().clone())
        q.grad = p.grad.detach().clone()
        out.append(q)
    return out


def timer(fn, repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", default="nanotrm_port", choices=sorted(SHAPES))
    ap.add_argument("--variant", help="a variant as configured (e.g. trm_small) instead of --shape")
    ap.add_argument("--repeats", type=int, default=20, help="calls per timed block of each part")
    ap.add_argument("--steps", type=int, default=2, help="training steps per timed block")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    args = ap.parse_args()
    host = load_plugins(entry_points=False)
    variant, overrides = (args.variant, []) if args.variant else SHAPES[args.shape]
    b = build(host, variant, [*overrides, *args.overrides])
    torch.set_num_threads(b.threads)
    b.step()
    b.step()
    params = [p for p in b.state.model.parameters() if p.grad is not None]
    cfg = b.cfg.trainer
    groups = lambda ps: [{"params": ps, "weight_decay": cfg.weight_decay}]  # noqa: E731
    optims = {}
    for impl in ("for_loop", "foreach", "fused"):
        ps = copies(params)
        kw = {"foreach": impl == "foreach", "fused": impl == "fused"} if impl != "for_loop" else {"foreach": False}
        opt = torch.optim.AdamW(groups(ps), lr=cfg.lr, betas=cfg.betas, **kw)
        opt.step()  # creates the moments
        optims[f"adamw_{impl}"] = opt.step
    shadow = [p.detach().clone() for p in params]
    live = [p.detach() for p in params]

    def ema_loop() -> None:
        for s, p in zip(shadow, live):
            s.lerp_(p, 0.001)

    def ema_foreach() -> None:
        torch._foreach_lerp_(shadow, live, 0.001)

    def refill() -> None:
        b.state.halted = torch.ones_like(b.state.halted)  # the worst case: every row refilled
        b.trainer._refill(b.state)

    from agent_forge.phases.cognate.fit import FitContext

    ctx = FitContext(model=b.state.model, task=b.state.task, run_dir=None, seed=0, callbacks=b.state.callbacks,
                     host=host, evaluators=list(b.cfg.evaluators), progress=False)

    def evaluate() -> None:  # what the trainer runs every trainer.eval_every steps
        b.trainer.evaluate_during_training(b.state, ctx)

    parts = {**optims, "ema_lerp_loop": ema_loop, "ema_foreach_lerp": ema_foreach, "refill_all_rows": refill}
    slow = {"eval_during_training": evaluate}
    times: dict[str, list[float]] = {k: [] for k in ["train_step", *parts, *slow]}
    print(f"# {variant} + {' '.join(overrides + args.overrides)}; {b.threads} threads, {len(params)} parameter"
          f" tensors, {sum(p.numel() for p in params)} values; load average {os.getloadavg()[0]:.2f}", flush=True)
    for _ in range(args.rounds):
        times["train_step"].append(b.timed(args.steps)[0] / args.steps)
        for name, fn in parts.items():
            times[name].append(timer(fn, args.repeats))
        for name, fn in slow.items():
            times[name].append(timer(fn, 1))
    med = {k: statistics.median(v) for k, v in times.items()}
    step = med["train_step"]
    print("| part | ms (median of rounds) | share of a training step |\n| --- | --- | --- |")
    for k, v in med.items():
        print(f"| {k} | {1e3 * v:.3f} | {100 * v / step:.2f}% |")
    if cfg.eval_every:
        share = med["eval_during_training"] / (cfg.eval_every * step)
        print(f"# evaluation during training ({cfg.eval_samples} eval rows, every weights label) every"
              f" {cfg.eval_every} steps: {100 * share:.2f}% on top of the training steps")
    print(f"# load average after {os.getloadavg()[0]:.2f}")
    print(json.dumps({"variant": variant, "overrides": overrides + args.overrides, "median_s": med}))


if __name__ == "__main__":
    main()
