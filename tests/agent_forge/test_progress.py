import io

import pytest

from agent_forge.logging import console
from agent_forge.progress import TerminalBar


def _columns(rp):
    return [rp.TextColumn("{task.description}"), rp.MofNCompleteColumn()]


@pytest.mark.parametrize("enabled,terminal,drawn", [(True, True, True), (True, False, False), (False, True, False)])
def test_a_bar_is_drawn_only_when_enabled_on_a_terminal(monkeypatch, enabled, terminal, drawn):
    monkeypatch.setattr(console, "_force_terminal", terminal)
    monkeypatch.setattr(console, "_file", io.StringIO())
    with TerminalBar(enabled, _columns, total=4, completed=1) as bar:
        bar.advance(2)
        bar.set(description="half")
        assert bar.drawing is drawn
        if drawn:
            task = bar.bar.tasks[0]
            assert (task.completed, task.total, task.description) == (3, 4, "half")
