"""Where the port's (nano-trm's) training step spends its time: torch.profiler by op, as
``bench/profile_step.py`` does for ours.

    $FORGE_CACHE_DIR/peer-venv/bin/python bench/profile_port.py [--steps 3] [--warmup 2] [--threads 2]

Runs under the side environment that ``bench/peer.py --setup-only`` builds (it imports the
``nano-trm`` package, never agent-forge), with the shape ``bench/peer.py`` gives the port at
``--ours-shape nanotrm_port`` (d=64, 2 layers, n=3, T=2, N_sup=16, batch 256, 6x6 Sudoku). One
step is :class:`peer_port.PortStep`'s: ``TRMModule.training_step`` plus the EMA callback. Prints
the top ops by self CPU time per step, the share of each, and a JSON line. Not a test; on a
loaded machine read the shares, not the seconds.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
from peer_port import PortStep  # noqa: E402

#: The port's arguments at the shape ``bench/peer.py`` runs it (``shape_of`` of nanotrm_port).
NANOTRM_PORT = ["--d-model=64", "--layers=2", "--n=3", "--T=2", "--n-sup=16", "--batch=256", "--seq-len=36",
                "--vocab=7", "--expansion=4"]


def by_op(prof, steps: int) -> tuple[float, list[tuple[str, float, float, int]]]:
    """(self CPU s per step, [(op, s/step, share, calls/step)] sorted by time)."""
    totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    for e in prof.events():
        if e.device_type.name != "CPU":
            continue
        totals[e.name][0] += e.self_cpu_time_total / 1e6
        totals[e.name][1] += 1
    total = sum(v[0] for v in totals.values())
    rows = [(name, s / steps, s / total, round(c / steps)) for name, (s, c) in totals.items()]
    return total / steps, sorted(rows, key=lambda r: -r[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--top", type=int, default=15)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # The port prints to stdout while it builds; keep this script's table readable.
    real_stdout, sys.stdout = sys.stdout, sys.stderr
    from peer_port import parse_args as port_args

    port = PortStep(port_args(NANOTRM_PORT))
    sys.stdout = real_stdout
    print(f"# nano-trm port, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    port.run(args.warmup, args.threads)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        port.run(args.steps, args.threads)
    per_step, rows = by_op(prof, args.steps)
    print(f"\nself CPU time {per_step:.3f} s/step over {args.steps} steps\n")
    print("| op | self CPU s/step | share | calls/step |\n| --- | --- | --- | --- |")
    for name, s, share, calls in rows[:args.top]:
        print(f"| {name} | {s:.3f} | {100 * share:.1f}% | {calls} |")
    print(f"\n# load average after {os.getloadavg()[0]:.2f}")
    print(json.dumps({"self_cpu_s_per_step": per_step, "by_op": {r[0]: r[1] for r in rows}}))


if __name__ == "__main__":
    main()
