"""Meta-tests (after datasette): every hook is documented in docs/plugins.md and exercised by a test."""

from pathlib import Path

import pytest

from agent_forge import hookspecs

ROOT = Path(__file__).resolve().parents[1]
HOOKS = sorted(name for name in dir(hookspecs) if name.startswith("forge_"))


def test_hooks_exist():
    assert "forge_register_architectures" in HOOKS and len(HOOKS) == 13


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_documented(hook):
    assert f"`{hook}(" in (ROOT / "docs" / "plugins.md").read_text()
    assert getattr(hookspecs, hook).__doc__, f"{hook} has no docstring in hookspecs.py"


@pytest.mark.parametrize("hook", HOOKS)
def test_hook_is_exercised_by_a_test(hook):
    tests = [p for p in (ROOT / "tests").rglob("test_*.py") if p.name != Path(__file__).name]
    examples = list((ROOT / "examples").rglob("*.py"))
    assert any(hook in p.read_text() for p in tests + examples), f"no test uses {hook}"
