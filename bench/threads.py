"""How the model's own operations scale from 1 to 2 (or K) intra-op threads, measured interleaved.

    .venv/bin/python bench/threads.py [--threads 1,2] [--rounds 7] [--batch 256]

Times each operation of a nanotrm-shaped training step (6x6 Sudoku, d=64, batch 256: 9,216
token rows; the MLP token mixer works on 16,384 channel rows of 36 cells) at every thread count
in ``--threads``, switching ``torch.set_num_threads`` between repetitions (1 2 1 2 ...), and
prints the median time of each and the speed-up over the first count. A matrix product that
gains little from a second thread, or an elementwise op that gains nothing, is why two
single-threaded processes (DDP) can beat one two-threaded process on the same cores
(docs/performance.md, "Thread layout"). Not a test: compare the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F


def ops(batch: int) -> dict[str, tuple[callable, float]]:
    """name -> (callable, FLOPs or 0)."""
    rows, ch = batch * 36, batch * 64
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    x64, w_up, x256, w_down = r(rows, 64), r(512, 64), r(rows, 256), r(64, 256)
    xm, wm_up, xm96, wm_down = r(ch, 36), r(192, 36), r(ch, 96), r(36, 96)
    big, big2 = r(rows, 512), r(rows, 512)
    h = r(batch, 36, 64)
    h_t = h.transpose(1, 2)
    logits, targets = r(rows, 7), torch.randint(0, 7, (rows,), generator=g)

    def rms(x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)

    return {
        "mm SwiGLU up   (9216x64 @ 64x512)": (lambda: F.linear(x64, w_up), 2 * rows * 64 * 512),
        "mm SwiGLU down (9216x256 @ 256x64)": (lambda: F.linear(x256, w_down), 2 * rows * 256 * 64),
        "mm mixer up    (16384x36 @ 36x192)": (lambda: F.linear(xm, wm_up), 2 * ch * 36 * 192),
        "mm mixer down  (16384x96 @ 96x36)": (lambda: F.linear(xm96, wm_down), 2 * ch * 96 * 36),
        "mm weight grad (512x9216 @ 9216x64)": (lambda: big.t() @ x64, 2 * rows * 64 * 512),
        "mul (9216x512)": (lambda: big * big2, 0),
        "silu (9216x512)": (lambda: F.silu(big), 0),
        "add (9216x512)": (lambda: big + big2, 0),
        "rms_norm (256x36x64)": (lambda: rms(h), 0),
        "transpose+contiguous (256x64x36)": (lambda: h_t.contiguous(), 0),
        "cross_entropy (9216x7)": (lambda: F.cross_entropy(logits, targets), 0),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=10, help="calls per timed repetition")
    ap.add_argument("--batch", type=int, default=256)
    args = ap.parse_args()
    counts = [int(t) for t in args.threads.split(",")]
    print(f"# torch {torch.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    results = {}
    for name, (fn, flops) in ops(args.batch).items():
        times: dict[int, list[float]] = {k: [] for k in counts}
        for k in counts:  # warm up every count
            torch.set_num_threads(k)
            fn()
        for _ in range(args.rounds):
            for k in counts:
                torch.set_num_threads(k)
                start = time.perf_counter()
                for _ in range(args.repeats):
                    fn()
                times[k].append((time.perf_counter() - start) / args.repeats)
        med = {k: statistics.median(v) for k, v in times.items()}
        results[name] = {"ms": {k: 1e3 * v for k, v in med.items()},
                         "speedup": {k: med[counts[0]] / med[k] for k in counts},
                         "gflops": {k: flops / v / 1e9 for k, v in med.items()} if flops else None}
        line = "  ".join(f"{k}T {1e3 * med[k]:7.3f} ms" + (f" ({flops / med[k] / 1e9:5.1f} GFLOP/s)" if flops else "")
                         for k in counts)
        print(f"{name:<38} {line}  speed-up {counts[-1]}T/{counts[0]}T {med[counts[0]] / med[counts[-1]]:.2f}x")
    print(f"# load average after {os.getloadavg()[0]:.2f}")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
