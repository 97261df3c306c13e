"""A run killed with SIGKILL at a random step and resumed reaches bit-identical weights."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from agent_forge.checkpoint import load_train_state
from forge_testing import assert_same_training_state

STEPS, EVERY = 24, 3


def _cmd(out, tiny, resume=False):
    sets = [a for o in tiny + ["trainer.batch_size=64"] for a in ("--set", o)]
    cmd = [sys.executable, "-m", "agent_forge", "--json-logs", "run", "phase", "cognate", "--variant", "trm_tiny",
           "--max-steps", str(STEPS), "--checkpoint-every", str(EVERY), "--no-progress", "--out", str(out), *sets]
    return cmd + (["--resume"] if resume else [])


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
    kill_after = random.Random(os.getpid()).choice(range(EVERY, STEPS - EVERY, EVERY))
    proc = subprocess.Popen(_cmd(killed, tiny), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    pointer = killed / "checkpoints" / "latest.json"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if json.loads(pointer.read_text())["step"] >= kill_after:
                proc.send_signal(signal.SIGKILL)
                break
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            pass
        time.sleep(0.005)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (killed / "result.json").exists()

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
    changed = _cmd(out, tiny, resume=True) + ["--set", "trainer.lr=0.5"]
    proc = subprocess.run(changed, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "trainer.lr" in proc.stderr and "Traceback" not in proc.stderr
