"""structlog set-up: a console renderer on a terminal, JSON lines otherwise, all on stderr.

A library logs only when asked: :func:`get_logger` hands out loggers of agent-forge's own (it
never touches structlog's global configuration), and they write nothing until
:func:`configure_logging` is called. The ``forge`` command calls it for every command; a Python
program that wants the run's log lines calls it too::

    from agent_forge.logging import configure_logging
    configure_logging()            # INFO and above on stderr; json_logs=True for JSON lines

Either way every line goes to stderr, never stdout. Logs and rich progress bars share
:data:`console`, so a log line printed while a bar is live lands above the bar instead of
tearing it. Results (JSON, tables, summaries) go to stdout through :func:`stdout_console`,
never through :data:`console`.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import structlog
from rich.console import Console

console = Console(stderr=True)

#: What :func:`configure_logging` chose; read by every logger at each call, so one made before
#: the configuration (a module's logger) follows it. ``enabled`` False: every line is dropped.
_settings: dict[str, Any] = {"enabled": False, "level": logging.INFO, "json": True, "colors": False}
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "warn": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL, "exception": logging.ERROR,
           "fatal": logging.CRITICAL, "msg": logging.INFO, "log": logging.INFO}


def stdout_console() -> Console:
    """Where results and tables go: stdout, so ``forge variants > f`` writes the table to ``f``.

    Made per call, so output follows ``sys.stdout`` (a test's capture, a redirect). Off a
    terminal its width is ``COLUMNS`` or 80, and it prints no colour codes.
    """
    return Console(file=sys.stdout, highlight=False, soft_wrap=False)


class _ConsoleWriter:
    """The structlog logger at the end of the chain: prints through the shared rich console on a
    terminal, else writes the line to stderr (whatever ``sys.stderr`` is at that moment)."""

    def msg(self, message: str) -> None:
        if console.is_terminal:
            console.print(message, markup=False, highlight=False, soft_wrap=True)
        else:
            sys.stderr.write(message + "\n")
            sys.stderr.flush()

    log = debug = info = warn = warning = error = critical = exception = fatal = msg


def _gate(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """Drop the line unless logging was asked for, at a level it lets through."""
    if not _settings["enabled"] or _LEVELS.get(method, logging.INFO) < _settings["level"]:
        raise structlog.DropEvent
    return event


def _render(logger: Any, method: str, event: dict[str, Any]) -> str:
    if _settings["json"]:
        return structlog.processors.JSONRenderer()(logger, method, event)
    return structlog.dev.ConsoleRenderer(colors=_settings["colors"])(logger, method, event)


_PROCESSORS = [_gate, structlog.contextvars.merge_contextvars, structlog.processors.add_log_level,
               structlog.processors.TimeStamper(fmt="iso", utc=True), structlog.processors.format_exc_info, _render]


def configure_logging(*, debug: bool = False, json_logs: bool | None = None) -> None:
    """Turn agent-forge's log lines on, on stderr; ``json_logs=None`` means "JSON unless a TTY".

    INFO and above (DEBUG with ``debug``); in a distributed run only rank 0 logs below WARNING.
    """
    if json_logs is None:
        json_logs = not console.is_terminal
    level = logging.DEBUG if debug else logging.INFO
    if int(os.environ.get("RANK", "0")) > 0:
        # In a distributed run rank 0 speaks for the job; the others report only problems.
        level = logging.WARNING
    _settings.update(enabled=True, level=level, json=bool(json_logs), colors=console.is_terminal)


def get_logger(**bound: Any) -> Any:
    """An agent-forge logger with ``bound`` fields; silent until :func:`configure_logging`."""
    return structlog.wrap_logger(_ConsoleWriter(), processors=_PROCESSORS,
                                 wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG)).bind(**bound)
