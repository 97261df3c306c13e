"""Meta-tests (after datasette): every hook, the core's and those a phase adds, is documented in
docs/plugins.md and exercised by a test."""

from pathlib import Path

import pytest

from agent_forge import hookspecs
from agent_forge.phases.cognate import hookspecs as cognate_hookspecs

ROOT = Path(__file__).resolve().parents[1]
SPEC_MODULES = (hookspecs, cognate_hookspecs)
HOOKS = sorted((name, module) for module in SPEC_MODULES for name in dir(module) if name.startswith("forge_"))


def test_hooks_exist():
    core = [name for name, module in HOOKS if module is hookspecs]
    phase = [name for name, module in HOOKS if module is cognate_hookspecs]
    assert "forge_register_architectures" in core and len(core) == 10
    assert phase == ["forge_register_callbacks", "forge_register_trainers", "forge_register_variants"]
    assert len({name for name, _ in HOOKS}) == len(HOOKS)  # no hook declared twice


@pytest.mark.parametrize("hook,module", HOOKS, ids=[name for name, _ in HOOKS])
def test_hook_is_documented(hook, module):
    assert f"`{hook}(" in (ROOT / "docs" / "plugins.md").read_text()
    assert getattr(module, hook).__doc__, f"{hook} has no docstring in {module.__name__}"


@pytest.mark.parametrize("hook", [name for name, _ in HOOKS])
def test_hook_is_exercised_by_a_test(hook):
    tests = [p for p in (ROOT / "tests").rglob("test_*.py") if p.name != Path(__file__).name]
    examples = list((ROOT / "examples").rglob("*.py"))
    assert any(hook in p.read_text() for p in tests + examples), f"no test uses {hook}"
