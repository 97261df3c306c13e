"""What a dataset plugin returns: train/eval splits of fixed-length token sequences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from agent_forge.contracts import TaskSpec

#: Applied to a training batch on the fly (validity-preserving augmentation), given a generator.
Augment = Callable[[dict[str, torch.Tensor], torch.Generator], dict[str, torch.Tensor]]


@dataclass
class Split:
    """``inputs`` and ``targets`` are (N, seq_len) int64; targets use ``TaskSpec.ignore_index``
    where a position is not scored."""

    inputs: torch.Tensor
    targets: torch.Tensor

    def __post_init__(self) -> None:
        if self.inputs.shape != self.targets.shape or self.inputs.dim() != 2:
            raise ValueError(f"inputs {tuple(self.inputs.shape)} and targets "
                             f"{tuple(self.targets.shape)} must both be (N, seq_len)")

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"inputs": self.inputs[index], "targets": self.targets[index]}


@dataclass
class TaskData:
    spec: TaskSpec
    train: Split
    eval: Split
    augment: Augment | None = None
    #: Turns a token sequence back into something a person reads (for reports and samples).
    render: Callable[[torch.Tensor], str] | None = None
    info: dict[str, Any] = field(default_factory=dict)
