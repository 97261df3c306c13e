"""What a dataset plugin returns: train/eval splits of fixed-length token sequences."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch

from agent_forge.contracts import TaskSpec

#: Applied to a training batch on the fly (validity-preserving augmentation), given a generator.
Augment = Callable[[dict[str, torch.Tensor], torch.Generator], dict[str, torch.Tensor]]


class Symmetry(Protocol):
    """An answer-preserving transform of a task's token sequences (test-time voting,
    ``forge eval --augment``): solve ``apply(question)``, then ``invert`` the answer."""

    def apply(self, tokens: torch.Tensor) -> torch.Tensor:
        """(..., seq_len) tokens in the original frame -> the transformed frame."""
        ...

    def invert(self, tokens: torch.Tensor) -> torch.Tensor:
        """(..., seq_len) tokens in the transformed frame -> the original frame."""
        ...


@dataclass
class Split:
    """``inputs`` and ``targets`` are (N, seq_len) integer tensors; targets use
    ``TaskSpec.ignore_index`` where a position is not scored. They may be stored narrow (uint8,
    int16) to save memory: :meth:`batch` hands the model int64.

    ``extras`` are further per-row tensors (first dimension N) that travel with each batch to the
    model, e.g. ``puzzle_ids`` for a per-puzzle embedding. ``meta`` are per-row tensors that only
    evaluators read (e.g. which augmentation produced a row); they never reach the model.
    """

    inputs: torch.Tensor
    targets: torch.Tensor
    extras: dict[str, torch.Tensor] = field(default_factory=dict)
    meta: dict[str, torch.Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.inputs.shape != self.targets.shape or self.inputs.dim() != 2:
            raise ValueError(f"inputs {tuple(self.inputs.shape)} and targets "
                             f"{tuple(self.targets.shape)} must both be (N, seq_len)")
        for kind, tensors in (("extras", self.extras), ("meta", self.meta)):
            for key, value in tensors.items():
                if value.shape[0] != len(self):
                    raise ValueError(f"{kind}[{key!r}] has {value.shape[0]} rows; the split has {len(self)}")

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def subset(self, index: torch.Tensor | slice) -> "Split":
        """The rows at ``index``, with their extras and meta."""
        return Split(self.inputs[index], self.targets[index], {k: v[index] for k, v in self.extras.items()},
                     {k: v[index] for k, v in self.meta.items()})

    def batch(self, index: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"inputs": self.inputs[index].long(), "targets": self.targets[index].long(),
                **{key: value[index] for key, value in self.extras.items()}}


@dataclass
class TaskData:
    spec: TaskSpec
    train: Split
    eval: Split
    augment: Augment | None = None
    #: Rows for choices a run makes (early stopping, EvoMerge's fitness): never trained on, and
    #: never the eval split, which is only reported. Carved from the training rows by the phase
    #: (``validation_samples``, see :mod:`agent_forge.phases.common.validation`); None: none.
    validation: Split | None = None
    #: Turns a token sequence back into something a person reads (for reports and samples).
    render: Callable[[torch.Tensor], str] | None = None
    info: dict[str, Any] = field(default_factory=dict)
    #: Optional, for views that mark single cells (``forge show``): a token sequence as the rows
    #: of its grid, one short label per cell (Sudoku: ``"3"``, ``"."`` for a blank). Without it a
    #: grid task is shown as token ids, in rows of ``info["size"]`` (else of the whole sequence).
    decode_grid: Callable[[torch.Tensor], list[list[str]]] | None = None
    #: Optional, for voting over symmetries (``forge eval --augment N``): ``symmetries(n, seed)``
    #: returns ``n`` answer-preserving transforms, the first the identity, the rest drawn with ``seed``.
    symmetries: Callable[[int, int], list[Symmetry]] | None = None
    #: Optional, for ``--select verify``: ``check(questions, answers)`` (B, seq_len) each -> (B,) bool,
    #: whether each answer solves its question by the task's rules (no answer key needed).
    check: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    #: Optional, for ``forge solve``: one question as written in the task's data files (a CSV cell)
    #: -> (seq_len,) tokens; raises ConfigError naming what is wrong.
    parse_question: Callable[[str], torch.Tensor] | None = None
    #: Optional, for text: ``(vocab_size,)`` how many bytes of text each token id stands for (0 for
    #: special tokens such as end-of-document). With it the ``loss`` evaluator reports bits per byte.
    token_bytes: torch.Tensor | None = None
