"""Training throughput and model-FLOPs utilisation, measured in one process.

    .venv/bin/python bench/throughput.py [--variants trm_small,baseline] [--steps 8] [--precision fp32]

For each variant it builds the model and trainer exactly as ``forge run`` does (default task:
6x6 Sudoku), runs a few warm-up steps, then times ``--steps`` optimizer steps and prints:

* supervised examples·steps/s (batch rows × optimizer steps / s — each step supervises every row once);
* model FLOPs per optimizer step, counted by ``torch.utils.flop_counter`` on a real step
  (forward of all T cycles + backward of the last), and achieved GFLOP/s;
* MFU against a GEMM peak measured in this process (2048² fp32 and bf16 matmuls).

Accuracy against wall-clock for TRM vs the baseline is ``forge ablate`` (see docs/performance.md).
It is not a test: numbers depend on the machine and its load; compare ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from agent_forge.config import apply_overrides
from agent_forge.phases.cognate.phase import build_model, validate_cognate
from agent_forge.phases.cognate.fit import FitContext
from agent_forge.plugin_host import load_plugins


def gemm_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 5) -> float:
    # A bf16 GEMM without AMX/AVX512-BF16 can take minutes at this size (docs/performance.md).
    if dtype == torch.bfloat16 and torch.backends.cpu.get_cpu_capability() not in {"AVX512_BF16", "AMX"}:
        n, repeats = 512, 1
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def gemm_shaped(dtype: torch.dtype, m: int = 4608, k: int = 64, n: int = 512, repeats: int = 20) -> float:
    """A linear layer at trm_small's shape (128 rows x 36 cells, d=64 -> SwiGLU hidden): the
    ceiling the model's own matrix products can reach, well below the square-GEMM peak."""
    x, w = torch.randn(m, k, dtype=dtype), torch.randn(n, k, dtype=dtype)
    torch.nn.functional.linear(x, w)
    start = time.perf_counter()
    for _ in range(repeats):
        torch.nn.functional.linear(x, w)
    return 2 * m * k * n * repeats / (time.perf_counter() - start)


def measure(host, variant: str, steps: int, warmup: int, overrides: list[str]) -> dict:
    spec = host.get("variant", variant).obj
    cfg = validate_cognate(host, apply_overrides(spec, ["trainer.max_steps=1000000", *overrides]))
    task = host.get("dataset", cfg.task_name).obj(cfg.task, cfg.data_seed)
    model = build_model(host, cfg, task.spec, 0)
    trainer = host.get("trainer", cfg.trainer_name).obj(cfg.trainer)
    callbacks = {n: host.get("callback", n).obj(c) for n, c in cfg.callbacks.items()}
    ctx = FitContext(model=model, task=task, run_dir=None, seed=0, callbacks=callbacks, host=host, progress=False)
    state = trainer._state(ctx)
    trainer._fire(state, __import__("agent_forge.events", fromlist=["Event"]).Event.FIT_START)
    for _ in range(warmup):
        trainer._train_step(state)
    with FlopCounterMode(display=False) as counter:
        trainer._train_step(state)
    flops = counter.get_total_flops()
    start = time.perf_counter()
    for _ in range(steps):
        trainer._train_step(state)
    seconds = time.perf_counter() - start
    rows = cfg.trainer.batch_size * steps
    return {"variant": variant, "precision": state.precision, "batch": cfg.trainer.batch_size,
            "parameters": sum(p.numel() for p in model.parameters()),
            "sup_examples_steps_per_s": rows / seconds, "seconds_per_step": seconds / steps,
            "gflop_per_step": flops / 1e9, "achieved_gflops": flops * steps / seconds / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default="trm_small,baseline")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    host = load_plugins(entry_points=False)
    peaks = {"fp32": gemm_peak(torch.float32), "bf16": gemm_peak(torch.bfloat16)}
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"GEMM peak (2048^3; bf16 at 512^3 on CPUs without native bf16): fp32 {peaks['fp32'] / 1e9:.1f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.1f} GFLOP/s")
    shaped = {"fp32": gemm_shaped(torch.float32), "bf16": gemm_shaped(torch.bfloat16, repeats=2)}
    print(f"model-shaped linear (4608x64 @ 64x512): fp32 {shaped['fp32'] / 1e9:.1f} GFLOP/s,"
          f" bf16 {shaped['bf16'] / 1e9:.1f} GFLOP/s")
    results = []
    for variant in args.variants.split(","):
        r = measure(host, variant.strip(), args.steps, args.warmup, [f"trainer.precision={args.precision}", *args.overrides])
        peak = peaks["bf16" if r["precision"] == "bf16" else "fp32"]
        r["mfu"] = r["achieved_gflops"] * 1e9 / peak
        results.append(r)
        print(f"{r['variant']:>12} [{r['precision']}] batch {r['batch']}: {r['sup_examples_steps_per_s']:8.1f}"
              f" examples·steps/s, {r['seconds_per_step']:.3f} s/step, {r['gflop_per_step']:.1f} GFLOP/step,"
              f" {r['achieved_gflops']:.1f} GFLOP/s, MFU {100 * r['mfu']:.1f}% of measured {r['precision']} GEMM peak")
    print(json.dumps({"peaks_gflops": {k: v / 1e9 for k, v in peaks.items()},
                      "shaped_gflops": {k: v / 1e9 for k, v in shaped.items()}, "results": results}))


if __name__ == "__main__":
    main()
