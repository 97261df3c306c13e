"""An EvoMerge run killed with SIGKILL after generation 2 and resumed hands on the same model, bit for bit.

The run waits right after generation 2's checkpoint (tests/forge_child.py) until it is killed:
where it dies is known whatever the machine's load."""

import json
import os
import signal
import subprocess
import sys

import pytest

from agent_forge import load_artifact, run_phase
from forge_testing import TINY, paused_child

GENERATIONS = 6  # the kill lands after generation 2, well before the last
KILL_AFTER = 2


def _args(out, manifests, resume=False):
    sets = [f"inputs=[{','.join(manifests)}]"] if manifests else []  # a resume may leave them out
    sets += ["selection_samples=16", "heldout_samples=16", f"generations={GENERATIONS}", "population=4", "elite=1"]
    args = ["--json-logs", "run", "phase", "evomerge", "--no-progress", "--out", str(out),
            *[a for s in sets for a in ("--set", s)]]
    return args + (["--resume"] if resume else [])


def _cmd(out, manifests, resume=False):
    return [sys.executable, "-m", "agent_forge", *_args(out, manifests, resume)]


def _outcome(run_dir):
    result = json.loads((run_dir / "result.json").read_text())
    artifact, weights = load_artifact(run_dir / "artifacts" / "merged.json")
    history = [{k: v for k, v in row.items() if k != "elapsed_s"} for row in result["details"]["history"]]
    return artifact, weights, history, result["details"]["population"]


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_after_generation_two_then_resume_is_bit_identical(tmp_path, host):
    cognate = run_phase("cognate", host=host, variant="trm_tiny", overrides=TINY, max_steps=3, models=2,
                        progress=False, out=tmp_path / "cognate")
    manifests = [str(a.manifest_path) for a in cognate.artifacts]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    full = tmp_path / "full"
    subprocess.run(_cmd(full, manifests), check=True, capture_output=True, env=env, timeout=300)

    killed = tmp_path / "killed"
    proc = paused_child(_args(killed, manifests), f"after_generation:{KILL_AFTER}", tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "result.json").exists()
    pointer = killed / "checkpoints" / "latest.json"
    assert json.loads(pointer.read_text())["generation"] == KILL_AFTER

    resumed = subprocess.run(_cmd(killed, manifests, resume=True), capture_output=True, text=True, env=env,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "evomerge.resumed" in resumed.stderr
    a, wa, ha, pa = _outcome(full)
    b, wb, hb, pb = _outcome(killed)
    assert a.sha256 == b.sha256 and a.metrics == b.metrics and a.parents == b.parents
    assert wa.keys() == wb.keys() and all(wa[k].equal(wb[k]) for k in wa)
    assert ha == hb and pa == pb and len(ha) == GENERATIONS + 1


def test_resume_with_a_changed_setting_is_refused(tmp_path, host):
    cognate = run_phase("cognate", host=host, variant="trm_tiny", overrides=TINY, max_steps=3, progress=False,
                        out=tmp_path / "cognate")
    manifests = [str(cognate.artifacts[0].manifest_path)]
    out = tmp_path / "run"
    cmd = _cmd(out, manifests)
    cmd[cmd.index(f"generations={GENERATIONS}")] = "generations=1"
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    (out / "result.json").unlink()  # as if it had been killed after its last generation
    proc = subprocess.run(_cmd(out, manifests, resume=True) + ["--set", "population=5"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 2 and "population" in proc.stderr and "Traceback" not in proc.stderr
    # The budget may change: more generations continue from the checkpoint, which names the inputs.
    more = subprocess.run(_cmd(out, None, resume=True), capture_output=True, text=True, timeout=300)
    assert more.returncode == 0, more.stderr[-2000:]
    assert json.loads((out / "result.json").read_text())["metrics"]["generations"] == GENERATIONS
