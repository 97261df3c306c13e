"""What the trainer feeds the model, for how long and at what learning rate: the step budget of
``trainer.epochs``, the lr schedule and the data stream."""

from __future__ import annotations

import math
from typing import Any

import torch

from agent_forge.errors import ConfigError
from agent_forge.data import TaskData
from agent_forge.phases.cognate.training_config import DeepSupervisionConfig


def epoch_size(task: TaskData) -> tuple[int, float, str]:
    """``(total_groups, mean_puzzle_examples, where from)`` of ``task``'s training data, as the
    official TRM code counts an epoch: every group (an original puzzle) once, with the examples of
    one of its (augmented) puzzles, ``mean_puzzle_examples`` of them on average.

    From the task's ``info`` (or its spec's) when it gives both, as an official dataset folder
    does; else from the training rows: where they carry ``meta["puzzle"]`` (the original puzzle)
    and a ``puzzle_ids`` extra (the augmented puzzle), the distinct originals and rows per
    augmented puzzle (ARC's rows); else one group per row and one example per puzzle (Sudoku and
    mazes, augmented on the fly: an epoch is one pass over the rows).
    """
    info = {**task.spec.info, **task.info}
    if info.get("total_groups") is not None and info.get("mean_puzzle_examples") is not None:
        return int(info["total_groups"]), float(info["mean_puzzle_examples"]), "task info"
    train = task.train
    puzzle, augmented = train.meta.get("puzzle"), train.extras.get("puzzle_ids")
    if puzzle is not None and augmented is not None and len(train):
        return (int(torch.unique(puzzle).numel()), len(train) / int(torch.unique(augmented).numel()),
                "training rows by puzzle")
    return len(train), 1.0, "training rows"


def epoch_steps(epochs: float, task: TaskData, batch_size: int) -> int:
    """Optimizer steps of ``epochs`` epochs, the official code's formula (pretrain.py
    ``init_train_state``): ``int(epochs * total_groups * mean_puzzle_examples / global_batch_size)``."""
    groups, mean, _ = epoch_size(task)
    return int(epochs * groups * mean / batch_size)


def resolve_budget(cfg: DeepSupervisionConfig, task: TaskData) -> DeepSupervisionConfig:
    """``cfg`` with ``trainer.epochs`` turned into ``max_steps`` (the smaller, when both are set),
    so the loop, the lr schedule and the callbacks read one step budget."""
    if cfg.epochs is None:
        return cfg
    steps = epoch_steps(cfg.epochs, task, cfg.batch_size)
    if steps < 1:
        groups, mean, source = epoch_size(task)
        raise ConfigError(f"trainer.epochs={cfg.epochs:g} is less than one optimizer step: {groups} groups x {mean:g}"
                          f" examples ({source}) / batch {cfg.batch_size}; raise trainer.epochs or lower"
                          " trainer.batch_size")
    return cfg.model_copy(update={"max_steps": min(steps, cfg.max_steps or steps)})


def lr_factor(cfg: DeepSupervisionConfig, step: int, elapsed_s: float) -> float:
    """Linear warm-up, then constant or cosine decay over the budget that runs out first.

    With only ``max_steps`` the schedule is a function of the step (deterministic, resumable
    bit-for-bit). With a ``minutes`` budget, progress is the larger of the two fractions, so a
    time-limited run still anneals to ``min_lr_ratio`` at its end.
    """
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return 1.0
    fractions = []
    if cfg.max_steps:
        fractions.append((step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps))
    if cfg.minutes:
        fractions.append(elapsed_s / (cfg.minutes * 60))
    progress = min(1.0, max(fractions))
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


class DataStream:
    """Endless shuffled epochs over the training split; the position is part of the checkpoint."""

    def __init__(self, n: int, generator: torch.Generator) -> None:
        self.n, self.generator = n, generator
        self.epoch, self.cursor = 0, 0
        self.order = torch.randperm(n, generator=generator)

    def take(self, k: int) -> torch.Tensor:
        out = []
        while k > 0:
            if self.cursor == self.n:
                self.epoch += 1
                self.cursor = 0
                self.order = torch.randperm(self.n, generator=self.generator)
            m = min(k, self.n - self.cursor)
            out.append(self.order[self.cursor:self.cursor + m])
            self.cursor += m
            k -= m
        return torch.cat(out)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "cursor": self.cursor, "order": self.order}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.epoch, self.cursor, self.order = int(s["epoch"]), int(s["cursor"]), s["order"]
