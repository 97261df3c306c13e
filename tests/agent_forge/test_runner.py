"""Pipeline and run_phase from Python, with plugins registered inline (as an embedding program would)."""

import types

import pytest

from agent_forge import Pipeline, hookimpl, load_artifact, run_phase
from agent_forge.contracts import PhaseResult
from agent_forge.errors import ArtifactError
from agent_forge.phases.cognate.trainer import DeepSupervisionTrainer
from agent_forge.phases.cognate.training_config import DeepSupervisionConfig
from agent_forge.plugin_host import load_plugins
from agent_forge.plugins.variants import VARIANTS
from agent_forge.runner import Phase
from agent_forge.phases.cognate import Callback, CallbackSpec, TrainerSpec, VariantSpec
from agent_forge.specs import PhaseSpec
from forge_testing import TINY


class ConsumerPhase(Phase):
    """A later phase that receives Cognate's result and loads (verifies) every artifact."""

    name = "consumer"
    seen: list = []

    def run(self, ctx):
        loaded = []
        for ref in ctx.previous.artifacts:
            artifact, state = load_artifact(ref.manifest_path)
            loaded.append((artifact.id, sum(t.numel() for t in state.values())))
        ConsumerPhase.seen.append(loaded)
        return PhaseResult(phase=self.name, status="completed", run_dir=ctx.run_dir, duration_s=0.0,
                           metrics={"models_loaded": float(len(loaded))})


class RecordingTrainer(DeepSupervisionTrainer):
    fits = 0

    def fit(self, ctx):
        RecordingTrainer.fits += 1
        return super().fit(ctx)


class CountingCallback(Callback):
    def __init__(self, cfg):
        self.steps = 0

    def on_step_end(self, trainer, state):
        self.steps += 1


def _plugin(events):
    mod = types.ModuleType("inline_test_plugin")

    def forge_register_phases(register):
        register(PhaseSpec("consumer", ConsumerPhase))

    def forge_register_trainers(register):
        register(TrainerSpec("recording", RecordingTrainer, config=DeepSupervisionConfig))

    def forge_register_callbacks(register):
        register(CallbackSpec("counting", CountingCallback))

    def forge_register_variants(register):
        spec = {**VARIANTS["trm_tiny"][0], "trainer": {**VARIANTS["trm_tiny"][0]["trainer"], "name": "recording"},
                "callbacks": {"ema": {"decay": 0.9}, "counting": True}}
        register(VariantSpec("tiny_recorded", spec, description="test variant"))

    def forge_phase_start(phase, config):
        events.append(("start", phase))

    def forge_phase_end(phase, result):
        events.append(("end", phase, result.status))

    def forge_artifact_saved(artifact):
        events.append(("artifact", artifact.phase))

    for fn in (forge_register_phases, forge_register_trainers, forge_register_callbacks, forge_register_variants,
               forge_phase_start, forge_phase_end, forge_artifact_saved):
        setattr(mod, fn.__name__, hookimpl(fn))
    return mod


def test_pipeline_hands_cognate_artifacts_to_a_later_phase(tmp_path):
    events: list = []
    host = load_plugins(entry_points=False, extra=(_plugin(events),))
    results = Pipeline(["cognate", "consumer"], host=host).run(
        per_phase={"cognate": {"overrides": tuple(TINY)}}, variant="tiny_recorded", max_steps=4, models=2,
        progress=False, out=tmp_path / "pipe")
    cognate, consumer = results
    assert cognate.status == "completed" and len(cognate.artifacts) == 2
    assert consumer.metrics["models_loaded"] == 2.0
    assert [a for a, _ in ConsumerPhase.seen[-1]] == [r.artifact.id for r in cognate.artifacts]
    assert RecordingTrainer.fits >= 2
    assert events[0] == ("start", "cognate") and ("end", "consumer", "completed") in events
    assert events.count(("artifact", "cognate")) == 2
    assert (tmp_path / "pipe" / "cognate" / "model-1" / "metrics.jsonl").exists()

    # A tampered weights file is refused by the next phase.
    weights = cognate.artifacts[0].manifest_path.with_suffix(".safetensors")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x7F
    weights.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        host_run = Pipeline(["consumer"], host=host)
        host_run.runner.run("consumer", previous=cognate, run_dir=tmp_path / "again")


def test_run_phase_from_python(tmp_path, host):
    result = run_phase("cognate", host=host, variant="trm_tiny", overrides=TINY, max_steps=3, progress=False,
                       out=tmp_path / "r")
    assert result.status == "completed" and (tmp_path / "r" / "result.json").exists()
    assert result.artifacts[0].artifact.parents == ()


def test_unknown_phase_in_pipeline_fails_before_running(host):
    with pytest.raises(Exception, match="Unknown phase 'cognat'"):
        Pipeline(["cognat", "evomerge"], host=host)


class EchoPhase(Phase):
    """A phase without apply_run_options: it sees its config exactly as variant + file + --set give it."""

    name = "echo"

    def run(self, ctx):  # pragma: no cover - only prepared here
        raise AssertionError("not run")


