"""structlog set-up: a console renderer on a terminal, JSON lines otherwise, all on stderr.

Logs and rich progress bars share :data:`console`, so a log line printed while a bar is live
lands above the bar instead of tearing it. Results (JSON, tables, summaries) go to stdout through
:func:`stdout_console`, never through :data:`console`.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog
from rich.console import Console

console = Console(stderr=True)


def stdout_console() -> Console:
    """Where results and tables go: stdout, so ``forge variants > f`` writes the table to ``f``.

    Made per call, so output follows ``sys.stdout`` (a test's capture, a redirect). Off a
    terminal its width is ``COLUMNS`` or 80, and it prints no colour codes.
    """
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


class _ConsoleWriter:
    """A structlog logger factory target that prints through the shared rich console."""

    def msg(self, message: str) -> None:
        if console.is_terminal:
            console.print(message, markup=False, highlight=False, soft_wrap=True)
        else:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def configure_logging(*, debug: bool = False, json_logs: bool | None = None) -> None:
    """Configure structlog once per process; ``json_logs=None`` means "JSON unless a TTY"."""
    if json_logs is None:
        json_logs = not console.is_terminal
    level = logging.DEBUG if debug else logging.INFO
    if int(os.environ.get("RANK", "0")) > 0:
        # In a distributed run rank 0 speaks for the job; the others report only problems.
        level = logging.WARNING
    renderer: Any = (structlog.processors.JSONRenderer() if json_logs
                     else structlog.dev.ConsoleRenderer(colors=console.is_terminal))
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=lambda *args: _ConsoleWriter(),
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> Any:
    return structlog.get_logger("agent_forge").bind(**bound)
