"""``forge ablate --equal-time``: step budgets from timed steps, recorded; ``--arm-steps`` reruns them.

The timing is faked everywhere but in one smoke test: what is checked is the arithmetic, the
order of the turns, and what the runs and the report get, not how fast this machine is.
"""

import json
import math

import pytest

from agent_forge.errors import ConfigError
from agent_forge.phases.cognate.ablation import runner
from agent_forge.phases.cognate.ablation.arms import parse_arm_steps
from agent_forge.phases.cognate.ablation.calibrate import calibrate, equal_time_steps, measure_interleaved
from agent_forge.phases.cognate.ablation.runner import run_ablation

SMALL = ["task.train_count=64", "task.eval_count=32", "task.blanks=[6, 8]", "model.d_model=16", "model.n_layers=1",
         "model.n_heads=2", "trainer.batch_size=16", "trainer.eval_every=null", "trainer.log_every=2",
         "trainer.eval_batch_size=32", "trainer.threads=1", "trainer.precision=fp32", "trainer.compile=false"]


def test_steps_are_the_seconds_over_each_arms_step_time():
    assert equal_time_steps(100.0, {"control": 0.25, "B": 0.4, "C": 0.41}) == {"control": 400, "B": 250, "C": 244}
    assert equal_time_steps(1.0, {"slow": 30.0}) == {"slow": 1}  # never a run without a step


def test_turns_are_interleaved_rotated_and_a_burst_does_not_move_the_median():
    now = [0.0]
    calls: list[str] = []
    cost = {"a": 1.0, "b": 2.0, "c": 3.0}

    def stepper(name):
        def step():
            calls.append(name)
            # One turn of b runs under a burst of load: 100 s longer.
            now[0] += cost[name] + (100.0 if name == "b" and calls.count("b") == 5 else 0.0)
        return step

    seconds = measure_interleaved({n: stepper(n) for n in cost}, warmup=2, block=1, rounds=3, clock=lambda: now[0])
    assert seconds == {"a": 1.0, "b": 2.0, "c": 3.0}
    assert calls[:6] == ["a", "a", "b", "b", "c", "c"]  # the untimed warm-up first
    assert calls[6:] == ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # every round starts one arm later


def _fake_calibration(seen):
    def fake(host, arms, **timing):
        seen.extend(arms)
        return {"step_seconds": {"baseline": 0.25, "trm_tiny": 0.5}, "load_average_before": [4.0, 3.0, 2.0],
                "load_average_after": [4.5, 3.0, 2.0], "seconds": 12.3, "warmup": 4, "block": 3, "rounds": 7}
    return fake


def test_equal_time_gives_each_arm_its_steps_and_records_the_calibration(tmp_path, host, monkeypatch):
    seen: list = []
    monkeypatch.setattr(runner, "calibrate", _fake_calibration(seen))
    out = tmp_path / "abl"
    data = run_ablation(host, ["baseline", "trm_tiny"], task="sudoku4", seeds=1, equal_time=1.0, overrides=SMALL,
                        out=out, progress=False)
    assert [arm for arm, _, _ in seen] == ["baseline", "trm_tiny"]
    assert data["arm_steps"] == {"baseline": 4, "trm_tiny": 2}
    for arm, steps in data["arm_steps"].items():
        trainer = json.loads((out / arm / "seed-0" / "config.json").read_text())["config"]["trainer"]
        assert trainer["max_steps"] == steps and trainer["minutes"] is None and trainer["epochs"] is None
        assert data["runs"][arm][0]["steps"] == steps
    record = json.loads((out / "ablation.json").read_text())["equal_time"]
    assert record["seconds_per_run"] == 1.0 and record["steps"] == {"baseline": 4, "trm_tiny": 2}
    assert record["step_seconds"] == {"baseline": 0.25, "trm_tiny": 0.5}
    assert record["load_average_before"] == [4.0, 3.0, 2.0]
    text = (out / "ablation.md").read_text()
    assert "equal wall-clock budget of 1.0 s of training per run (--equal-time)" in text
    assert "| baseline | 0.2500 | 4 | 1.0 s |" in text and "| trm_tiny | 0.5000 | 2 | 1.0 s |" in text
    assert "4.00 / 3.00 / 2.00 before" in text and "`--arm-steps baseline=4,trm_tiny=2`" in text