def test_run_options_leave_a_phase_without_apply_run_options_untouched(tmp_path):
    from agent_forge.runner import PhaseRunner, RunOptions

    mod = types.ModuleType("echo_plugin")
    mod.forge_register_phases = hookimpl(lambda register: register(PhaseSpec("echo", EchoPhase)))
    host = load_plugins(entry_points=False, extra=(mod,))
    config = tmp_path / "echo.json"
    config.write_text('{"trainer": {"minutes": 5}, "seed": 7}')
    options = RunOptions(config_file=config, max_steps=3, minutes=None, checkpoint_every=2, models=4, seed=1,
                         task="sudoku4", overrides=("extra=1",))
    _, raw, validated = PhaseRunner(host).prepare("echo", options)
    # The runner writes no trainer.*, seed, task or models field: only the phase could.
    assert raw == {"trainer": {"minutes": 5}, "seed": 7, "extra": 1} == validated


def test_cognate_turns_run_options_into_its_own_config(host):
    from agent_forge.errors import ConfigError
    from agent_forge.runner import PhaseRunner, RunOptions

    runner = PhaseRunner(host)
    _, raw, cfg = runner.prepare("cognate", RunOptions(variant="trm_tiny", max_steps=5, checkpoint_every=2,
                                                       models=3, seed=4, task="sudoku4"))
    assert "minutes" not in raw["trainer"]  # an explicit step limit replaces the variant's time budget
    assert (cfg.trainer.max_steps, cfg.trainer.minutes, cfg.trainer.checkpoint_every) == (5, None, 2)
    assert (cfg.models, cfg.seed, cfg.task_name) == (3, 4, "sudoku4")
    assert cfg.model_dump()["models"] == 3
    _, _, both = runner.prepare("cognate", RunOptions(variant="trm_tiny", max_steps=5, minutes=1.5))
    assert (both.trainer.max_steps, both.trainer.minutes) == (5, 1.5)
    _, _, default = runner.prepare("cognate", RunOptions(variant="trm_tiny"))
    assert default.models == 1
    # --set wins over the flag, and the field is validated like any other.
    _, _, overridden = runner.prepare("cognate", RunOptions(variant="trm_tiny", models=3, overrides=("models=2",)))
    assert overridden.models == 2
    with pytest.raises(ConfigError, match="models: expected an integer >= 1"):
        runner.prepare("cognate", RunOptions(variant="trm_tiny", overrides=("models=0",)))


def test_a_budget_that_max_steps_replaced_is_stated_not_dropped_silently(host, capsys):
    from agent_forge.cli.commands import print_summary
    from agent_forge.runner import PhaseRunner, RunOptions

    runner = PhaseRunner(host)
    minutes = VARIANTS["trm_tiny"][0]["trainer"]["minutes"]
    options = RunOptions(variant="trm_tiny", max_steps=5)
    phase, _, cfg = runner.prepare("cognate", options)
    assert cfg.trainer.minutes is None and phase.replaced_budget == {"minutes": minutes}
    (note,) = phase.budget_notes(cfg, options)
    assert note.startswith(f"--max-steps 5 replaced the config's trainer.minutes={minutes}") and "--minutes" in note
    # Both given: both apply, nothing replaced. A --set that restores the budget: nothing to say.
    both = RunOptions(variant="trm_tiny", max_steps=5, minutes=1.5)
    phase, _, cfg = runner.prepare("cognate", both)
    assert phase.budget_notes(cfg, both) == [] and (cfg.trainer.max_steps, cfg.trainer.minutes) == (5, 1.5)
    restored = RunOptions(variant="trm_tiny", max_steps=5, overrides=("trainer.minutes=2",))
    phase, _, cfg = runner.prepare("cognate", restored)
    assert phase.budget_notes(cfg, restored) == []
    # The run's summary prints the phase's notes.
    result = PhaseResult(phase="cognate", status="completed", run_dir=".", duration_s=1.0, details={"notes": [note]})
    capsys.readouterr()
    print_summary([result])
    assert f"cognate note: {note}" in capsys.readouterr().out.replace("\n", " ")


def test_run_options_are_declared_once_and_both_run_commands_take_their_flags(host):
    import typer.main

    from agent_forge.cli import build_app
    from agent_forge.cli.commands import PIPELINE_OPTIONS
    from agent_forge.errors import ConfigError
    from agent_forge.runner import RunOptions, flag_of

    run = typer.main.get_command(build_app(host)).commands["run"]
    flags = {name: flag_of(name) for name in RunOptions.model_fields if name != "runs_root"}
    assert flags["overrides"] == "--set" and flags["config_file"] == "--config" and flags["loggers"] == "--logger"

    def options(command):
        return {opt for p in command.params if p.param_type_name == "option" for opt in p.opts}

    assert options(run.commands["phase"]) == set(flags.values()) | {"-v", "--json", "--nproc", "--backend"}
    assert options(run.commands["pipeline"]) == {flags[n] for n in PIPELINE_OPTIONS} | {"-v", "--json"}
    for command in ("phase", "pipeline"):  # the help is the field's own
        progress = next(p for p in run.commands[command].params if "--progress" in p.opts)
        assert progress.help == RunOptions.model_fields["progress"].json_schema_extra["help"]
        assert progress.secondary_opts == ["--no-progress"]
    with pytest.raises(ConfigError, match=r"^--max-steps 0: input should be greater than or equal to 1"):
        RunOptions.checked(max_steps=0)


