#!/usr/bin/env bash
# Run the tests that used to depend on timing (signals, kills, resume, distributed ranks) many
# times in a row on a loaded machine, logging the load average of every pass: issue 27's check
# that they fail only for what the code does. A pass is one pytest run of the selection below.
#
#   bash scripts/repeat_tests.sh [PASSES] [BUSY] [STREAMS]
#
# PASSES passes per stream (default 20); BUSY busy-loop processes beside them for the whole run
# (default 2); STREAMS independent streams at once (default 1), each its own pytest temp folder:
# two streams load each other. The log (one line per pass: rc, load at start and end, seconds,
# pytest's summary) is written to repeat-tests/stream-K.log (git ignores the folder); it exits non-zero if any pass failed.
set -u
passes=${1:-20}; busy=${2:-2}; streams=${3:-1}
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=repeat-tests
mkdir -p "$out"
selection=(
  tests/phases/cognate/test_interrupts.py
  tests/phases/cognate/test_resume.py::test_sigkill_then_resume_is_bit_identical
  tests/phases/evomerge/test_resume.py::test_sigkill_after_generation_two_then_resume_is_bit_identical
  tests/agent_forge/test_distributed.py::test_a_killed_rank_fails_the_job_and_resume_finishes
  tests/agent_forge/test_distributed.py::test_sigterm_to_the_launcher_saves_every_rank_and_resume_is_bit_identical
  tests/agent_forge/test_config.py
)
# SELECTION="tests/a.py tests/b.py" replaces the list (to check this script itself on a short one).
if [ -n "${SELECTION:-}" ]; then read -ra selection <<< "$SELECTION"; fi
pids=()
for _ in $(seq 1 "$busy"); do (while :; do :; done) & pids+=($!); done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT

stream() {
  local k=$1 log="$out/stream-$1.log" failed=0
  echo "stream $k at $(git rev-parse --short HEAD), $busy busy processes, $streams streams" > "$log"
  for i in $(seq 1 "$passes"); do
    local start=$SECONDS load0; load0=$(cut -d' ' -f1 /proc/loadavg)
    "$python" -m pytest -q -p no:cacheprovider --basetemp="$out/tmp-$k" "${selection[@]}" > "$out/stream-$k-pass-$i.out" 2>&1
    local rc=$?
    [ $rc -ne 0 ] && failed=1
    echo "pass $i rc=$rc load $load0-$(cut -d' ' -f1 /proc/loadavg) $((SECONDS - start)) s :: $(tail -1 "$out/stream-$k-pass-$i.out")" >> "$log"
  done
  return $failed
}

spids=()
for k in $(seq 1 "$streams"); do stream "$k" & spids+=($!); done
status=0
for p in "${spids[@]}"; do wait "$p" || status=1; done
cat "$out"/stream-*.log
exit $status
