"""The one mutable run state that the trainer and every callback share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from agent_forge.data import TaskData
from agent_forge.models.protocol import Batch, Carry, ModelOutput


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
    callbacks: dict[str, Any] = field(default_factory=dict)
    precision: str = "fp32"  # resolved from the config's "auto"

    step: int = 0  # optimizer steps taken
    elapsed_s: float = 0.0  # training wall-clock, summed across resumes
    max_sup_steps: int = 1  # supervision steps per sample now (early stop may lower it)

    # The active batch: each row is one sample somewhere in its supervision steps.
    batch: Batch = field(default_factory=dict)
    carry: Carry = field(default_factory=dict)
    sup_steps: torch.Tensor | None = None  # (B,) steps done by each row's sample
    fresh: torch.Tensor | None = None  # (B,) rows refilled this step
    min_halt_steps: torch.Tensor | None = None  # (B,) ACT exploration
    halted: torch.Tensor | None = None  # (B,) rows to refill before the next step

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
    metrics: dict[str, float] = field(default_factory=dict)  # last logged training metrics
    eval_metrics: dict[str, float] = field(default_factory=dict)  # last evaluation
    history: list[dict[str, float]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def n_sup(self) -> int:
        return int(getattr(self.model, "n_sup", 1))

    @property
    def early_stop_rate(self) -> float:
        return self.finished_early / self.examples_finished if self.examples_finished else 0.0
