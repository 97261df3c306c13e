import sys
import textwrap
import types

import pytest
from pydantic import BaseModel, ConfigDict

from agent_forge import hookimpl
from agent_forge.plugin_host import PluginError, describe_plugins, load_plugins
from agent_forge.phases.cognate import CallbackSpec, TrainerSpec, VariantSpec
from agent_forge.specs import ArchitectureSpec, DatasetSpec, EvaluatorSpec, PhaseSpec, SpecError


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _build(config, task):
    raise AssertionError("never built in these tests")


def _plugin(name: str, **hooks):
    mod = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(mod, hook_name, hookimpl(fn))
    return mod


def test_builtins_register_through_the_hooks(host):
    assert {"trm", "transformer"} <= set(host.items(ArchitectureSpec))
    assert {"sudoku4", "sudoku6", "sudoku9"} <= set(host.items(DatasetSpec))
    assert {"ema", "act", "early_stop", "memory"} <= set(host.items(CallbackSpec))
    assert {"cognate", "evomerge"} <= set(host.items(PhaseSpec))
    assert host.plugin_of(ArchitectureSpec, "trm") == "agent_forge.plugins.architectures"
    assert host.failures == []


def test_inline_plugin_registers_and_is_selectable():
    def reg(register):
        register(ArchitectureSpec("my_arch", _build, config=_Config, description="inline"))

    host = load_plugins(entry_points=False, extra=(_plugin("my_plugin", forge_register_architectures=reg),))
    assert host.plugin_of(ArchitectureSpec, "my_arch") == "my_plugin"
    assert host.get(ArchitectureSpec, "my_arch").build is _build
    assert any(r["name"] == "my_plugin" and r["registered"] == {"architecture": ["my_arch"]}
               for r in describe_plugins(host))


def test_duplicate_names_are_refused_naming_both_plugins():
    def reg(register):
        register(ArchitectureSpec("trm", _build, config=_Config))

    host = load_plugins(entry_points=False, extra=(_plugin("dup_plugin", forge_register_architectures=reg),))
    failure = next(f for f in host.failures if f.name == "dup_plugin")
    assert "agent_forge.plugins.architectures" in failure.error and "dup_plugin" in failure.error
    # The built-in kept its name; the duplicate plugin registered nothing.
    assert host.plugin_of(ArchitectureSpec, "trm") == "agent_forge.plugins.architectures"


def test_plugin_raising_during_registration_is_skipped_and_reported():
    def good(register):
        register(DatasetSpec("fine", _build, config=_Config))

    def bad(register):
        register(ArchitectureSpec("half", _build, config=_Config))
        raise RuntimeError("boom")

    host = load_plugins(entry_points=False, extra=(
        _plugin("bad_plugin", forge_register_architectures=bad),
        _plugin("good_plugin", forge_register_datasets=good)))
    assert "half" not in host.items(ArchitectureSpec)
    assert "fine" in host.items(DatasetSpec)
    (failure,) = [f for f in host.failures if f.name == "bad_plugin"]
    assert "RuntimeError: boom" in failure.error
    row = next(r for r in describe_plugins(host) if r["name"] == "bad_plugin")
    assert row["status"] == "failed"


def test_misspelled_hook_fails_only_that_plugin():
    mod = types.ModuleType("typo_plugin")
    mod.forge_register_architecturez = hookimpl(lambda register: None)
    host = load_plugins(entry_points=False, extra=(mod,))
    assert any(f.name == "typo_plugin" for f in host.failures)
    assert "trm" in host.items(ArchitectureSpec)


def test_unknown_name_lists_what_exists(host):
    with pytest.raises(PluginError, match=r"Did you mean 'trm'.*transformer"):
        host.get(ArchitectureSpec, "trn")


def test_disable_env_blocks_builtin(monkeypatch):
    monkeypatch.setenv("FORGE_DISABLE_PLUGINS", "agent_forge.plugins.callbacks.memory")
    host = load_plugins(entry_points=False)
    assert "memory" not in host.items(CallbackSpec)
    assert "ema" in host.items(CallbackSpec)


def _fake_distribution(root, name: str, module_source: str) -> None:
    pkg = root / f"{name}.py"
    pkg.write_text(textwrap.dedent(module_source))
    dist = root / f"{name}-1.2.3.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.2.3\n")
    (dist / "entry_points.txt").write_text(f"[agent_forge]\n{name} = {name}\n")