def test_a_phase_that_does_not_train_ignores_the_pipeline_flags(host):
    from agent_forge.runner import PhaseRunner, RunOptions

    _, raw, _ = PhaseRunner(host).prepare("evomerge", RunOptions(max_steps=3, minutes=1.0, seed=2, models=2))
    assert raw == {}


# -- fail before work ------------------------------------------------------------------------------
class PickyPhase(Phase):
    """A phase whose config needs ``ok: true`` and whose check_ready records the world size."""

    name = "picky"
    checked: list = []

    def validate(self, raw):
        from agent_forge.errors import ConfigError

        if raw.get("ok") is not True:
            raise ConfigError(f"ok: expected true, got {raw.get('ok')!r}")
        return raw

    def check_ready(self, config, *, options, run_dir, world_size):
        from agent_forge.errors import ConfigError

        PickyPhase.checked.append(world_size)
        if config.get("refuse"):
            raise ConfigError("refuse: this phase cannot start here")

    def run(self, ctx):
        return PhaseResult(phase=self.name, status="completed", run_dir=ctx.run_dir, duration_s=0.0)


def _picky_host():
    mod = types.ModuleType("picky_plugin")
    mod.forge_register_phases = hookimpl(lambda register: register(PhaseSpec("picky", PickyPhase)))
    mod.forge_register_trainers = hookimpl(
        lambda register: register(TrainerSpec("recording", RecordingTrainer, config=DeepSupervisionConfig)))
    return load_plugins(entry_points=False, extra=(mod,))


def test_a_pipeline_checks_every_phase_before_the_first_one_trains(tmp_path):
    from agent_forge.errors import ConfigError

    host = _picky_host()
    fits = RecordingTrainer.fits
    with pytest.raises(ConfigError, match=r"pipeline phase 'picky': ok: expected true, got None"):
        Pipeline(["cognate", "picky"], host=host).run(
            per_phase={"cognate": {"overrides": (*TINY, "trainer.name=recording")}}, variant="trm_tiny",
            max_steps=2, progress=False, out=tmp_path / "pipe")
    assert RecordingTrainer.fits == fits and not (tmp_path / "pipe").exists()
    with pytest.raises(ConfigError, match=r"pipeline phase 'cognate': --max-steps 0"):
        Pipeline(["cognate", "picky"], host=host).run(max_steps=0, out=tmp_path / "pipe")
    assert not (tmp_path / "pipe").exists()


def test_check_ready_runs_before_the_run_folder_exists_and_gets_the_world_size(tmp_path):
    from agent_forge.errors import ConfigError
    from agent_forge.runner import PhaseRunner, RunOptions

    runner = PhaseRunner(_picky_host())
    PickyPhase.checked.clear()
    *_, run_dir = runner.check("picky", RunOptions(overrides=("ok=true",), out=tmp_path / "p"), world_size=4)
    assert PickyPhase.checked == [4] and run_dir == tmp_path / "p" and not run_dir.exists()
    with pytest.raises(ConfigError, match="cannot start here"):
        runner.run("picky", RunOptions(overrides=("ok=true", "refuse=true"), out=tmp_path / "p"))
    assert not (tmp_path / "p").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="needs a machine without CUDA")
def test_a_refused_start_makes_no_run_folder(tmp_path, host):
    from agent_forge.errors import ConfigError

    with pytest.raises(ConfigError, match="no CUDA device"):
        run_phase("cognate", host=host, variant="trm_tiny", overrides=[*TINY, "trainer.device=cuda"], max_steps=1,
                  progress=False, out=tmp_path / "cuda")
    with pytest.raises(ConfigError, match="no checkpoint"):
        run_phase("cognate", host=host, variant="trm_tiny", overrides=TINY, max_steps=1, progress=False,
                  out=tmp_path / "resume", resume=True)
    assert list(tmp_path.iterdir()) == []


def test_an_unfinished_run_is_never_overwritten(tmp_path, host):
    from agent_forge.errors import ForgeError

    out = tmp_path / "run"
    run_phase("cognate", host=host, variant="trm_tiny", overrides=TINY, max_steps=2, checkpoint_every=1,
              progress=False, out=out)
    (out / "result.json").unlink()  # as if it had been cut off after its checkpoints
    before = {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}
    with pytest.raises(ForgeError, match=r"unfinished run .*--resume.*another --out"):
        run_phase("cognate", host=host, variant="trm_tiny", overrides=TINY, max_steps=3, progress=False, out=out)
    assert {p: p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()} == before
    resumed = run_phase("cognate", host=host, variant="trm_tiny", overrides=TINY, max_steps=3, checkpoint_every=1,
                        progress=False, out=out, resume=True)
    assert resumed.status == "completed"
