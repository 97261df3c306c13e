"""1 process against K processes (DDP or FSDP over gloo) on this machine, through the real CLI.

    .venv/bin/python bench/distributed.py [--variant trm_small] [--steps 60] [--nprocs 1,2]
                                          [--parallel ddp,fsdp]

Each configuration runs ``forge run phase cognate --variant V --max-steps N --nproc K`` with the
same *global* batch, and splits this machine's cores between the ranks (``trainer.threads =
cores // K``), so the comparison is "the same hardware, used by one process or by K". It reads
the global ``sup_steps_per_s`` (batch rows × optimizer steps / s) from ``metrics.jsonl``,
skipping the first log rows as warm-up, and prints one JSON line per configuration plus the
speed-up over one process. Each K > 1 runs once per ``--parallel`` mode. Not a test: compare
ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(variant: str, steps: int, nproc: int, threads: int, parallel: str, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        cmd = [sys.executable, "-m", "agent_forge", "run", "phase", "cognate", "--variant", variant,
               "--max-steps", str(steps), "--out", str(out), "--no-progress", "--nproc", str(nproc),
               "--set", f"trainer.threads={threads}", "--set", "trainer.log_every=10",
               "--set", "trainer.eval_every=null", "--set", "trainer.eval_samples=1",
               "--set", f"trainer.parallel={parallel}"]
        for o in extra:
            cmd += ["--set", o]
        start = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.monotonic() - start
        if proc.returncode != 0:
            raise SystemExit(proc.stderr[-3000:])
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        train = [r for r in rows if r.get("kind") == "train"][2:]  # skip warm-up
        rate = sum(r["sup_steps_per_s"] for r in train) / len(train)
        return {"variant": variant, "nproc": nproc, "parallel": parallel if nproc > 1 else "-",
                "threads_per_rank": threads, "steps": steps,
                "sup_steps_per_s": round(rate, 1), "wall_s": round(wall, 1)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="trm_small")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--nprocs", default="1,2")
    ap.add_argument("--parallel", default="ddp", help="comma-separated trainer.parallel modes for K > 1")
    ap.add_argument("--set", action="append", default=[], dest="extra")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    results = []
    for k in (int(x) for x in args.nprocs.split(",")):
        for mode in (args.parallel.split(",") if k > 1 else ["ddp"]):
            results.append(run(args.variant, args.steps, k, max(1, cores // k), mode, args.extra))
            print(json.dumps({**results[-1], "cores": cores}), flush=True)
    base = results[0]["sup_steps_per_s"]
    for r in results[1:]:
        print(f"{r['nproc']} processes ({r['parallel']}) vs {results[0]['nproc']}:"
              f" {r['sup_steps_per_s'] / base:.2f}x", flush=True)


if __name__ == "__main__":
    main()
