#!/usr/bin/env bash
# Creates .venv in the repository and installs agent-forge (editable) with its dev extra.
# Idempotent: a second run with an unchanged pyproject.toml does nothing.
#
# torch: if the venv has none yet, "$FORGE_TORCH_SPEC" (default torch==2.13.0) is installed
# first. On machines that offer a local CPU wheel of that version (our CI and dev machines do),
# the pin takes it instead of a multi-GB CUDA build. A user with a GPU installs the build they
# want into .venv before running this script (or sets FORGE_TORCH_SPEC); it is then kept,
# because pyproject.toml only asks for torch>=2.4.
set -euo pipefail
cd "$(dirname "$0")/.."
python_bin=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python_bin" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  "${pip[@]}" install "${FORGE_TORCH_SPEC:-torch==2.13.0}"
fi
stamp=.venv/.agent-forge-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "${pip[@]}" install -e ".[dev]"
  echo "$want" > "$stamp"
fi
