#!/usr/bin/env bash
# The paper preset on a GPU, in under 8 minutes on one H100: what to run first on a machine with
# CUDA, before any long run.
#
#   bench/gpu_paper.sh [--device cuda|cpu] [--out DIR] [--budget SECONDS] [--train-minutes M]
#
# Stages (each under its own time limit, all under --budget, default 460 s; a stage that fails or
# runs out of time is reported and the next one runs; stages the budget no longer covers are
# reported as skipped, so the script ends inside it):
#   1. check:      nvidia-smi, torch's CUDA build, the device, bf16 support, a matmul on it.
#   2. data:       sudoku9_hard puzzles generated on the spot with `forge data generate`, in
#                  parallel processes (training and eval files with different seeds, deduplicated).
#   3. train:      trm_paper (bf16, torch.compile, the preset's official recipe) on that data for
#                  --train-minutes (default 2; the compile counts in it) via bench/paper_train.py:
#                  steps/s, peak memory, exact accuracy against steps. A smoke run: the preset
#                  warms its lr up over 2,000 steps, so expect token accuracy to move, not exact.
#   4. throughput: bench/throughput.py, each eager against compiled (interleaved, --vs
#                  trainer.compile=true), in this order: trm_paper bf16, the nano-trm shape fp32 and
#                  bf16, trm_paper fp32 (the slowest; the first to be cut by the budget).
# Everything is printed and also kept under --out (default runs/gpu-paper-<time>): data, the run
# folder, one log per stage, and summary.txt (the figures, one line each).
#
# --device cpu is the fallback for a machine without CUDA: the same stages at tiny sizes (a few
# puzzles, d_model 32, a few steps), eager only (compiling the recursion on a CPU takes minutes),
# so the script itself can be tested anywhere (tests/bench/test_gpu_paper.py). Its numbers mean
# nothing. With --device cuda and no CUDA the script stops at stage 1 and says so.
#
# Environment: PYTHON (default .venv/bin/python, else python3), EXTRA_SET (more --set values for the
# training stage, space-separated key=value).
set -u -o pipefail

DEVICE=cuda
BUDGET=460
TRAIN_MINUTES=2
OUT=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --out) OUT="$2"; shift 2 ;;
    --budget) BUDGET="$2"; shift 2 ;;
    --train-minutes) TRAIN_MINUTES="$2"; shift 2 ;;
    -h|--help) sed -n '2,31p' "$0"; exit 0 ;;
    *) echo "error: unknown argument $1 (see $0 --help)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in
  cuda|cpu) ;;
  *) echo "error: --device $DEVICE: use cuda or cpu" >&2; exit 2 ;;
esac

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
OUT="${OUT:-runs/gpu-paper-$(date -u +%Y%m%d-%H%M%S)}"
if [ -e "$OUT/summary.txt" ]; then
  echo "error: --out $OUT already holds a bench (summary.txt); pass a new folder" >&2
  exit 2
fi
mkdir -p "$OUT/data" "$OUT/logs"
SUMMARY="$OUT/summary.txt"
: > "$SUMMARY"
FAILED=()
export FORGE_CACHE_DIR="${FORGE_CACHE_DIR:-$OUT/cache}"

note() { echo "$*" | tee -a "$SUMMARY"; }
stage() { echo; echo "== $1  (t=${SECONDS}s of ${BUDGET}s)"; }

# run NAME LIMIT CMD...: CMD under min(LIMIT, what is left of the budget), its output shown and
# kept in logs/NAME.log; a failure or a timeout is recorded, never fatal.
run() {
  local name="$1" limit="$2"; shift 2
  local left=$((BUDGET - SECONDS - 5))
  [ "$left" -lt "$limit" ] && limit="$left"
  if [ "$limit" -lt 10 ]; then
    note "$name: skipped, the budget (${BUDGET}s) is spent"
    FAILED+=("$name (skipped)")
    return 0
  fi
  timeout --kill-after=15 "$limit" "$@" 2>&1 | tee "$OUT/logs/$name.log"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    note "$name: timed out after ${limit}s"
    FAILED+=("$name (timeout)")
  elif [ "$rc" -ne 0 ]; then
    note "$name: failed (exit $rc), see $OUT/logs/$name.log"
    FAILED+=("$name (exit $rc)")
  fi
  return 0
}

