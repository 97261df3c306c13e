"""A run killed with SIGKILL after a checkpoint, and resumed, reaches bit-identical weights.

The run waits right after the checkpoint it is killed at (tests/forge_child.py), so where it dies
is known whatever the machine's load: no delays, no polling."""

import json
import os
import signal
import subprocess
import sys

import pytest

from agent_forge.checkpoint import load_train_state
from forge_testing import assert_same_training_state, paused_child

STEPS, EVERY = 24, 3
KILL_AFTER = 12  # a checkpoint step in the middle of the run


def _args(out, tiny, resume=False):
    sets = [a for o in tiny + ["trainer.batch_size=64"] for a in ("--set", o)]
    args = ["--json-logs", "run", "phase", "cognate", "--variant", "trm_tiny", "--max-steps", str(STEPS),
            "--checkpoint-every", str(EVERY), "--no-progress", "--out", str(out), *sets]
    return args + (["--resume"] if resume else [])


def _cmd(out, tiny, resume=False):
    return [sys.executable, "-m", "agent_forge", *_args(out, tiny, resume)]


def _final_state(run_dir):
    latest = json.loads((run_dir / "checkpoints" / "latest.json").read_text())
    assert latest["step"] == STEPS
    return load_train_state(run_dir / "checkpoints" / latest["checkpoint"])


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_then_resume_is_bit_identical(tmp_path, tiny):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    full = tmp_path / "full"
    subprocess.run(_cmd(full, tiny), check=True, capture_output=True, env=env, timeout=300)

    killed = tmp_path / "killed"
    proc = paused_child(_args(killed, tiny), f"before_step:{KILL_AFTER}", tmp_path)
    proc.send_signal(signal.SIGKILL)  # it waits with step 12 saved and step 13 not started
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "result.json").exists()
    assert json.loads((killed / "checkpoints" / "latest.json").read_text())["step"] == KILL_AFTER

    resumed = subprocess.run(_cmd(killed, tiny, resume=True), capture_output=True, text=True, env=env, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_training_state(_final_state(full), _final_state(killed))
    # The metrics log has no duplicated or missing steps after the resume.
    steps = [json.loads(l)["step"] for l in (killed / "metrics.jsonl").read_text().splitlines()
             if json.loads(l)["kind"] == "train"]
    assert steps == sorted(set(steps)) and steps[-1] == STEPS


def test_resume_with_a_changed_config_is_refused(tmp_path, tiny):
    out = tmp_path / "run"
    subprocess.run(_cmd(out, tiny), check=True, capture_output=True, timeout=300)
    (out / "result.json").unlink()  # as if it had been killed after its last checkpoint
    changed = _cmd(out, tiny, resume=True) + ["--set", "trainer.lr=0.5"]
    proc = subprocess.run(changed, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "trainer.lr" in proc.stderr and "Traceback" not in proc.stderr
