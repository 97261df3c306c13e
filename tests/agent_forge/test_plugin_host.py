import sys
import textwrap
import types

import pytest

from agent_forge import hookimpl
from agent_forge.plugin_host import PluginError, describe_plugins, load_plugins


def _plugin(name: str, **hooks):
    mod = types.ModuleType(name)
    for hook_name, fn in hooks.items():
        setattr(mod, hook_name, hookimpl(fn))
    return mod


def test_builtins_register_through_the_hooks(host):
    assert {"trm", "transformer"} <= set(host.items("architecture"))
    assert {"sudoku4", "sudoku6", "sudoku9"} <= set(host.items("dataset"))
    assert {"ema", "act", "early_stop", "memory"} <= set(host.items("callback"))
    assert {"cognate", "evomerge"} <= set(host.items("phase"))
    assert host.get("architecture", "trm").plugin == "agent_forge.plugins.architectures"
    assert host.failures == []


def test_inline_plugin_registers_and_is_selectable():
    def reg(register):
        register("my_arch", object, config=None, description="inline")

    host = load_plugins(entry_points=False, extra=(_plugin("my_plugin", forge_register_architectures=reg),))
    assert host.get("architecture", "my_arch").plugin == "my_plugin"
    assert any(r["name"] == "my_plugin" and r["registered"] == {"architecture": ["my_arch"]}
               for r in describe_plugins(host))


def test_duplicate_names_are_refused_naming_both_plugins():
    def reg(register):
        register("trm", object)

    host = load_plugins(entry_points=False, extra=(_plugin("dup_plugin", forge_register_architectures=reg),))
    failure = next(f for f in host.failures if f.name == "dup_plugin")
    assert "agent_forge.plugins.architectures" in failure.error and "dup_plugin" in failure.error
    # The built-in kept its name; the duplicate plugin registered nothing.
    assert host.get("architecture", "trm").plugin == "agent_forge.plugins.architectures"


def test_plugin_raising_during_registration_is_skipped_and_reported():
    def good(register):
        register("fine", object)

    def bad(register):
        register("half", object)
        raise RuntimeError("boom")

    host = load_plugins(entry_points=False, extra=(
        _plugin("bad_plugin", forge_register_architectures=bad),
        _plugin("good_plugin", forge_register_datasets=good)))
    assert "half" not in host.items("architecture")
    assert "fine" in host.items("dataset")
    (failure,) = [f for f in host.failures if f.name == "bad_plugin"]
    assert "RuntimeError: boom" in failure.error
    row = next(r for r in describe_plugins(host) if r["name"] == "bad_plugin")
    assert row["status"] == "failed"


def test_misspelled_hook_fails_only_that_plugin():
    mod = types.ModuleType("typo_plugin")
    mod.forge_register_architecturez = hookimpl(lambda register: None)
    host = load_plugins(entry_points=False, extra=(mod,))
    assert any(f.name == "typo_plugin" for f in host.failures)
    assert "trm" in host.items("architecture")


def test_unknown_name_lists_what_exists(host):
    with pytest.raises(PluginError, match=r"Did you mean 'trm'.*transformer"):
        host.get("architecture", "trn")


def test_disable_env_blocks_builtin(monkeypatch):
    monkeypatch.setenv("FORGE_DISABLE_PLUGINS", "agent_forge.plugins.callbacks.memory")
    host = load_plugins(entry_points=False)
    assert "memory" not in host.items("callback")
    assert "ema" in host.items("callback")


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

        @hookimpl
        def forge_register_evaluators(register):
            register("always_one", lambda model, task, ctx: {"one": 1.0})
    """)
    _fake_distribution(tmp_path, "forge_broken_ep", "raise ImportError('missing dependency xyz')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    host = load_plugins(entry_points=True)
    assert host.get("evaluator", "always_one").plugin == "forge_good_ep"
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
