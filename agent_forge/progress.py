"""A rich progress bar on the shared console, or nothing: the one place that decides which.

Phases build their bars on :class:`TerminalBar`; it draws only when asked to (``enabled``) and
stderr is a terminal, so a redirected log never fills with bar redraws and every method is safe
to call either way. What a phase prints off a terminal (plain log lines) is its own affair.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any


class TerminalBar:
    """``columns(rich.progress)`` gives the bar's columns; ``total``/``completed`` its one task."""

    def __init__(self, enabled: bool, columns: Callable[[ModuleType], Sequence[Any]], *, total: float | None,
                 completed: float = 0, transient: bool = False) -> None:
        from agent_forge.logging import console

        self.bar: Any = None
        self.task: Any = None
        if enabled and console.is_terminal:
            import rich.progress

            self.bar = rich.progress.Progress(*columns(rich.progress), console=console, transient=transient)
            self.task = self.bar.add_task("", total=total, completed=completed)

    @property
    def drawing(self) -> bool:
        """Whether a bar is on screen (enabled, and stderr is a terminal)."""
        return self.bar is not None

    def __enter__(self) -> "TerminalBar":
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.bar:
            self.bar.__exit__(*exc)

    def set(self, **fields: Any) -> None:
        """Update the task's ``completed``, ``description``, ... (rich's ``Progress.update``)."""
        if self.bar:
            self.bar.update(self.task, **fields)

    def advance(self, amount: float) -> None:
        if self.bar:
            self.bar.advance(self.task, amount)
