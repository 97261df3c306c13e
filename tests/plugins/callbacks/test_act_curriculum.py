"""The halting curriculum of the ``act`` callback (``callbacks.act.curriculum_steps``): fixed depth
first, adaptive halting after, resumable exactly."""

import dataclasses
import json
import time
import types

import pytest
import torch
from pydantic import ValidationError

from agent_forge.checkpoint import load_train_state
from agent_forge.config import apply_overrides
from agent_forge.models.protocol import ModelOutput
from agent_forge.phases.cognate.building import build_model
from agent_forge.phases.cognate.config import validate_cognate
from agent_forge.phases.cognate.trainer import FitContext
from agent_forge.plugins.callbacks.act import ACTCallback, ACTConfig
from agent_forge.plugins.variants import VARIANTS
from agent_forge.phases.cognate import Callback, CallbackSpec, TrainerSpec
from agent_forge.specs import DatasetSpec
from forge_testing import assert_same_training_state


def _state(step, *, max_steps=None, minutes=None, elapsed_s=0.0, q=(3.0, 3.0)):
    b = len(q)
    return types.SimpleNamespace(
        output=ModelOutput(logits=torch.zeros(b, 2, 3), q_halt_logits=torch.tensor(q)), step=step,
        elapsed_s=elapsed_s, sup_steps=torch.ones(b, dtype=torch.long), min_halt_steps=torch.ones(b, dtype=torch.long),
        halted=torch.zeros(b, dtype=torch.bool), metrics={},
        config=types.SimpleNamespace(max_steps=max_steps, minutes=minutes))


def _fit_start(cb, state):
    """ACT resolves its curriculum from the trainer's config at the first start."""
    cb.on_fit_start(types.SimpleNamespace(cfg=state.config), state)


def _halts(cb, state):
    state.halted = torch.zeros_like(state.halted)
    cb.on_halt(None, state)
    return bool(state.halted.all())


def test_a_step_count_holds_every_sample_to_full_depth_then_halting_is_adaptive():
    cb = ACTCallback(ACTConfig(curriculum_steps=3))
    _fit_start(cb, _state(0, max_steps=100))
    # The Q-head says halt (q > 0) at every step; it is obeyed only after step 3.
    assert [_halts(cb, _state(s)) for s in (1, 2, 3, 4, 5)] == [False, False, False, True, True]
    assert cb.adaptive_from == 4
    log = _state(5)
    cb.on_log(None, log)
    assert log.metrics == {"act_fixed_depth": 0.0}


def test_without_a_curriculum_halting_is_adaptive_from_the_start_and_nothing_is_logged():
    for k in (None, 0):
        cb = ACTCallback(ACTConfig(curriculum_steps=k))
        _fit_start(cb, _state(0, max_steps=10))
        assert _halts(cb, _state(1))
        log = _state(1)
        cb.on_log(None, log)
        assert log.metrics == {}


def test_a_fraction_is_of_max_steps_when_set_else_of_the_time_budget():
    cb = ACTCallback(ACTConfig(curriculum_steps=0.25))
    _fit_start(cb, _state(0, max_steps=40, minutes=5.0))
    assert (cb.until_step, cb.until_s) == (10, None)
    timed = ACTCallback(ACTConfig(curriculum_steps=0.25))
    _fit_start(timed, _state(0, minutes=2.0))
    assert (timed.until_step, timed.until_s) == (None, 30.0)
    assert not _halts(timed, _state(7, elapsed_s=29.9))
    assert _halts(timed, _state(8, elapsed_s=30.1))
    assert timed.adaptive_from == 8
    log = _state(8)
    timed.on_log(None, log)
    assert log.metrics == {"act_fixed_depth": 0.0}


def test_the_state_keeps_the_first_resolution_and_the_switch_across_a_resume():
    cb = ACTCallback(ACTConfig(curriculum_steps=0.5))
    _fit_start(cb, _state(0, max_steps=20))
    assert not _halts(cb, _state(10)) and _halts(cb, _state(11))
    saved = json.loads(json.dumps(cb.state_dict()))  # JSON scalars only
    resumed = ACTCallback(ACTConfig(curriculum_steps=0.5))
    resumed.load_state_dict(saved)
    _fit_start(resumed, _state(11, max_steps=200))  # a resume with a longer budget keeps step 10
    assert (resumed.until_step, resumed.adaptive_from) == (10, 11)
    assert _halts(resumed, _state(12))
    # Halting stays adaptive once it became so, whatever the clock says after a resume.
    timed = ACTCallback(ACTConfig(curriculum_steps=0.5))
    timed.load_state_dict({"resolved": True, "until_step": None, "until_s": 60.0, "adaptive_from": 30})
    assert _halts(timed, _state(31, elapsed_s=1.0))


@pytest.mark.parametrize("value", [1.5, -1, True, 0.0])
def test_bad_curriculum_values_are_refused(value):
    with pytest.raises(ValidationError, match="curriculum_steps"):
        ACTConfig(curriculum_steps=value)


def test_integer_and_fraction_keep_their_types():
    assert ACTConfig(curriculum_steps=200).curriculum_steps == 200
    assert isinstance(ACTConfig(curriculum_steps=1.0).curriculum_steps, float)


