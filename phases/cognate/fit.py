"""What the Cognate phase and a trainer exchange: the context in, the result out, and the
:class:`Trainer` protocol a trainer plugin follows."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from torch import nn

from agent_forge.data import TaskData
from agent_forge.loggers import Logger
from agent_forge.phases.cognate.state import TrainState


@dataclass
class FitContext:
    """What the phase hands a trainer: the model, the data and where the run lives."""

    model: nn.Module
    task: TaskData
    run_dir: Path
    seed: int
    callbacks: dict[str, Any] = field(default_factory=dict)
    host: Any = None
    evaluators: list[str] = field(default_factory=lambda: ["exact", "token"])
    resume: bool = False
    progress: bool = True
    log: Any = None
    #: Identifies the run's config; a resume with another is refused.
    config_fingerprint: str = ""
    #: Where metrics rows go (a LoggerSet of the run's loggers; rank 0 only). The trainer calls
    #: ``start`` (after a resume is loaded) and, if training raises, ``finish``; the phase
    #: logs the final evaluation and calls ``finish`` on success.
    loggers: Logger = field(default_factory=Logger)
    #: The resolved config, for the loggers.
    config: dict[str, Any] = field(default_factory=dict)


@dataclass
class FitResult:
    state: TrainState
    status: Literal["completed", "stopped", "failed"]
    message: str
    #: The checkpoint holding the end of training, if the trainer saved one: an interrupt during
    #: the final evaluation names it, and ``--resume`` continues from it to the evaluation.
    checkpoint: Path | None = None


class Trainer(Protocol):
    """What the Cognate phase needs from a trainer plugin."""

    def fit(self, ctx: FitContext) -> FitResult: ...

    def weight_labels(self, state: TrainState) -> list[str]:
        """The weights to evaluate at the end: ``["raw", ...]``."""

    def handoff_label(self, state: TrainState) -> str:
        """Which of :meth:`weight_labels` the phase hands off. Decided by the config (EMA when it
        is on), never by a score on the eval split, which is only reported."""

    def weights(self, state: TrainState, label: str) -> contextlib.AbstractContextManager[nn.Module]:
        """A context in which ``state.model`` holds the weights ``label``."""
