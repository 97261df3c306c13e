"""1 process against K processes (DDP or FSDP over gloo) on this machine, through the real CLI.

    .venv/bin/python bench/distributed.py [--variant trm_small] [--steps 60] [--nprocs 1,2]
                                          [--parallel ddp,fsdp]
    .venv/bin/python bench/distributed.py --layouts 1x2,2x1,1x1 --repeat 2 [--shape nanotrm]

Each configuration runs ``forge run phase cognate --variant V --max-steps N --nproc K`` with the
same *global* batch, and splits this machine's cores between the ranks (``trainer.threads =
cores // K``), so the comparison is "the same hardware, used by one process or by K". It reads
the global ``sup_steps_per_s`` (batch rows × optimizer steps / s) from ``metrics.jsonl``,
skipping the first log rows as warm-up, and prints one JSON line per configuration plus the
speed-up over one process. Each K > 1 runs once per ``--parallel`` mode. Not a test: compare
ratios from one run.

``--layouts PxT,...`` lists (processes x threads per process) layouts instead, e.g. ``1x2`` (one
process, two threads), ``2x1`` (two single-threaded DDP ranks), ``1x1``; ``--repeat R`` runs the
whole list R times in turn (A B C A B C ...) and reports each layout's median, so a change in
the machine's load hits every layout alike. ``--shape nanotrm`` applies bench/throughput.py's
overrides for that workload.
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
               "--set", f"trainer.threads={threads}", "--set", f"trainer.log_every={max(1, min(10, steps // 6))}",
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


def layouts(args, cores: int) -> None:
    import statistics

    sys.path.insert(0, str(Path(__file__).parent))
    from throughput import SHAPES

    variant, extra = args.variant, list(args.extra)
    if args.shape:
        variant, shape = SHAPES[args.shape]
        extra = [*shape, *extra]
    plan = [tuple(int(x) for x in lay.split("x")) for lay in args.layouts.split(",")]
    rates: dict[tuple[int, int], list[float]] = {lay: [] for lay in plan}
    for r in range(args.repeat):
        for procs, threads in plan:
            res = run(variant, args.steps, procs, threads, args.parallel.split(",")[0], extra)
            rates[(procs, threads)].append(res["sup_steps_per_s"])
            print(json.dumps({**res, "repeat": r, "cores": cores, "load_average": round(os.getloadavg()[0], 2)}),
                  flush=True)
    base = statistics.median(rates[plan[0]])
    for lay in plan:
        med = statistics.median(rates[lay])
        print(f"{lay[0]} process(es) x {lay[1]} thread(s): median {med:.1f} examples·steps/s of {rates[lay]};"
              f" {med / base:.2f}x of {plan[0][0]}x{plan[0][1]}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variant", default="trm_small")
    ap.add_argument("--shape", help="a workload of bench/throughput.py (e.g. nanotrm); overrides --variant")
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--nprocs", default="1,2")
    ap.add_argument("--layouts", help="processes x threads, e.g. 1x2,2x1,1x1 (replaces --nprocs)")
    ap.add_argument("--repeat", type=int, default=1, help="with --layouts: run the list this many times in turn")
    ap.add_argument("--parallel", default="ddp", help="comma-separated trainer.parallel modes for K > 1")
    ap.add_argument("--set", action="append", default=[], dest="extra")
    args = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    if args.layouts:
        layouts(args, cores)
        return
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
