"""The Callback base class names every training event, and the built-ins are Callbacks."""

import inspect

from agent_forge.events import Event
from agent_forge.phases.cognate import Callback, TrainState


def test_base_class_has_a_typed_no_op_for_every_event():
    for event in Event:
        method = getattr(Callback, event.value)
        params = list(inspect.signature(method).parameters)
        assert params == ["self", "state"], event
        assert method(Callback(), None) is None
    assert list(inspect.signature(Callback.on_exception).parameters) == ["self", "state", "exc"]
    assert Callback().state_dict() == {} and Callback().eval_weights(None) is None


def test_built_in_callbacks_subclass_the_base(host):
    for name, reg in host.items("callback").items():
        if reg.plugin.startswith("agent_forge.plugins"):
            assert issubclass(reg.obj, Callback), name


def test_a_third_party_callback_subclass_stops_a_run(tmp_path, tiny):
    from agent_forge import run_phase
    from agent_forge import hookimpl
    from agent_forge.plugin_host import load_plugins

    seen = []

    class StopAtStep(Callback):
        def __init__(self, cfg):
            self.logged = 0

        def on_log(self, state: TrainState) -> None:
            self.logged += 1
            if state.step >= 4:
                state.should_stop, state.stop_reason = True, f"stopped at step {state.step}"

        def on_exception(self, state, exc):
            seen.append(exc)

    class Plugin:
        @staticmethod
        @hookimpl
        def forge_register_callbacks(register):
            register("stop_at_4", StopAtStep)

    host = load_plugins(entry_points=False, extra=(Plugin,))
    result = run_phase("cognate", host=host, variant="trm_tiny", max_steps=50, progress=False,
                       out=tmp_path / "run", overrides=tiny + ["callbacks.stop_at_4={}", "trainer.eval_every=null"])
    assert result.status == "stopped" and "stopped at step 4" in result.message
    assert result.metrics["steps"] == 4 and seen == []
