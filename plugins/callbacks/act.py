"""``act`` callback: adaptive halting for recursive models with a Q-head.

Two modes:

* ``q_learning`` (the TRM paper's): the Q-head is trained with BCE against "the whole answer is
  right at this step"; a training sample halts when ``q_halt > 0`` and it has done at least its
  minimum steps. Exploration: with probability ``explore_prob`` a fresh sample draws a random
  minimum in [2, n_sup], so the head also sees late-step outcomes.
* ``ponder`` (seed 001's adaptive depth): halting when ``sigmoid(q_halt) > halt_threshold``,
  with a ponder cost ``ponder_weight * (1 - sigmoid(q_halt))`` that rewards halting early and no
  term tying halting to correctness. Its known failure mode — halting after 2-3 steps with worse
  answers — shows in ``mean_sup_steps`` and ``train_exact_at_halt``.

Evaluation always runs every supervision step and reports where the head would have halted.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from agent_forge import hookimpl
from agent_forge.config import StrictModel
from agent_forge.phases.cognate import Callback, TrainState


class ACTConfig(StrictModel):
    mode: Literal["q_learning", "ponder"] = "q_learning"
    loss_weight: float = Field(0.5, ge=0, description="Weight of the halting BCE (q_learning).")
    explore_prob: float = Field(0.1, ge=0, le=1)
    halt_threshold: float = Field(0.5, gt=0, lt=1, description="ponder: halt when sigmoid(q) exceeds it.")
    ponder_weight: float = Field(0.01, ge=0)


class ACTCallback(Callback):
    def __init__(self, cfg: ACTConfig) -> None:
        self.cfg = cfg

    def on_step_start(self, state: TrainState) -> None:
        fresh = state.fresh
        if fresh is None or not bool(fresh.any()):
            return
        b = fresh.shape[0]
        explore = torch.rand(b, generator=state.generator) < self.cfg.explore_prob
        high = max(state.max_sup_steps, 2)
        draw = torch.randint(2, high + 1, (b,), generator=state.generator)
        minimum = torch.where(explore, draw, torch.ones_like(draw)).to(state.device)
        state.min_halt_steps = torch.where(fresh, minimum, state.min_halt_steps)

    def on_loss(self, state: TrainState) -> None:
        q = state.output.q_halt_logits
        if q is None:
            return
        q = q.float()
        if self.cfg.mode == "q_learning":
            target = state.seq_correct.float()
            state.losses["halt"] = self.cfg.loss_weight * F.binary_cross_entropy_with_logits(q, target)
        else:
            state.losses["ponder"] = self.cfg.ponder_weight * (1 - torch.sigmoid(q)).mean()

    def on_halt(self, state: TrainState) -> None:
        q = state.output.q_halt_logits
        if q is None:
            return
        q = q.detach().float()
        wants = q > 0 if self.cfg.mode == "q_learning" else torch.sigmoid(q) > self.cfg.halt_threshold
        state.halted = state.halted | (wants & (state.sup_steps >= state.min_halt_steps))


@hookimpl
def forge_register_callbacks(register):
    register("act", ACTCallback, config=ACTConfig, description="Adaptive halting: Q-head (TRM) or ponder cost")
