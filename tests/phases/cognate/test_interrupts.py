"""SIGINT and SIGTERM at a step the run reports: the run saves that step, says how to resume,
exits 128+signal, and the resumed run is bit-identical to one that was never interrupted.

The run waits at the step (tests/forge_child.py) until the signal arrives, so the step it saves
is known, whatever the machine's load: no delays, no polling."""

import json
import signal
import subprocess
import sys

import pytest

from agent_forge.checkpoint import load_train_state
from forge_testing import assert_same_training_state, paused_child

STEPS, EVERY = 24, 5  # periodic checkpoints at 5, 10, ...: the interrupts land between them


def _args(out, tiny, resume=False):
    sets = [a for o in tiny + ["trainer.batch_size=64", "trainer.log_every=1"] for a in ("--set", o)]
    args = ["--json-logs", "run", "phase", "cognate", "--variant", "trm_tiny", "--max-steps", str(STEPS),
            "--checkpoint-every", str(EVERY), "--no-progress", "--out", str(out), *sets]
    return args + (["--resume"] if resume else [])


def _final_state(run_dir):
    latest = json.loads((run_dir / "checkpoints" / "latest.json").read_text())
    assert latest["step"] == STEPS
    return load_train_state(run_dir / "checkpoints" / latest["checkpoint"])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    from forge_testing import TINY

    out = tmp_path_factory.mktemp("full") / "run"
    subprocess.run([sys.executable, "-m", "agent_forge", *_args(out, list(TINY))], check=True, capture_output=True,
                   timeout=300)
    return _final_state(out)


@pytest.mark.parametrize("sig, at", [(signal.SIGINT, 7), (signal.SIGTERM, 13)], ids=["SIGINT", "SIGTERM"])
def test_interrupt_saves_a_step_and_resume_is_bit_identical(tmp_path, tiny, uninterrupted, sig, at):
    out = tmp_path / "run"
    proc = paused_child(_args(out, tiny), f"after_step:{at}", tmp_path)
    proc.send_signal(sig)
    stdout, _ = proc.communicate(timeout=240)
    stderr = (tmp_path / "child.stderr").read_text()
    assert proc.returncode == 128 + sig, stderr[-2000:]
    assert "Traceback" not in stderr and not (out / "result.json").exists()
    # One line says where it stopped, one gives the exact command to continue.
    stopped = [l for l in stderr.splitlines() if l.startswith("stopped: ")]
    resume = [l for l in stderr.splitlines() if l.startswith("resume with: ")]
    assert len(stopped) == 1 and signal.Signals(sig).name in stopped[0], stderr[-2000:]
    assert len(resume) == 1 and "--resume" in resume[0] and str(out) in resume[0]
    # The step in flight when the signal came is the one saved: exactly the step it waited at.
    assert json.loads((out / "checkpoints" / "latest.json").read_text())["step"] == at
    assert f"step {at}" in stopped[0]

    resumed = subprocess.run([sys.executable, "-m", "agent_forge", *_args(out, tiny, resume=True)],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert_same_training_state(uninterrupted, _final_state(out))


def test_a_signal_during_the_final_evaluation_keeps_the_training(tmp_path, tiny, host, monkeypatch):
    """The final evaluation has no step to finish: a signal stops it at once, the finished
    training is in a checkpoint (without --checkpoint-every), and --resume only evaluates."""
    from agent_forge.errors import RunInterrupted
    from agent_forge.phases.cognate import phase as cognate_phase
    from agent_forge.runner import PhaseRunner, RunOptions

    def options(**kw):
        return RunOptions(variant="trm_tiny", max_steps=6, overrides=tuple(tiny), progress=False, **kw)

    whole = PhaseRunner(host).run("cognate", options(), run_dir=tmp_path / "whole")
    handler_before = signal.getsignal(signal.SIGTERM)

    real = cognate_phase.evaluate_weights
    def signal_then_evaluate(*args, **kwargs):  # the user's Ctrl-C arrives as the evaluation starts
        signal.raise_signal(signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(cognate_phase, "evaluate_weights", signal_then_evaluate)
    with pytest.raises(RunInterrupted) as stopped:
        PhaseRunner(host).run("cognate", options(), run_dir=tmp_path / "cut")
    assert stopped.value.step == 6 and stopped.value.exit_code == 128 + signal.SIGTERM
    assert "during the final evaluation" in str(stopped.value) and stopped.value.checkpoint is not None
    assert json.loads((tmp_path / "cut" / "checkpoints" / "latest.json").read_text())["step"] == 6
    assert not (tmp_path / "cut" / "result.json").exists()
    assert signal.getsignal(signal.SIGTERM) is handler_before  # the handler is gone with the evaluation

    monkeypatch.setattr(cognate_phase, "evaluate_weights", real)
    resumed = PhaseRunner(host).run("cognate", options(resume=True), run_dir=tmp_path / "cut")
    assert resumed.status == "completed" and resumed.metrics["steps"] == 6
    assert resumed.metrics["exact_accuracy"] == whole.metrics["exact_accuracy"]
    assert resumed.metrics["token_accuracy"] == whole.metrics["token_accuracy"]