if [ "$DEVICE" = cuda ]; then
  GEN_PROCS=8; TRAIN_PER_PROC=128; EVAL_PROCS=2; EVAL_PER_PROC=128
  TRAIN_SETS=(trainer.precision=bf16 trainer.compile=true trainer.eval_every=25 trainer.eval_samples=256
              trainer.log_every=5 trainer.eval_batch_size=256)
  TRAIN_BUDGET=(--minutes "$TRAIN_MINUTES")
  TP_COMMON=(--device cuda --no-logits-check)
  TP_PAPER=(--variants trm_paper --steps 3 --warmup 1 --rounds 2 --shaped 74496,512,3072)
  TP_NANO=(--shape nanotrm --steps 20 --warmup 3 --rounds 2 --set task.train_count=1024 --set task.eval_count=64)
  TP_VS=(--vs trainer.compile=true)
  MODE="eager vs compiled"
  LIMITS=(30 90 180 90 50 50 120)
else
  GEN_PROCS=1; TRAIN_PER_PROC=16; EVAL_PROCS=1; EVAL_PER_PROC=8
  TINY=(model.d_model=32 model.n_layers=1 model.n_heads=2 model.n=1 model.T=2 model.n_sup=3 trainer.batch_size=8
        trainer.eval_batch_size=8 trainer.threads=1)
  TRAIN_SETS=("${TINY[@]}" trainer.precision=fp32 trainer.compile=false trainer.eval_every=2 trainer.eval_samples=8
              trainer.log_every=1)
  TRAIN_BUDGET=(--max-steps 4)
  TP_COMMON=(--device cpu --threads 1)
  TP_PAPER=(--variants trm_paper --steps 1 --warmup 1 --rounds 1)
  for s in "${TINY[@]}"; do TP_PAPER+=(--set "$s"); done
  TP_NANO=(--shape nanotrm --steps 1 --warmup 1 --rounds 1 --set trainer.batch_size=8 --set task.train_count=16
           --set task.eval_count=8)
  TP_VS=()
  MODE="eager only: the CPU fallback does not compile"
  LIMITS=(30 120 240 240 240 240 240)
fi

# -- 1. check -------------------------------------------------------------------------------------
stage "1. check ($DEVICE)"
if [ "$DEVICE" = cuda ]; then
  if command -v nvidia-smi >/dev/null; then
    nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv 2>&1 | tee "$OUT/logs/nvidia-smi.log"
  else
    echo "nvidia-smi: not found"
  fi
fi
"$PYTHON" - "$DEVICE" <<'EOF' 2>&1 | tee "$OUT/logs/check.log"
import sys, time
import torch
want = sys.argv[1]
print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
if want == "cuda":
    if not torch.cuda.is_available():
        print("CUDA: not available to torch (a CPU build of torch, or no driver); run with --device cpu")
        sys.exit(3)
    d = torch.device("cuda")
    p = torch.cuda.get_device_properties(d)
    print(f"device: {p.name}, {p.total_memory / 2**30:.1f} GiB, capability {p.major}.{p.minor},"
          f" {p.multi_processor_count} SMs, bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}")
    a = torch.randn(4096, 4096, device=d, dtype=torch.bfloat16)
    torch.cuda.synchronize(); t = time.perf_counter()
    for _ in range(20):
        b = a @ a
    torch.cuda.synchronize(); dt = time.perf_counter() - t
    ref = (a[:64].float() @ a[:, :64].float())
    err = (b[:64, :64].float() - ref).abs().max().item() / ref.abs().max().item()
    print(f"bf16 matmul 4096^3 x20: {20 * 2 * 4096**3 / dt / 1e12:.1f} TFLOP/s (a sanity figure), relative error {err:.1e}")
else:
    print(f"device: cpu, {torch.get_num_threads()} threads (fallback: tiny sizes, the numbers mean nothing)")
EOF
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
  note "check: no usable $DEVICE device; stopping (on a machine without CUDA: bench/gpu_paper.sh --device cpu)"
  exit 3
fi

