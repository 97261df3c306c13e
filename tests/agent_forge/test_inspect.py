"""``forge inspect``: verified only when both the manifest and the weights are; edits exit 2."""

import json
import os
import subprocess
import sys

import pytest
import torch

from agent_forge.artifacts import write_artifact
from agent_forge.contracts import TaskSpec, VersionInfo


def forge(*args):
    return subprocess.run([sys.executable, "-m", "agent_forge", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"}, timeout=120)


@pytest.fixture
def manifest(tmp_path):
    write_artifact(tmp_path / "m.json", dict(
        id="m", phase="cognate", variant="trm_tiny", architecture="trm", architecture_config={}, parameters=134337,
        metrics={"exact_accuracy": 0.25, "train_seconds": 42.4}, step=6,
        task=TaskSpec(name="sudoku4", vocab_size=6, seq_len=16), versions=VersionInfo.current()),
        {"w": torch.ones(3)})
    return tmp_path / "m.json"


def test_inspect_shows_a_verified_manifest_in_plain_numbers(manifest):
    proc = forge("inspect", str(manifest))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout + proc.stderr
    assert "verified manifest" in out and "verified weights" in out
    assert "134,337" in out and "0.250" in out and "42 s" in out and "e+0" not in out
    info = json.loads(forge("inspect", str(manifest), "--json").stdout)
    assert info["verified"] is info["manifest_verified"] is info["weights_verified"] is True


def test_inspect_refuses_a_forged_manifest_in_one_line(manifest):
    data = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**data, "metrics": {**data["metrics"], "exact_accuracy": 0.99}}, indent=2))
    proc = forge("inspect", str(manifest))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "metrics" in errors[0] and "edited" in errors[0]
    assert proc.stdout == "" and "verified" not in proc.stderr


def test_inspect_says_unverified_for_a_schema_1_manifest(manifest):
    data = json.loads(manifest.read_text())
    for key in ("field_sha256", "manifest_sha256"):
        del data[key]
    manifest.write_text(json.dumps({**data, "schema_version": 1}))
    proc = forge("inspect", str(manifest))
    assert proc.returncode == 0, proc.stderr
    assert "manifest unverified" in proc.stdout and "verified manifest" not in proc.stdout
    info = json.loads(forge("inspect", str(manifest), "--json").stdout)
    assert info["verified"] is False and info["manifest_verified"] is False and info["weights_verified"] is True