# -- in the trainer ---------------------------------------------------------------------------
class SayHalt(Callback):
    """Sets the Q-head's logits to 'halt' after every step (runs before act's on_halt). It stands in
    for the model, so it writes the output's tensor in place: a callback may not replace the output."""

    @torch.no_grad()
    def on_step_end(self, trainer, state):
        state.output.q_halt_logits.fill_(10.0)


#: A step budget only. trm_tiny's preset also has ``trainer.minutes=8.5``, which ``--max-steps`` drops
#: on the command line but a ``trainer.max_steps`` override keeps; with a time budget the cosine lr
#: reads the wall clock (``schedule.lr_factor``: at the first step after warm-up the step fraction
#: is 0 and elapsed/minutes decides), so two runs are bit-identical only by luck of the float32
#: rounding. Bit-identical runs and resumes are promised for step (and epoch) budgets.
STEPS_ONLY = ["trainer.minutes=null"]


def _latest(run_dir):
    pointer = json.loads((run_dir / "checkpoints" / "latest.json").read_text())
    return load_train_state(run_dir / "checkpoints" / pointer["checkpoint"])


def _fit(host, run_dir, overrides, callbacks_extra=None, resume=False):
    cfg = validate_cognate(host, apply_overrides(VARIANTS["trm_tiny"][0], overrides))
    task = host.get(DatasetSpec, cfg.task_name).build(cfg.task, cfg.data_seed)
    model = build_model(host, cfg, task.spec, cfg.seed)
    callbacks = dict(callbacks_extra or {})
    callbacks.update({n: host.get(CallbackSpec, n).build(c) for n, c in cfg.callbacks.items()})
    trainer = host.get(TrainerSpec, cfg.trainer_name).build(cfg.trainer)
    return trainer.fit(FitContext(model=model, task=task, run_dir=run_dir, seed=cfg.seed, callbacks=callbacks,
                                  host=host, evaluators=cfg.evaluators, resume=resume, progress=False))


def test_the_trainer_runs_full_depth_during_the_curriculum_then_obeys_the_head(host, tmp_path, tiny):
    sets = tiny + ["trainer.max_steps=12", "trainer.log_every=1", "trainer.eval_every=null",
                   "callbacks.act.curriculum_steps=6", "callbacks.act.explore_prob=0.0"]
    rows = _fit(host, tmp_path / "run", sets, {"say_halt": SayHalt()}).state.history
    n_sup = 3  # TINY
    fixed = [r for r in rows if r["step"] <= 6]
    adaptive = [r for r in rows if r["step"] > 6]
    assert all(r["act_fixed_depth"] == 1.0 for r in fixed) and all(r["act_fixed_depth"] == 0.0 for r in adaptive)
    # Fixed depth: samples finish only at n_sup (steps 3 and 6). Adaptive: all halt after one step.
    assert [r["step"] for r in fixed if r["finished"]] == [3, 6]
    assert all(r["mean_sup_steps"] == n_sup for r in fixed if r["finished"])
    assert all(r["finished"] == 16 for r in adaptive) and {r["mean_sup_steps"] for r in adaptive} <= {1.0, 2.0, 3.0}
    assert adaptive[-1]["mean_sup_steps"] == 1.0


def test_a_crashed_curriculum_run_resumes_bit_identically(host, tmp_path, tiny):
    class Crash(Callback):
        def on_step_start(self, trainer, state):
            if state.step == 5:
                raise RuntimeError("crash after the checkpoint at step 4")

    # A fraction of the budget: fixed depth to step 6, the crash at 5 and the switch after the resume.
    sets = tiny + STEPS_ONLY + ["trainer.max_steps=12", "trainer.checkpoint_every=4", "trainer.eval_every=null",
                                "callbacks.act.curriculum_steps=0.5"]
    full = _fit(host, tmp_path / "full", sets, {"say_halt": SayHalt()})
    assert full.state.callbacks["act"].adaptive_from == 7
    with pytest.raises(RuntimeError, match="crash"):
        _fit(host, tmp_path / "crashed", sets, {"say_halt": SayHalt(), "crash": Crash()})
    resumed = _fit(host, tmp_path / "crashed", sets, {"say_halt": SayHalt()}, resume=True)
    assert resumed.state.step == 12 and resumed.state.callbacks["act"].adaptive_from == 7

    a, b = _latest(tmp_path / "full"), _latest(tmp_path / "crashed")
    assert_same_training_state(a, b)
    assert a["callbacks"]["act"] == b["callbacks"]["act"] == {"resolved": True, "until_step": 6, "until_s": None,
                                                             "adaptive_from": 7}


def test_two_runs_in_one_process_are_bit_identical_however_long_their_steps_take(host, tmp_path, tiny):
    class Slow(Callback):
        """Half a second after the last warm-up step: the next step's lr would see it if the
        schedule read the clock (it did, through trm_tiny's time budget: this test's first fail)."""

        def on_step_end(self, trainer, state):
            if state.step == 2:  # TINY's warmup_steps
                time.sleep(0.5)

    sets = tiny + STEPS_ONLY + ["trainer.max_steps=8", "trainer.eval_every=null", "callbacks.act.curriculum_steps=0.5"]
    _fit(host, tmp_path / "a", sets, {"say_halt": SayHalt()})
    _fit(host, tmp_path / "b", sets, {"say_halt": SayHalt(), "slow": Slow()})
    assert_same_training_state(_latest(tmp_path / "a"), _latest(tmp_path / "b"))
