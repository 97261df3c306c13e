"""The Callback base class names every training event, the built-ins are Callbacks, the trainer
refuses anything else, and a callback may assign only what CALLBACK_WRITABLE lists."""

import inspect

import pytest

from agent_forge.errors import ConfigError
from agent_forge.phases.cognate import CALLBACK_WRITABLE, Callback, CallbackSpec, Event, TrainState
from agent_forge.phases.cognate.callback import CallbackList


def test_base_class_has_a_typed_no_op_for_every_event():
    for event in Event:
        method = getattr(Callback, event.value)
        params = list(inspect.signature(method).parameters)
        assert params == ["self", "trainer", "state"], event
        assert method(Callback(), None, None) is None
        # The list fires each event by a method of its own, with the same arguments.
        assert list(inspect.signature(getattr(CallbackList, event.value)).parameters) == params, event
    assert list(inspect.signature(Callback.on_exception).parameters) == ["self", "trainer", "state", "exc"]
    assert Callback().state_dict() == {} and Callback().eval_weights(None) is None


def test_built_in_callbacks_subclass_the_base(host):
    for name, spec in host.items(CallbackSpec).items():
        if host.plugin_of(CallbackSpec, name).startswith("agent_forge.plugins"):
            assert issubclass(spec.build, Callback), name


def test_an_object_that_is_not_a_callback_is_refused_by_name():
    class Plain:
        def on_step_end(self, trainer, state):
            pass

    with pytest.raises(ConfigError, match=r"callbacks\.plain: its plugin built a Plain, which is not a Callback"):
        CallbackList({"ok": Callback(), "plain": Plain()})


def test_a_callback_may_assign_only_what_the_state_lists(tiny_state):
    state = tiny_state

    class Writes(Callback):
        def __init__(self, field, value):
            self.field, self.value = field, value

        def on_log(self, trainer, state):
            setattr(state, self.field, self.value)

    CallbackList({"stopper": Writes("should_stop", True)}).on_log(None, state)
    assert state.should_stop is True
    with pytest.raises(AttributeError, match=r"callback 'stepper' assigned state\.step, which the trainer owns"):
        CallbackList({"stepper": Writes("step", 99)}).on_log(None, state)
    assert state.step == 0
    state.step = 5  # the trainer itself (no callback running) assigns anything
    assert state.step == 5
    assert {"losses", "halted", "min_halt_steps", "max_sup_steps", "metrics", "should_stop",
            "stop_reason"} == set(CALLBACK_WRITABLE)


@pytest.fixture
def tiny_state():
    import torch

    from agent_forge.phases.cognate.schedule import DataStream

    model = torch.nn.Linear(1, 1)
    model.n_sup = 1
    generator = torch.Generator()
    return TrainState(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1), task=None,
                      device=torch.device("cpu"), run_dir=None, config=None, generator=generator,
                      stream=DataStream(4, generator))


def test_a_third_party_callback_subclass_stops_a_run(tmp_path, tiny):
    from agent_forge import hookimpl, run_phase
    from agent_forge.plugin_host import load_plugins

    seen = []

    class StopAtStep(Callback):
        def __init__(self, cfg):
            self.logged = 0

        def on_log(self, trainer, state: TrainState) -> None:
            self.logged += 1
            if state.step >= 4:
                state.should_stop, state.stop_reason = True, f"stopped at step {state.step}"

        def on_exception(self, trainer, state, exc):
            seen.append(exc)

    class Plugin:
        @staticmethod
        @hookimpl
        def forge_register_callbacks(register):
            register(CallbackSpec("stop_at_4", StopAtStep))

    host = load_plugins(entry_points=False, extra=(Plugin,))
    result = run_phase("cognate", host=host, variant="trm_tiny", max_steps=50, progress=False,
                       out=tmp_path / "run", overrides=tiny + ["callbacks.stop_at_4={}", "trainer.eval_every=null"])
    assert result.status == "stopped" and "stopped at step 4" in result.message
    assert result.metrics["steps"] == 4 and seen == []
