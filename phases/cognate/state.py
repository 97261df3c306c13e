"""The one mutable run state that the trainer and the callbacks share.

The trainer owns it. A callback reads any field but may assign only those in
:data:`CALLBACK_WRITABLE` (while a callback runs, the state knows its name and refuses any other
assignment with an error naming the callback and the field); a callback keeps its own values on
itself, where ``state_dict`` saves them. See :mod:`agent_forge.phases.cognate.events` for when
each field is set.

:meth:`TrainState.state_dict` / :meth:`TrainState.load_state_dict` cover the part of it that a
resumed run needs: the loop's position and counters and the active batch with its carry. The
model, optimizer, RNGs, data stream and callbacks are saved beside it (see
:mod:`agent_forge.phases.cognate.checkpointing`, the one list of what a checkpoint holds).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import torch
from torch import nn

from agent_forge import distributed as dist
from agent_forge.data import TaskData
from agent_forge.models.protocol import Batch, Carry, ModelOutput
from agent_forge.phases.cognate.schedule import DataStream
from agent_forge.phases.cognate.training_metrics import MetricsAccumulator

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from agent_forge.phases.cognate.callback import Callback

#: Integer and float fields of the state that a resume restores (the loop's position and counters).
_COUNTERS = ("step", "max_sup_steps", "examples_started", "examples_finished", "finished_early",
             "nan_skipped", "nan_in_a_row")
#: Per-row tensors of the active batch, identical on every rank (they cover the global batch).
_GLOBAL_ROWS = ("sup_steps", "min_halt_steps", "halted", "fresh")

#: The fields a callback may assign (or change in place), and why each is open to it. Everything
#: else belongs to the trainer.
CALLBACK_WRITABLE: dict[str, str] = {
    "losses": "on_loss: add a loss term (ACT's halting BCE, a ponder cost)",
    "halted": "on_halt: halt more rows (ACT's Q-head)",
    "min_halt_steps": "on_step_start: the earliest step each row may halt at (ACT's exploration)",
    "max_sup_steps": "supervision steps per sample from now on (early stop's supervision cut)",
    "metrics": "on_log: add metrics to the row being logged",
    "should_stop": "stop training (with stop_reason)",
    "stop_reason": "why training stopped",
}
@dataclass
class TrainState:
    model: nn.Module
    optimizer: torch.optim.Optimizer
    task: TaskData
    device: torch.device
    run_dir: Path
    #: The trainer's config (a pydantic model).
    config: Any
    #: Drives every random draw of the trainer (data order, augmentation, exploration).
    generator: torch.Generator
    #: Endless shuffled epochs over the training split.
    stream: DataStream
    callbacks: dict[str, Callback] = field(default_factory=dict)
    precision: str = "fp32"  # resolved from the config's "auto"
    #: This rank's rows of the global batch (all rows in a single process).
    rows: slice = field(default_factory=lambda: slice(None))
    #: What runs the forward pass: the model, or its DDP wrapper (which averages gradients).
    forward_module: nn.Module | None = None

    step: int = 0  # optimizer steps taken
    elapsed_s: float = 0.0  # training wall-clock, summed across resumes
    max_sup_steps: int = 1  # supervision steps per sample now (early stop may lower it)

    # The active batch: each row is one sample somewhere in its supervision steps.
    batch: Batch = field(default_factory=dict)
    carry: Carry = field(default_factory=dict)  # this rank's rows
    sup_steps: torch.Tensor | None = None  # (B,) steps done by each row's sample
    fresh: torch.Tensor | None = None  # (B,) rows refilled this step
    min_halt_steps: torch.Tensor | None = None  # (B,) ACT exploration
    halted: torch.Tensor | None = None  # (B,) rows to refill before the next step
    #: (local B,) each row's loss at its previous step, for the improvement reward.
    prev_loss: torch.Tensor | None = None

    # Set during a step.
    output: ModelOutput | None = None
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    per_sample_loss: torch.Tensor | None = None  # (B,) detached
    seq_correct: torch.Tensor | None = None  # (B,) whole answer right at this step
    token_correct: torch.Tensor | None = None  # (B, S) cell right (targets scored)
    grad_norm: float = 0.0

    # Bookkeeping.
    examples_started: int = 0
    examples_finished: int = 0
    finished_early: int = 0  # samples that halted before the model's n_sup
    nan_skipped: int = 0
    nan_in_a_row: int = 0
    should_stop: bool = False
    stop_reason: str = ""
    failed: bool = False
    #: Training metrics summed between two log lines.
    accumulator: MetricsAccumulator = field(default_factory=MetricsAccumulator)
    metrics: dict[str, float] = field(default_factory=dict)  # last logged training metrics
    eval_metrics: dict[str, float] = field(default_factory=dict)  # last evaluation of the validation split
    history: list[dict[str, float]] = field(default_factory=list)

    # -- what a callback may change -------------------------------------------------------
    def __setattr__(self, key: str, value: Any) -> None:
        writer = self.__dict__.get("_writer")
        if writer is not None and key not in CALLBACK_WRITABLE:
            raise AttributeError(
                f"callback {writer!r} assigned state.{key}, which the trainer owns; a callback may assign only"
                f" {', '.join(CALLBACK_WRITABLE)} (agent_forge.phases.cognate.state.CALLBACK_WRITABLE). Keep the"
                f" callback's own values on the callback (its state_dict saves them)")
        object.__setattr__(self, key, value)

    @contextlib.contextmanager
    def written_by(self, callback: str) -> Iterator[None]:
        """While the callback ``callback`` runs: assignments outside :data:`CALLBACK_WRITABLE` raise."""
        object.__setattr__(self, "_writer", callback)
        try:
            yield
        finally:
            object.__setattr__(self, "_writer", None)

    @property
    def n_sup(self) -> int:
        """The model's supervision steps per sample (the model protocol requires ``n_sup``)."""
        return int(self.model.n_sup)

    @property
    def early_stop_rate(self) -> float:
        return self.finished_early / self.examples_finished if self.examples_finished else 0.0

    def local(self, t: torch.Tensor) -> torch.Tensor:
        """This rank's rows of a global per-row tensor (all of them in a single process)."""
        return t[self.rows]

    def local_batch(self) -> Batch:
        return {key: self.local(value) for key, value in self.batch.items()}

    # -- resume ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The loop's position and the active batch. Every rank calls it (the carry is gathered)."""
        out: dict[str, Any] = {key: getattr(self, key) for key in _COUNTERS}
        out["elapsed_s"] = self.elapsed_s
        out["batch"] = dict(self.batch)
        out["carry"] = {k: dist.gather_rows(v) for k, v in self.carry.items()}
        out["prev_loss"] = dist.gather_rows(self.prev_loss) if self.prev_loss is not None else None
        for key in _GLOBAL_ROWS:
            out[key] = getattr(self, key)
        return out

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        for key in _COUNTERS:
            setattr(self, key, int(saved[key]))
        self.elapsed_s = float(saved["elapsed_s"])
        dev = self.device
        self.batch = {k: v.to(dev) for k, v in saved["batch"].items()}
        self.carry = {k: self.local(v).to(dev) for k, v in saved["carry"].items()}
        prev = saved.get("prev_loss")
        self.prev_loss = self.local(prev).to(dev) if prev is not None else None
        for key in _GLOBAL_ROWS:
            value = saved.get(key)
            setattr(self, key, value.to(dev) if value is not None else None)