def test_arm_steps_rerun_the_recorded_counts_without_timing(tmp_path, host, monkeypatch):
    monkeypatch.setattr(runner, "calibrate", lambda *a, **k: pytest.fail("--arm-steps must not calibrate"))
    out = tmp_path / "abl"
    data = run_ablation(host, ["baseline", "trm_tiny"], task="sudoku4", seeds=1, overrides=SMALL, out=out,
                        progress=False, arm_steps=parse_arm_steps("trm_tiny=1,baseline=3"))
    assert data["arm_steps"] == {"baseline": 3, "trm_tiny": 1} and data["equal_time"] is None
    assert [data["runs"][arm][0]["steps"] for arm in ("baseline", "trm_tiny")] == [3, 1]
    assert "each arm's own step budget (--arm-steps" in (out / "ablation.md").read_text()


@pytest.mark.parametrize("budget, match", [
    ({"equal_time": 0.0}, r"--equal-time 0.0: give the training seconds per run, above 0"),
    ({"equal_time": -5.0}, r"--equal-time -5.0: .*above 0"),
    ({"equal_time": math.nan}, r"--equal-time nan: .*above 0"),
    ({"equal_time": 60.0, "max_steps": 10}, r"^--max-steps and --equal-time: give one training budget"),
    ({"equal_time": 60.0, "minutes": 1.0}, r"^--minutes and --equal-time: give one training budget"),
    ({"arm_steps": {"baseline": 3}, "equal_time": 60.0}, r"--equal-time and --arm-steps"),
    ({"arm_steps": {"baseline": 3}}, r"--arm-steps: no steps for arm trm_tiny; give every arm's, e.g."
                                     r" baseline=200,trm_tiny=200"),
    ({"arm_steps": {"baseline": 3, "trm_tiny": 2, "wide": 1}}, r"--arm-steps wide=1: no arm 'wide'.*baseline, trm_tiny"),
    ({"arm_steps": {"baseline": 0, "trm_tiny": 2}}, r"--arm-steps baseline=0: give 1 or more"),
])
def test_a_budget_that_cannot_be_run_is_refused_before_anything_runs(tmp_path, host, monkeypatch, budget, match):
    monkeypatch.setattr(runner, "calibrate", lambda *a, **k: pytest.fail("refused before the calibration"))
    with pytest.raises(ConfigError, match=match):
        run_ablation(host, ["baseline", "trm_tiny"], task="sudoku4", seeds=1, overrides=SMALL, out=tmp_path / "abl",
                     progress=False, **budget)
    assert not (tmp_path / "abl").exists()


def test_arm_steps_take_a_folded_arms_other_name():
    # --arms lm-seed002 --base lm_baseline_70m runs the control as 'base (= control)'.
    assert runner._check_arm_steps({"control": 5, "B": 3}, ["base", "B"], {"base": ["control"]}) == {"base": 5, "B": 3}


@pytest.mark.parametrize("text", ["base=3,A=x", "=3", "base", ","])
def test_arm_steps_text_that_is_not_arm_equals_steps(text):
    with pytest.raises(ConfigError, match="--arm-steps"):
        parse_arm_steps(text)


def test_the_calibration_times_each_arms_own_training_step(host):
    """Real steps of two tiny arms, one turn each: a positive time per arm, the threads restored."""
    import torch

    threads = torch.get_num_threads()
    arms = [("baseline", "baseline", tuple(SMALL) + ("task.name=sudoku4", "trainer.max_steps=100")),
            ("trm_tiny", "trm_tiny", tuple(SMALL) + ("task.name=sudoku4", "trainer.max_steps=100", "model.n_sup=2"))]
    cal = calibrate(host, arms, warmup=1, block=1, rounds=1)
    assert set(cal["step_seconds"]) == {"baseline", "trm_tiny"} and all(s > 0 for s in cal["step_seconds"].values())
    assert torch.get_num_threads() == threads
    auto = [("trm_tiny", "trm_tiny", tuple(SMALL) + ("task.name=sudoku4", "trainer.compile=auto"))]
    with pytest.raises(ConfigError, match=r"--equal-time: arm trm_tiny has trainer.compile='auto'.*--set"
                                          r" trainer.compile=false"):
        calibrate(host, auto)
