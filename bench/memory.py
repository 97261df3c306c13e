"""Peak memory (RSS) and seconds per step of a training run, and where the memory goes.

    .venv/bin/python bench/memory.py [--variant lm_conservative] [--steps 3] [--set K=V ...]
    .venv/bin/python bench/memory.py --breakdown [--variant lm_conservative] [--set trainer.batch_size=1 ...]

Default: runs ``forge run phase cognate --variant V --max-steps N`` (the real CLI, one process,
final evaluation included) as a child process and prints its peak RSS (``ru_maxrss`` of the
child), the wall time, and the seconds per optimizer step (from ``metrics.jsonl``, logged every
step). ``--breakdown`` instead builds the trainer in this process and prints the peak RSS of each
part of the first ``--steps`` steps — the model, the optimizer's first step (Adam moments), the
EMA copy, forward + loss, backward, optimizer + EMA update — by resetting the kernel's
high-water mark (``/proc/self/clear_refs``) between them. Linux only. Not a test: the figures
depend on torch's allocator and the machine's load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from agent_forge.phases.cognate import Callback
from agent_forge.phases.cognate.callback import CallbackList

GB = 2**30


def rss() -> tuple[float, float]:
    """(current RSS, peak RSS since the last reset) of this process, in GB."""
    status = Path("/proc/self/status").read_text()
    now, peak = (int(re.search(rf"{k}:\s+(\d+)", status).group(1)) * 1024 / GB for k in ("VmRSS", "VmHWM"))
    return now, peak


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")


class Probe(Callback):
    """A callback that records the peak RSS of each part of a step and resets it."""

    def __init__(self) -> None:
        self.rows: list[dict] = []
        self.step = 0

    def mark(self, part: str) -> None:
        now, peak = rss()
        self.rows.append({"step": self.step, "part": part, "peak_gb": round(peak, 3), "rss_after_gb": round(now, 3)})
        reset_peak()

    def on_step_start(self, trainer, state) -> None:
        self.step = state.step + 1
        self.mark("before the step (refill)")

    def on_loss(self, trainer, state) -> None:
        self.mark("forward + loss")

    def on_after_backward(self, trainer, state) -> None:
        self.mark("backward")

    def on_step_end(self, trainer, state) -> None:
        self.mark("optimizer step + EMA update")


def breakdown(variant: str, steps: int, overrides: list[str]) -> dict:
    sys.path.insert(0, str(Path(__file__).parent))
    import torch
    from throughput import build

    from agent_forge.plugin_host import load_plugins

    host = load_plugins(entry_points=False)
    reset_peak()
    start = rss()[1]
    b = build(host, variant, overrides)
    probe = Probe()
    probe.mark("model, data, EMA copy")
    b.state.callbacks["memory_probe"] = probe
    b.trainer.callbacks = CallbackList(b.state.callbacks)  # the trainer fires the list it holds
    walls = []
    for _ in range(steps):
        t = time.perf_counter()
        b.step()
        walls.append(time.perf_counter() - t)
    params = sum(p.numel() for p in b.state.model.parameters())
    return {"variant": variant, "overrides": overrides, "parameters": params,
            "fp32_state_gb": {"weights": params * 4 / GB, "grads": params * 4 / GB, "adam": 2 * params * 4 / GB,
                              "ema": params * 4 / GB if "ema" in b.state.callbacks else 0.0},
            "batch": b.cfg.trainer.batch_size, "seq_len": b.state.task.spec.seq_len,
            "vocab": b.state.task.spec.vocab_size,
            "full_logits_gb": b.cfg.trainer.batch_size * b.state.task.spec.seq_len * b.state.task.spec.vocab_size * 4 / GB,
            "interpreter_gb": start, "rows": probe.rows, "seconds_per_step": walls,
            "peak_gb": max(r["peak_gb"] for r in probe.rows), "threads": torch.get_num_threads()}


def cli_run(variant: str, steps: int, overrides: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "agent_forge", "run", "phase", "cognate", "--variant", variant,
               "--max-steps", str(steps), "--out", str(out), "--no-progress", "--set", "trainer.log_every=1"]
        for o in overrides:
            cmd += ["--set", o]
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.monotonic() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / GB
        result = {"variant": variant, "steps": steps, "overrides": overrides, "returncode": proc.returncode,
                  "peak_rss_gb": round(peak, 2), "wall_s": round(wall, 1), "command": " ".join(cmd[1:])}
        if proc.returncode != 0:
            result["stderr_tail"] = proc.stderr[-2000:]
            return result
        metrics = out / "metrics.jsonl"
        if not metrics.exists():
            metrics = next(out.rglob("metrics.jsonl"))
        rows = [json.loads(line) for line in metrics.read_text().splitlines()]
        train = [r for r in rows if r.get("kind") == "train"]
        final = [r for r in rows if r.get("kind") == "final"]
        if train:
            result["train_rows"] = [{k: r[k] for k in ("step", "elapsed_s", "sup_steps_per_s", "loss") if k in r}
                                    for r in train]
            # s/step from the logged training clock (steps 2.. skip the first step's start-up).
            el = [r["elapsed_s"] for r in train if "elapsed_s" in r]
            if len(el) >= 2:
                result["seconds_per_step_after_first"] = round((el[-1] - el[0]) / (len(el) - 1), 2)
            if el:
                result["first_step_s"] = round(el[0], 2)
        if final:
            result["final"] = {k: v for k, v in final[-1].items() if isinstance(v, (int, float))}
        return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="lm_conservative")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--breakdown", action="store_true", help="in-process peak RSS of each part of a step")
    ap.add_argument("--set", action="append", default=[], dest="overrides")
    args = ap.parse_args()
    print(f"# load average {os.getloadavg()[0]:.2f}", flush=True)
    if args.breakdown:
        r = breakdown(args.variant, args.steps, args.overrides)
        print(f"{r['variant']} ({r['parameters']:,} parameters) batch {r['batch']} x seq {r['seq_len']},"
              f" vocab {r['vocab']}; {' '.join(r['overrides']) or 'preset'}")
        print(f"  fp32 state: weights {r['fp32_state_gb']['weights']:.2f} GB, grads {r['fp32_state_gb']['grads']:.2f},"
              f" Adam {r['fp32_state_gb']['adam']:.2f}, EMA {r['fp32_state_gb']['ema']:.2f};"
              f" full fp32 logits {r['full_logits_gb']:.2f} GB per copy")
        print(f"  interpreter + torch before the model: {r['interpreter_gb']:.2f} GB")
        for row in r["rows"]:
            print(f"  step {row['step']} {row['part']:<30} peak {row['peak_gb']:6.2f} GB   rss after {row['rss_after_gb']:6.2f} GB")
        print(f"  peak {r['peak_gb']:.2f} GB; s/step {[round(s, 1) for s in r['seconds_per_step']]}")
    else:
        r = cli_run(args.variant, args.steps, args.overrides)
        print(f"{r['command']}\n  exit {r['returncode']}, peak RSS {r['peak_rss_gb']} GB, wall {r['wall_s']} s"
              + (f", first step {r['first_step_s']} s, then {r['seconds_per_step_after_first']} s/step"
                 if "seconds_per_step_after_first" in r else ""))
    print(f"# load average after {os.getloadavg()[0]:.2f}")
    print(json.dumps(r))


if __name__ == "__main__":
    main()
