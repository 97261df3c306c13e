"""What the trainer feeds the model and at what learning rate: the lr schedule and the data stream."""

from __future__ import annotations

import math
from typing import Any

import torch

from agent_forge.phases.cognate.training_config import DeepSupervisionConfig


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
