"""Where a training step's time goes: torch.profiler over a few steps, by op and by kind.

    .venv/bin/python bench/profile_step.py [--shape nanotrm | --variant trm_small] [--steps 5] [--warmup 2] [--set K=V ...]

Builds the trainer as ``bench/throughput.py`` does, runs ``--warmup`` steps, then profiles
``--steps`` steps (CPU activities) and prints (1) the top ops by self CPU time and (2) the self
time summed by kind: matrix products, norm, activation (SiLU), other elementwise, copies and
reshapes, loss, optimizer, gradient clipping, EMA, the batch refill (data draw and augmentation), ACT's
callback and the training metrics, each split into forward and backward where that applies.
Forward ops are attributed by scopes this script wraps around the norm, the loss, the gradient
clipping and the EMA update; backward ops by the autograd node that runs them (``MmBackward0``
is a matrix product, ``PowBackward0`` part of the norm, ...). ``mul`` and its backward serve both
SwiGLU's product and the norm's scaling; the forward ones are split by the scopes, the
backward ones are counted as elementwise. Not a test; times are inflated on a loaded machine,
but the shares are what to read.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import time
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile, record_function

sys.path.insert(0, str(Path(__file__).parent))
from throughput import SHAPES, build  # noqa: E402

from agent_forge.plugin_host import load_plugins  # noqa: E402

MATMUL = {"aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear", "aten::baddbmm",
          "aten::_scaled_dot_product_flash_attention_for_cpu", "aten::_scaled_dot_product_flash_attention_for_cpu_backward"}
COPIES = {"aten::copy_", "aten::cat", "aten::clone", "aten::contiguous", "aten::_to_copy", "aten::to", "aten::reshape",
          "aten::view", "aten::transpose", "aten::t", "aten::split", "aten::chunk", "aten::as_strided", "aten::expand",
          "aten::empty", "aten::empty_strided", "aten::_unsafe_view", "aten::fill_", "aten::zero_", "aten::zeros",
          "aten::zeros_like", "aten::slice", "aten::select", "aten::narrow", "aten::index_select", "aten::embedding",
          "aten::unsqueeze", "aten::squeeze", "aten::permute", "aten::detach", "aten::alias", "aten::new_empty_strided"}
BACKWARD_NODE = {"Mm": "matmul", "Addmm": "matmul", "Bmm": "matmul", "ScaledDotProductFlashAttentionForCpu": "matmul",
                 "Pow": "norm", "Mean": "norm", "Rsqrt": "norm", "Silu": "activation (SiLU)",
                 "LogSoftmax": "loss", "NllLoss2D": "loss", "NllLoss": "loss", "NllLossNd": "loss"}
SCOPES = {"forge::norm": "norm", "forge::loss": "loss", "forge::clip": "grad clip", "forge::ema": "EMA update",
          "forge::refill": "data (refill, augment)", "forge::metrics": "training metrics",
          "forge::act": "ACT (halting draws, BCE)",
          "Optimizer.step#AdamW.step": "optimizer (AdamW)", "Optimizer.zero_grad#AdamW.zero_grad": "optimizer (AdamW)"}


def scoped(label: str, fn):
    @functools.wraps(fn)
    def wrapper(*a, **k):
        with record_function(label):
            return fn(*a, **k)
    return wrapper


@contextlib.contextmanager
def labelled_scopes():
    """Wrap the norm, the loss, gradient clipping and the EMA update in named profiler scopes."""
    from agent_forge.models import layers
    from agent_forge.phases.cognate import trainer as trainer_mod
    from agent_forge.plugins.callbacks import ema

    from agent_forge.phases.cognate.training_metrics import MetricsAccumulator
    from agent_forge.plugins.callbacks import act

    saved = [(layers, "rms_norm", layers.rms_norm), (trainer_mod, "compute_task_loss", trainer_mod.compute_task_loss),
             (torch.nn.utils, "clip_grad_norm_", torch.nn.utils.clip_grad_norm_),
             (ema.EMACallback, "on_step_end", ema.EMACallback.on_step_end),
             (trainer_mod.DeepSupervisionTrainer, "_refill", trainer_mod.DeepSupervisionTrainer._refill),
             (MetricsAccumulator, "add", MetricsAccumulator.add),
             (act.ACTCallback, "on_step_start", act.ACTCallback.on_step_start),
             (act.ACTCallback, "on_loss", act.ACTCallback.on_loss), (act.ACTCallback, "on_halt", act.ACTCallback.on_halt)]
    labels = ["forge::norm", "forge::loss", "forge::clip", "forge::ema", "forge::refill", "forge::metrics",
              "forge::act", "forge::act", "forge::act"]
    for (owner, name, fn), label in zip(saved, labels):
        setattr(owner, name, scoped(label, fn))
    try:
        yield
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)


def kind_of(event) -> str:
    name, node = event.name, None
    if name in SCOPES:  # a scope's own self time: the Python around its ops
        return SCOPES[name]
    parent = event.cpu_parent
    while parent is not None:
        if parent.name in SCOPES:
            scope = SCOPES[parent.name]
            return scope + (" (bwd)" if node else "") if scope in {"norm", "loss"} else scope
        if parent.name.startswith("autograd::engine::evaluate_function: ") and node is None:
            node = parent.name.split(": ", 1)[1]
        parent = parent.cpu_parent
    if node is not None:
        base = node.removesuffix("Backward0").removesuffix("Backward1")
        if name in MATMUL:
            return "matmul (bwd)"
        if base in BACKWARD_NODE:
            return BACKWARD_NODE[base] + " (bwd)"
        return ("copies/reshapes" if name in COPIES else "elementwise") + " (bwd)"
    if name in MATMUL:
        return "matmul (fwd)"
    if name == "aten::silu":
        return "activation (SiLU) (fwd)"
    if name in COPIES:
        return "copies/reshapes (fwd)"
    return "elementwise (fwd)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", default="nanotrm", choices=sorted(SHAPES))
    ap.add_argument("--variant", help="profile this variant as configured (e.g. trm_small) instead of --shape")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    args = ap.parse_args()
    host = load_plugins(entry_points=False)
    variant, overrides = (args.variant, []) if args.variant else SHAPES[args.shape]
    print(f"# {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}; {variant} + {' '.join(overrides + args.overrides)}")
    with labelled_scopes():
        b = build(host, variant, [*overrides, *args.overrides])
        for _ in range(args.warmup):
            b.step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                b.step()
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    events = [e for e in prof.events() if e.device_type.name == "CPU"]
    total = sum(e.self_cpu_time_total for e in events) / 1e6
    by_op: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    by_kind: dict[str, float] = defaultdict(float)
    for e in events:
        s = e.self_cpu_time_total / 1e6
        by_op[e.name][0] += s
        by_op[e.name][1] += 1
        by_kind[kind_of(e)] += s
    n = args.steps
    # With several threads an op's self time is its wall time on the calling thread; what the
    # ops do not cover (wall - ops) is Python between them and waiting for a core.
    print(f"\nself CPU time {total:.2f} s over {n} steps ({total / n:.3f} s/step); profiled wall {wall / n:.3f} s/step,"
          f" process CPU {cpu / n:.3f} s/step\n")
    print("| op | self CPU s/step | share | calls/step |\n| --- | --- | --- | --- |")
    for name, (s, c) in sorted(by_op.items(), key=lambda kv: -kv[1][0])[:args.top]:
        print(f"| {name} | {s / n:.3f} | {100 * s / total:.1f}% | {c / n:.0f} |")
    print("\n| kind | self CPU s/step | share |\n| --- | --- | --- |")
    for kind, s in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        print(f"| {kind} | {s / n:.3f} | {100 * s / total:.1f}% |")
    print(f"\n# load average after {os.getloadavg()[0]:.2f}")
    print(json.dumps({"total_self_cpu_s": total, "steps": n, "wall_s": wall, "process_cpu_s": cpu, "by_kind": by_kind,
                      "by_op": {k: v[0] for k, v in by_op.items()}}))


if __name__ == "__main__":
    main()
