"""Metrics loggers: where a run's config, metrics rows, evaluations and images go.

A logger plugin registers ``register(LoggerSpec(name, build, config=Model | None,
check_available=None))`` through ``forge_register_loggers``; ``build(config, run_dir)`` returns a
:class:`Logger`. A phase
builds the loggers its config names and calls them through a :class:`LoggerSet`, which fans
each call out and keeps a run alive when one logger fails (the failure is logged once and that
logger is dropped): a broken dashboard must never cost a training run.

Built-ins (``agent_forge.plugins.loggers``): ``jsonl`` (``metrics.jsonl``, the run's own record,
read by the report, ``forge runs`` and the ablation), ``csv``, ``tensorboard``, ``wandb`` (extra ``wandb``, offline) and ``mlflow`` (extra ``mlflow``, a local
file store). In a multi-process run only rank 0 logs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from agent_forge.logging import get_logger
from agent_forge.specs import LoggerSpec


class Logger:
    """The base class: every method is a no-op, so a logger overrides what it supports.

    ``kind`` of a metrics row is ``"train"`` (one per log window), ``"eval"`` (an evaluation
    during training) or ``"final"`` (the evaluation at the end). Metric names are slash-separated
    (``loss/lm``, ``ema/exact_accuracy``); values are floats.
    """

    def start(self, config: dict[str, Any], *, resume_step: int | None = None) -> None:
        """The run begins. ``config`` is the resolved config; ``resume_step`` is the step a
        resumed run continues from (rows logged after it will be logged again: drop them)."""

    def log_metrics(self, kind: str, step: int, metrics: dict[str, float]) -> None:
        """One row of metrics at optimizer step ``step``."""

    def log_image(self, tag: str, path: Path, step: int) -> None:
        """An image file the run wrote (a plot)."""

    def finish(self, status: str) -> None:
        """The run ended (``completed``, ``stopped``, ``failed``, ``interrupted``); flush and close."""


def check_loggers_available(specs: Iterable[LoggerSpec]) -> None:
    """Call the ``check_available`` of every logger spec that has one: before the run folder is
    made, so a missing package refuses the run instead of failing it after it started."""
    for spec in specs:
        if spec.check_available is not None:
            spec.check_available()


class LoggerSet(Logger):
    """Several loggers behind one; ``enabled=False`` (ranks other than 0) makes every call a no-op."""

    def __init__(self, loggers: dict[str, Logger], enabled: bool = True) -> None:
        self.loggers = dict(loggers) if enabled else {}
        self._log = get_logger(component="loggers")

    def _each(self, method: str, *args: Any, **kwargs: Any) -> None:
        for name, logger in list(self.loggers.items()):
            try:
                getattr(logger, method)(*args, **kwargs)
            except Exception as exc:  # a failing logger is dropped, the run goes on
                self._log.warning("logger.failed", logger=name, call=method, error=f"{type(exc).__name__}: {exc}")
                del self.loggers[name]

    def start(self, config: dict[str, Any], *, resume_step: int | None = None) -> None:
        self._each("start", config, resume_step=resume_step)

    def log_metrics(self, kind: str, step: int, metrics: dict[str, float]) -> None:
        self._each("log_metrics", kind, step, metrics)

    def log_image(self, tag: str, path: Path, step: int) -> None:
        self._each("log_image", tag, path, step)

    def finish(self, status: str) -> None:
        self._each("finish", status)
