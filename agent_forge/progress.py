"""A rich progress bar on the shared console, or plain lines: the one place that decides which.

Phases build their bars on :class:`TerminalBar`; it draws only when asked to (``enabled``) and
stderr is a terminal, so a redirected log never fills with bar redraws and every method is safe
to call either way. Off a terminal (a log file, CI, a cluster job), long work says how far it
got in a log line (:class:`PlainLines`): one when it starts, then one every
:data:`PROGRESS_LINE_EVERY_S` seconds — the one interval every command uses and documents.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

#: Seconds between two plain progress lines off a terminal (``--progress`` help, README).
PROGRESS_LINE_EVERY_S = 30.0


class PlainLines:
    """``event`` log lines off a terminal: :meth:`tick` writes one when none was written yet (with
    ``at_start``; else once ``every_s`` seconds have passed since the first tick) or ``every_s``
    seconds have passed since the last; a no-op when not ``enabled`` or on a terminal (a bar
    shows the same there). ``clock`` is for tests."""

    def __init__(self, enabled: bool, event: str, *, log: Any = None, every_s: float = PROGRESS_LINE_EVERY_S,
                 at_start: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        from agent_forge.logging import console, get_logger

        self.active = enabled and not console.is_terminal
        self.event, self.every_s, self.clock, self.at_start = event, every_s, clock, at_start
        self.log = log if log is not None else get_logger()
        self.last: float | None = None

    def tick(self, **fields: Any) -> bool:
        """Write a line with ``fields`` if one is due; return whether it did."""
        if not self.active:
            return False
        now = self.clock()
        if self.last is None and not self.at_start:
            self.last = now  # the clock starts now; the first line comes every_s later
            return False
        if self.last is not None and now - self.last < self.every_s:
            return False
        self.last = now
        self.log.info(self.event, **fields)
        return True


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