# -- 2. data ----------------------------------------------------------------------------------------
stage "2. data: sudoku9_hard, $((GEN_PROCS * TRAIN_PER_PROC)) training and $((EVAL_PROCS * EVAL_PER_PROC)) eval puzzles"
generate() {
  local pids=() k
  for k in $(seq 1 "$GEN_PROCS"); do
    "$PYTHON" -m agent_forge data generate sudoku9_hard --count "$TRAIN_PER_PROC" --seed "$k" \
      --out "$OUT/data/train-$k.csv" > "$OUT/logs/data-train-$k.log" 2>&1 & pids+=($!)
  done
  for k in $(seq 1 "$EVAL_PROCS"); do
    "$PYTHON" -m agent_forge data generate sudoku9_hard --count "$EVAL_PER_PROC" --seed "$((1000 + k))" \
      --out "$OUT/data/eval-$k.csv" > "$OUT/logs/data-eval-$k.log" 2>&1 & pids+=($!)
  done
  local rc=0 pid
  for pid in "${pids[@]}"; do wait "$pid" || rc=1; done
  [ "$rc" -eq 0 ] || { echo "a generator failed: see $OUT/logs/data-*.log"; return 1; }
  # One header; eval puzzles first, then training puzzles that are not eval puzzles (seeds differ,
  # so repeats are unlikely; dropped anyway).
  { echo "question,answer"; tail -q -n +2 "$OUT"/data/eval-*.csv | sort -u; } > "$OUT/data/eval.csv"
  { echo "question,answer"; tail -q -n +2 "$OUT"/data/train-*.csv | sort -u \
      | grep -v -x -F -f <(tail -n +2 "$OUT/data/eval.csv"); } > "$OUT/data/train.csv"
  echo "train.csv: $(($(wc -l < "$OUT/data/train.csv") - 1)) puzzles, eval.csv: $(($(wc -l < "$OUT/data/eval.csv") - 1))"
}
export -f generate
export PYTHON OUT GEN_PROCS TRAIN_PER_PROC EVAL_PROCS EVAL_PER_PROC
run data "${LIMITS[1]}" bash -c generate
if [ ! -s "$OUT/data/train.csv" ] || [ ! -s "$OUT/data/eval.csv" ]; then
  note "data: no puzzles, so no training stage; throughput runs on generated data"
fi

# -- 3. train ---------------------------------------------------------------------------------------
stage "3. train trm_paper ($DEVICE)"
if [ -s "$OUT/data/train.csv" ] && [ -s "$OUT/data/eval.csv" ]; then
  SETS=(--set "task.train_file=$OUT/data/train.csv" --set "task.eval_file=$OUT/data/eval.csv")
  for s in "${TRAIN_SETS[@]}" ${EXTRA_SET:-}; do SETS+=(--set "$s"); done
  run train "${LIMITS[2]}" "$PYTHON" bench/paper_train.py --out "$OUT/run" --variant trm_paper --device "$DEVICE" \
    "${TRAIN_BUDGET[@]}" "${SETS[@]}"
  if [ -f "$OUT/logs/train.log" ]; then
    grep -E "^(steps/s|final|peak memory|trm_paper on|exact accuracy against|   step| +[0-9]+ )" "$OUT/logs/train.log" \
      | sed 's/^/train: /' >> "$SUMMARY"
  fi
fi

# -- 4. throughput ------------------------------------------------------------------------------------
DATA_SETS=()
if [ -s "$OUT/data/train.csv" ]; then
  DATA_SETS=(--set "task.train_file=$OUT/data/train.csv" --set "task.eval_file=$OUT/data/eval.csv")
fi
throughput() {  # NAME LIMIT ARGS...
  local name="$1" limit="$2"; shift 2
  run "$name" "$limit" "$PYTHON" bench/throughput.py "${TP_COMMON[@]}" "$@"
  if [ -f "$OUT/logs/$name.log" ]; then
    grep -E "examples·steps/s|B/A speed|peak CUDA|peak RSS" "$OUT/logs/$name.log" | grep -v -e '^{' -e quoted \
      | sed "s/^/$name: /" >> "$SUMMARY"
  fi
}
stage "4a. throughput trm_paper, bf16, $MODE"
throughput paper-bf16 "${LIMITS[3]}" "${TP_PAPER[@]}" "${DATA_SETS[@]}" --set trainer.compile=false \
  --set trainer.precision=bf16 "${TP_VS[@]}"
stage "4b. throughput nano-trm shape, fp32, $MODE"
throughput nanotrm-fp32 "${LIMITS[4]}" "${TP_NANO[@]}" --set trainer.precision=fp32 "${TP_VS[@]}"
stage "4c. throughput nano-trm shape, bf16, $MODE"
throughput nanotrm-bf16 "${LIMITS[5]}" "${TP_NANO[@]}" --set trainer.precision=bf16 "${TP_VS[@]}"
stage "4d. throughput trm_paper, fp32, $MODE"
throughput paper-fp32 "${LIMITS[6]}" "${TP_PAPER[@]}" "${DATA_SETS[@]}" --set trainer.compile=false \
  --set trainer.precision=fp32 "${TP_VS[@]}"

# -- summary ------------------------------------------------------------------------------------------
echo
echo "== summary ($DEVICE, ${SECONDS}s; kept in $SUMMARY)"
cat "$SUMMARY"
if [ "${#FAILED[@]}" -gt 0 ]; then
  echo "not completed: ${FAILED[*]}"
  exit 1
fi
echo "all stages completed"
