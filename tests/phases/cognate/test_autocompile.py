"""trainer.compile=auto: compile only when the expected saving exceeds the compile time, record
what was measured, and go back to eager when the compiled step is not faster. The clock is a
fake one, so nothing here depends on the machine's speed."""

import json
import types

import pytest
import torch

from agent_forge.phases.cognate import CallbackSpec, TrainerSpec
from agent_forge.specs import DatasetSpec
from agent_forge.phases.cognate.autocompile import (AutoCompile, CompileRecords, GUESSED_SPEEDUP,
                                                    training_left_s)


class Clock:
    """Returns the times it is given, one per call."""

    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t

    def advance(self, s):
        self.t += s


class Log:
    def __init__(self):
        self.lines = []

    def info(self, event, **kw):
        self.lines.append((event, kw))

    warning = info


def state(step=0, elapsed_s=0.0):
    model = torch.nn.Linear(2, 2)
    return types.SimpleNamespace(model=model, forward_module=model, step=step, elapsed_s=elapsed_s,
                                 device=torch.device("cpu"), precision="fp32",
                                 local_batch=lambda: {"inputs": torch.zeros(4, 3)})


def run(auto, st, clock, step_times):
    for took in step_times:
        clock.advance(took)
        st.step += 1
        st.elapsed_s += took
        if not auto.done:
            auto.after_step(st)


def cfg(max_steps=None, minutes=None):
    return types.SimpleNamespace(max_steps=max_steps, minutes=minutes)


def test_training_left_is_the_budget_that_ends_first():
    st = state(step=100, elapsed_s=30.0)
    assert training_left_s(cfg(max_steps=1100), st, 0.2) == pytest.approx(200.0)
    assert training_left_s(cfg(minutes=1.0), st, 0.2) == pytest.approx(30.0)
    assert training_left_s(cfg(max_steps=1100, minutes=1.0), st, 0.2) == pytest.approx(30.0)


def test_a_short_run_stays_eager_and_says_why(tmp_path):
    clock, log, st = Clock(), Log(), state()
    wrapped = []
    auto = AutoCompile(st, cfg(max_steps=50), lambda m: wrapped.append(m) or m, log, probe=3,
                       records=CompileRecords(tmp_path / "r.json"), clock=clock)
    run(auto, st, clock, [5.0, 1.0, 1.0, 1.0])
    assert auto.done and auto.decision == "eager" and not wrapped
    event, kw = log.lines[-1]
    # 46 steps left at 1 s: a saving of 46 * (1 - 1/1.3) = 11 s, against a guessed cold compile.
    assert event == "compile.auto" and kw["decision"] == "eager" and kw["from_record"] is False
    assert kw["expected_saving_s"] == pytest.approx(46 * (1 - 1 / GUESSED_SPEEDUP), abs=0.1)


def test_a_long_run_compiles_records_and_keeps_a_faster_step(tmp_path):
    clock, log, st = Clock(), Log(), state()
    records = CompileRecords(tmp_path / "r.json")
    compiled = object()
    auto = AutoCompile(st, cfg(max_steps=10_000), lambda m: compiled, log, probe=3, records=records, clock=clock)
    # warm-up, 3 eager steps of 1 s, the compiled first step (40 s), 3 compiled steps of 0.5 s
    run(auto, st, clock, [5.0, 1.0, 1.0, 1.0, 40.0, 0.5, 0.5, 0.5])
    assert auto.done and auto.decision == "compiled" and st.forward_module is compiled
    rec = list(json.loads((tmp_path / "r.json").read_text()).values())
    assert rec == [{"compile_s": 39.5, "speedup": 2.0, "compiles": 1}]
    # The next run of the same model reads the machine's own figures; its kernels are cached now.
    key = next(iter(json.loads((tmp_path / "r.json").read_text())))
    est = records.estimate(key, "cpu")
    assert (est.compile_s, est.speedup, est.measured) == (pytest.approx(3.95), 2.0, True)
    records.write(key, 4.2, 1.9)  # a second, warm compile is expected to cost what it cost
    assert records.estimate(key, "cpu").compile_s == pytest.approx(4.2)


