"""Train a preset for a short budget; print steps/s, peak memory and accuracy against steps.

    .venv/bin/python bench/paper_train.py --out DIR [--variant trm_paper] [--device cuda]
        [--minutes 1.5 | --max-steps N] [--set key=value ...]

Runs the Cognate phase in this process, exactly as ``forge run phase cognate`` does (the run
folder is a normal run: ``forge runs``, ``report.md``), so the peak memory of the whole run can
be read at the end. Prints:

* one row per evaluation during training (``trainer.eval_every``): step, seconds, exact and
  token accuracy of the raw and EMA weights on the first ``trainer.eval_samples`` eval rows;
* steps/s in the steady state (the median of the log windows after the first, which holds the
  compile when ``trainer.compile`` is on), and the first window's extra seconds (the compile);
* the final evaluation on the whole eval split (the hand-off's exact accuracy, raw and EMA);
* peak memory: CUDA allocated/reserved on a GPU, the process's RSS;
* a last line of JSON with all of it.

A bench, not a test: the numbers are the machine's. ``bench/gpu_paper.sh`` calls it.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from pathlib import Path
from typing import Any

import torch


def _rows(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def summarise(run_dir: Path, batch_size: int) -> dict[str, Any]:
    """Steady steps/s, the first window's extra seconds, and the eval rows, from metrics.jsonl."""
    rows = _rows(run_dir)
    train = [r for r in rows if r.get("kind") == "train" and "sup_steps_per_s" in r]
    evals = [r for r in rows if r.get("kind") == "eval"]
    steady = [r["sup_steps_per_s"] / batch_size for r in train[1:]] or [r["sup_steps_per_s"] / batch_size
                                                                       for r in train]
    out: dict[str, Any] = {"steps_per_s": statistics.median(steady) if steady else None, "evals": []}
    if train and out["steps_per_s"]:
        first = train[0]
        out["first_window_extra_s"] = round(first["elapsed_s"] - first["step"] / out["steps_per_s"], 2)
    for r in evals:
        out["evals"].append({"step": r["step"], "elapsed_s": r.get("elapsed_s"),
                             **{k: r[k] for k in ("raw/exact_accuracy", "ema/exact_accuracy", "raw/token_accuracy",
                                                  "ema/token_accuracy") if k in r}})
    return out


def _f(value: Any) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="run folder to create")
    parser.add_argument("--variant", default="trm_paper")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--minutes", type=float)
    parser.add_argument("--max-steps", type=int)
    parser.add_argument("--set", action="append", default=[], dest="overrides", help="key=value (as forge --set)")
    args = parser.parse_args()

    from agent_forge import run_phase
    from agent_forge.phases.cognate.training_config import resolve_device
    from agent_forge.plugin_host import load_plugins

    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    host = load_plugins(entry_points=False)
    start = time.monotonic()
    result = run_phase("cognate", host=host, variant=args.variant, minutes=args.minutes, max_steps=args.max_steps,
                       overrides=[f"trainer.device={device}", *args.overrides], progress=False, out=args.out)
    wall = time.monotonic() - start
    run_dir = Path(args.out)
    config = json.loads((run_dir / "config.json").read_text())
    trainer = config.get("trainer") or config.get("config", {}).get("trainer", {})
    batch = int(trainer.get("batch_size", 1))
    summary = summarise(run_dir, batch)
    m = result.metrics
    summary.update(variant=args.variant, device=str(device), batch_size=batch, precision=trainer.get("precision"),
                   compile=trainer.get("compile"), steps=int(m.get("steps", 0)), train_seconds=m.get("train_seconds"),
                   wall_seconds=round(wall, 1), hand_off=result.details["models"][0]["chosen_weights"],
                   exact_accuracy=m.get("exact_accuracy"), raw_exact_accuracy=m.get("raw/exact_accuracy"),
                   ema_exact_accuracy=m.get("ema/exact_accuracy"), token_accuracy=m.get("token_accuracy"),
                   peak_rss_gib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2))
    if device.type == "cuda":
        summary.update(gpu=torch.cuda.get_device_name(device),
                       peak_cuda_allocated_gib=round(torch.cuda.max_memory_allocated(device) / 2**30, 2),
                       peak_cuda_reserved_gib=round(torch.cuda.max_memory_reserved(device) / 2**30, 2))

    print(f"{args.variant} on {summary.get('gpu', device)}: batch {batch}, precision {summary['precision']},"
          f" compile {summary['compile']}; {summary['steps']} steps in {_f(summary['train_seconds'])} s of training"
          f" ({summary['wall_seconds']} s with data, set-up and the final evaluation)")
    print(f"steps/s (steady, median of the log windows after the first): {_f(summary['steps_per_s'])};"
          f" first window's extra seconds (compile, warm-up): {summary.get('first_window_extra_s', 'n/a')}")
    print("exact accuracy against steps (first trainer.eval_samples eval rows):")
    print(f"{'step':>7} {'seconds':>8} {'raw exact':>10} {'ema exact':>10} {'raw token':>10} {'ema token':>10}")
    for r in summary["evals"]:
        print(f"{r['step']:>7} {_f(r.get('elapsed_s')):>8} {_f(r.get('raw/exact_accuracy')):>10}"
              f" {_f(r.get('ema/exact_accuracy')):>10} {_f(r.get('raw/token_accuracy')):>10}"
              f" {_f(r.get('ema/token_accuracy')):>10}")
    print(f"final, whole eval split: exact {_f(summary['exact_accuracy'])} ({summary['hand_off']} weights, the"
          f" hand-off), raw {_f(summary['raw_exact_accuracy'])}, ema {_f(summary['ema_exact_accuracy'])};"
          f" token {_f(summary['token_accuracy'])}")
    memory = f"peak memory: host RSS {summary['peak_rss_gib']} GiB"
    if device.type == "cuda":
        memory += (f", CUDA {summary['peak_cuda_allocated_gib']} GiB allocated,"
                   f" {summary['peak_cuda_reserved_gib']} GiB reserved")
    print(memory)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
