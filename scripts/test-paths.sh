#!/usr/bin/env bash
# Runs the CLI tests twice: under a 10-character base temp and under a 200-character one, so that
# nothing depends on path length (an error line wrapped at 80 columns, a path cut by rich).
# Usage: bash scripts/test-paths.sh [pytest args...]   (default: the two CLI test files)
set -euo pipefail
cd "$(dirname "$0")/.."
args=("$@")
[ ${#args[@]} -gt 0 ] || args=(tests/agent_forge/test_cli.py tests/agent_forge/test_cli_errors.py)
short=$(mktemp -d /tmp/fXXXX)            # /tmp/fAbCd: 10 characters, unique
top=$(mktemp -d /tmp/af-long-XXXXXX)
trap 'rm -rf "$short" "$top"' EXIT
long=$(.venv/bin/python -c 'import sys; print((sys.argv[1] + ("/" + "p" * 60) * 4)[:200])' "$top")
mkdir -p "$(dirname "$long")"               # pytest makes only the last folder
for base in "$short" "$long"; do
  echo "== base temp of ${#base} characters: $base"
  .venv/bin/python -m pytest -q --basetemp="$base" "${args[@]}"
done
