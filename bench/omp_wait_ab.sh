#!/usr/bin/env bash
cd "$(dirname "$0")/.."
# Alternating processes with and without OMP_WAIT_POLICY=PASSIVE on the nanotrm shape (docs/performance.md, "Thread layout").
for r in 1 2 3; do
  for pol in default PASSIVE; do
    if [ $pol = PASSIVE ]; then export OMP_WAIT_POLICY=PASSIVE; else unset OMP_WAIT_POLICY; fi
    echo "round $r policy $pol load $(cut -d' ' -f1 /proc/loadavg)"
    .venv/bin/python bench/throughput.py --shape nanotrm --steps 2 --rounds 2 --warmup 1 2>&1 | grep "trm_small \[" | sed 's/(median.*s\/step (CPU/CPU/' | cut -c1-160
  done
done