def test_a_compiled_step_that_is_not_faster_goes_back_to_eager(tmp_path):
    clock, log, st = Clock(), Log(), state()
    eager = st.forward_module
    auto = AutoCompile(st, cfg(max_steps=10_000), lambda m: object(), log, probe=3,
                       records=CompileRecords(tmp_path / "r.json"), clock=clock)
    run(auto, st, clock, [5.0, 1.0, 1.0, 1.0, 40.0, 1.2, 1.2, 1.2])
    assert auto.decision == "eager" and st.forward_module is eager
    assert log.lines[-1][1]["decision"] == "back to eager" and log.lines[-1][1]["speedup"] < 1


def test_a_record_that_says_compiling_loses_keeps_the_run_eager(tmp_path):
    clock, st = Clock(), state()
    records = CompileRecords(tmp_path / "r.json")
    first = AutoCompile(st, cfg(max_steps=10_000), lambda m: object(), None, probe=3, records=records, clock=clock)
    run(first, st, clock, [5.0, 1.0, 1.0, 1.0, 40.0, 1.2, 1.2, 1.2])  # measured: no speed-up
    st2, clock2, wrapped = state(), Clock(), []
    second = AutoCompile(st2, cfg(max_steps=10_000), lambda m: wrapped.append(m) or m, None, probe=3,
                         records=records, clock=clock2)
    run(second, st2, clock2, [5.0, 1.0, 1.0, 1.0])
    assert second.decision == "eager" and not wrapped


def _fit_auto(host, tmp_path, raw):
    """Train ``raw`` (trainer.compile=auto) through the trainer: (model, FitResult, its log)."""
    from agent_forge.phases.cognate.fit import FitContext
    from agent_forge.phases.cognate.phase import build_model, validate_cognate
    from agent_forge.plugins.loggers import JsonlLogger

    c = validate_cognate(host, raw)
    assert c.trainer.compile == "auto"
    task = host.get(DatasetSpec, c.task_name).build(c.task, c.data_seed)
    model = build_model(host, c, task.spec, c.seed)
    log = Log()
    trainer = host.get(TrainerSpec, c.trainer_name).build(c.trainer)
    fit = trainer.fit(FitContext(model=model, task=task, run_dir=tmp_path, seed=c.seed, host=host,
                                 callbacks={n: host.get(CallbackSpec, n).build(x) for n, x in c.callbacks.items()},
                                 evaluators=c.evaluators, progress=False, log=log, loggers=JsonlLogger(None, tmp_path)))
    return model, fit, log


def test_compile_auto_trains_end_to_end_and_stays_eager_on_a_tiny_budget(host, tmp_path, tiny):
    from agent_forge.config import apply_overrides
    from agent_forge.plugins.variants import VARIANTS

    raw = apply_overrides(VARIANTS["trm_tiny"][0], [*tiny, "trainer.max_steps=6", "trainer.compile=auto"])
    model, fit, log = _fit_auto(host, tmp_path, raw)
    assert fit.status == "completed" and fit.state.forward_module is model
    assert [kw["decision"] for e, kw in log.lines if e == "compile.auto"] == ["eager"]


@pytest.mark.slow
def test_compile_auto_compiles_mid_run_when_it_pays(host, tmp_path, tiny, monkeypatch):
    """The real path: after the eager probe the trainer's step runs through torch.compile."""
    from torch._dynamo.utils import counters

    from agent_forge.config import apply_overrides
    from agent_forge.phases.cognate import autocompile
    from agent_forge.plugins.variants import VARIANTS

    monkeypatch.setattr(autocompile.CompileRecords, "estimate",
                        lambda self, key, device: autocompile.Estimate(0.1, 5.0, True))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    counters.clear()
    raw = apply_overrides(VARIANTS["trm_tiny"][0], [*tiny, "trainer.max_steps=10", "trainer.compile=auto"])
    model, fit, log = _fit_auto(host, tmp_path, raw)
    decisions = [kw["decision"] for e, kw in log.lines if e == "compile.auto"]
    assert fit.status == "completed" and decisions[0] == "compile" and len(decisions) == 2
    assert counters["stats"]["unique_graphs"] >= 1  # the training forward was traced