def test_entry_point_plugins_load_and_broken_ones_are_named(tmp_path, monkeypatch):
    _fake_distribution(tmp_path, "forge_good_ep", """
        from agent_forge import hookimpl
        from agent_forge.specs import EvaluatorSpec

        @hookimpl
        def forge_register_evaluators(register):
            register(EvaluatorSpec("always_one", lambda model, task, ctx: {"one": 1.0}))
    """)
    _fake_distribution(tmp_path, "forge_broken_ep", "raise ImportError('missing dependency xyz')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    host = load_plugins(entry_points=True)
    assert host.plugin_of(EvaluatorSpec, "always_one") == "forge_good_ep"
    assert host.plugins["forge_good_ep"].distribution == "forge_good_ep"
    assert host.plugins["forge_good_ep"].version == "1.2.3"
    (failure,) = [f for f in host.failures if f.name == "forge_broken_ep"]
    assert failure.version == "1.2.3" and "missing dependency xyz" in failure.error
    assert "forge_broken_ep (forge_broken_ep 1.2.3)" in failure.describe().replace("'", "")
    sys.modules.pop("forge_good_ep", None)


def test_every_builtin_plugin_loads_and_every_builtin_command_is_there():
    """Two built-ins claiming one command name would make the later one fail silently for users."""
    import typer.main

    from agent_forge.cli import build_app
    from agent_forge.plugin_host import load_plugins

    host = load_plugins(entry_points=False)
    assert [f.describe() for f in host.failures] == []
    names = set(typer.main.get_command(build_app(host)).commands)
    data = set(typer.main.get_command(build_app(host)).commands["data"].commands)
    assert {"import", "export", "eval", "solve", "generate", "show"} <= names
    assert {"generate", "stats", "build", "fetch"} <= data


# -- typed specs --------------------------------------------------------------------------------
def test_lookups_are_typed_by_spec():
    host = load_plugins(entry_points=False)
    spec = host.get(DatasetSpec, "sudoku4")
    assert isinstance(spec, DatasetSpec) and spec.generate is not None and spec.file_stats is not None
    assert isinstance(host.get(VariantSpec, "trm_small").config, dict)
    assert isinstance(host.get(TrainerSpec, "deep_supervision"), TrainerSpec)
    # One name space per spec type: "official" is a dataset and an evaluator, each its own spec.
    assert isinstance(host.get(EvaluatorSpec, "official"), EvaluatorSpec)
    assert isinstance(host.get(DatasetSpec, "official"), DatasetSpec)
    with pytest.raises(PluginError, match=r"Unknown callback 'emma'\. Did you mean 'ema'\?"):
        host.get(CallbackSpec, "emma")


def test_a_malformed_spec_names_its_plugin_and_the_field_and_only_that_plugin_is_skipped():
    def reg(register):
        register(DatasetSpec("ok_task", _build, config=_Config))
        register(DatasetSpec("bad_task", "not callable", config=_Config))

    def no_model(register):
        register(CallbackSpec("loose", lambda cfg: None, config=dict))

    host = load_plugins(entry_points=False, extra=(_plugin("bad_build", forge_register_datasets=reg),
                                                   _plugin("bad_config", forge_register_callbacks=no_model)))
    errors = {f.name: f.error for f in host.failures}
    assert "DatasetSpec('bad_task').build must be callable" in errors["bad_build"]
    assert "CallbackSpec('loose').config must be a pydantic model class or None" in errors["bad_config"]
    assert "ok_task" not in host.items(DatasetSpec)  # half a plugin never stays
    assert "sudoku4" in host.items(DatasetSpec) and "ema" in host.items(CallbackSpec)
    with pytest.raises(SpecError, match=r"name must be a non-empty string"):
        ArchitectureSpec("", _build, config=_Config)


def test_the_old_register_call_is_refused_naming_the_new_spec():
    def old(register):
        register("legacy_task", _build, config=_Config, description="0.1 style")

    def wrong_kind(register):
        register(DatasetSpec("misfiled", _build, config=_Config))

    host = load_plugins(entry_points=False, extra=(_plugin("old_style", forge_register_datasets=old),
                                                   _plugin("wrong_kind", forge_register_callbacks=wrong_kind)))
    errors = {f.name: f.error for f in host.failures}
    assert "register('legacy_task', ...) with the old arguments" in errors["old_style"]
    assert "register(DatasetSpec(...))" in errors["old_style"]
    assert "from agent_forge.specs import DatasetSpec" in errors["old_style"]
    assert "got a DatasetSpec" in errors["wrong_kind"]
    assert "from agent_forge.phases.cognate import CallbackSpec" in errors["wrong_kind"]
    assert "legacy_task" not in host.items(DatasetSpec) and "misfiled" not in host.items(DatasetSpec)


def test_the_phase_brings_its_hooks_and_without_it_they_are_unknown(monkeypatch):
    from agent_forge import hookspecs
    from agent_forge.phases.cognate import hookspecs as cognate_hookspecs

    # The core declares no Cognate hook; the Cognate phase's spec adds them.
    assert not any(hasattr(hookspecs, h) for h in cognate_hookspecs.REGISTRATION_HOOKS)
    host = load_plugins(entry_points=False)
    assert cognate_hookspecs in host.phase_hookspecs
    assert host.registration_hooks["forge_register_callbacks"] is CallbackSpec
    # Without the plugin that registers the phase, a plugin implementing its hooks is refused
    # (an unknown hook), and everything else keeps working.
    monkeypatch.setenv("FORGE_DISABLE_PLUGINS", "agent_forge.plugins.phases")
    bare = load_plugins(entry_points=False)
    assert "cognate" not in bare.items(PhaseSpec) and "trm" in bare.items(ArchitectureSpec)
    assert "agent_forge.plugins.callbacks.ema" in {f.name for f in bare.failures}
