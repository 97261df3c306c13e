"""``act`` callback: adaptive halting for recursive models with a Q-head.

Two modes:

* ``q_learning`` (the TRM paper's): the Q-head is trained with BCE against "the whole answer is
  right at this step"; a training sample halts when ``q_halt > 0`` and it has done at least its
  minimum steps. Exploration: with probability ``explore_prob`` a sample gets a random minimum
  in [2, n_sup], so the head also sees late-step outcomes. ``exploration="per_sample"`` draws it
  once, when the sample starts; ``"per_step"`` draws it anew for every row at every step, as
  the official TRM code does (its ``forward``): there a sample stops at the first step at which
  ``q_halt > 0`` and that step's draw allows it, so exploration delays a halt by one draw at a
  time rather than fixing a minimum for the whole sample.
* ``ponder`` (seed 001's adaptive depth): halting when ``sigmoid(q_halt) > halt_threshold``,
  with a ponder cost ``ponder_weight * (1 - sigmoid(q_halt))`` that rewards halting early and no
  term tying halting to correctness. Its known failure mode — halting after 2-3 steps with worse
  answers — shows in ``mean_sup_steps`` and ``train_exact_at_halt``.

Evaluation always runs every supervision step and reports where the head would have halted.

``curriculum_steps`` (seed 001's "start with fixed depth, then enable adaptive depth"): for the
first K optimizer steps (an integer K) or the first fraction of the budget (a float in (0, 1]:
of ``trainer.max_steps`` when set, else of ``trainer.minutes``), no sample halts on the Q-head:
every sample runs all its supervision steps while the head keeps training on every step's
outcome; adaptive halting starts after. The resolved end and the step at which halting became
adaptive are in the callback's state, so a resumed run switches at the same step.
"""

from __future__ import annotations

from typing import Any, Callable, Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from agent_forge import hookimpl
from agent_forge.config import StrictModel
from agent_forge.phases.cognate import Callback, CallbackSpec, TrainState
from agent_forge.phases.cognate.trainer import DeepSupervisionTrainer


class ACTConfig(StrictModel):
    mode: Literal["q_learning", "ponder"] = "q_learning"
    loss_weight: float = Field(0.5, ge=0, description="Weight of the halting BCE (q_learning).")
    explore_prob: float = Field(0.1, ge=0, le=1)
    exploration: Literal["per_sample", "per_step"] = Field(
        "per_sample", description="When the random minimum halting step is drawn: once per sample, when it starts"
                                  " ('per_sample'), or for every row at every step ('per_step', the official code's).")
    halt_threshold: float = Field(0.5, gt=0, lt=1, description="ponder: halt when sigmoid(q) exceeds it.")
    ponder_weight: float = Field(0.01, ge=0)
    curriculum_steps: int | float | None = Field(
        None, description="Fixed depth first (every sample runs all supervision steps; the Q-head trains but"
                          " does not halt) for this many optimizer steps (an integer) or this fraction of the"
                          " budget (a float in (0, 1]: of trainer.max_steps, else of trainer.minutes);"
                          " adaptive halting after. None: adaptive from the start.")

    @field_validator("curriculum_steps", mode="before")
    @classmethod
    def _not_a_bool(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("curriculum_steps is a step count (integer) or a fraction of the budget (float)")
        return value

    @field_validator("curriculum_steps")
    @classmethod
    def _curriculum(cls, value: int | float | None) -> int | float | None:
        if isinstance(value, int) and value < 0:
            raise ValueError(f"curriculum_steps={value}: a step count must be >= 0")
        if isinstance(value, float) and not 0 < value <= 1:
            raise ValueError(f"curriculum_steps={value}: a fraction of the budget must be in (0, 1];"
                             " for a number of steps write an integer")
        return value


class ACTCallback(Callback):
    def __init__(self, cfg: ACTConfig) -> None:
        self.cfg = cfg
        # The curriculum, resolved at the first start: fixed depth while step <= until_step, or
        # (a fraction of a time budget) while elapsed_s < until_s; adaptive_from is the step at
        # which halting became adaptive (then it stays adaptive, also after a resume).
        self.resolved = False
        self.until_step: int | None = None
        self.until_s: float | None = None
        self.adaptive_from: int | None = None

    def on_fit_start(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        if self.resolved:  # restored from a checkpoint: keep the first start's resolution
            return
        k, budget = self.cfg.curriculum_steps, trainer.cfg
        if isinstance(k, float):
            if budget.max_steps:
                self.until_step = round(k * budget.max_steps)
            else:
                self.until_s = k * budget.minutes * 60
        elif k:
            self.until_step = k
        self.resolved = True

    def fixed_depth(self, state: TrainState) -> bool:
        """True while the curriculum holds every sample to all its supervision steps."""
        if self.adaptive_from is not None or (self.until_step is None and self.until_s is None):
            return False
        fixed = (state.step <= self.until_step if self.until_step is not None
                 else state.elapsed_s < self.until_s)  # type: ignore[operator]
        if not fixed:
            self.adaptive_from = state.step
        return fixed

    def on_step_start(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        # per_step: every row draws (the draw replaces the last); per_sample: fresh rows only.
        fresh = state.fresh
        if self.cfg.exploration == "per_step" and fresh is not None:
            fresh = torch.ones_like(fresh)
        if fresh is None or not bool(fresh.any()):
            return
        b = fresh.shape[0]
        explore = torch.rand(b, generator=state.generator) < self.cfg.explore_prob
        high = max(state.max_sup_steps, 2)
        draw = torch.randint(2, high + 1, (b,), generator=state.generator)
        minimum = torch.where(explore, draw, torch.ones_like(draw)).to(state.device)
        state.min_halt_steps = torch.where(fresh, minimum, state.min_halt_steps)

    def on_loss(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        q = state.output.q_halt_logits
        if q is None:
            return
        if state.output.q_continue_logits is not None:
            # The official code's own training path for this head does not run (its target-Q step
            # unpacks five values from an inner call that returns three), so there is no recipe to match.
            from agent_forge.errors import ConfigError

            raise ConfigError("model.q_continue=true: training the continue head (official no_ACT_continue:"
                              " false) is not supported; evaluate such a model, or train with"
                              " model.q_continue=false")
        q = q.float()
        if self.cfg.mode == "q_learning":
            target = state.seq_correct.float()
            state.losses["halt"] = self.cfg.loss_weight * F.binary_cross_entropy_with_logits(q, target)
        else:
            state.losses["ponder"] = self.cfg.ponder_weight * (1 - torch.sigmoid(q)).mean()

    def on_halt(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        q = state.output.q_halt_logits
        if q is None:
            return
        if self.fixed_depth(state):
            return
        q = q.detach().float()
        wants = q > 0 if self.cfg.mode == "q_learning" else torch.sigmoid(q) > self.cfg.halt_threshold
        state.halted = state.halted | (wants & (state.sup_steps >= state.min_halt_steps))


    def on_log(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        if self.until_step is not None or self.until_s is not None:
            state.metrics["act_fixed_depth"] = float(self.adaptive_from is None)

    def state_dict(self) -> dict[str, Any]:
        return {"resolved": self.resolved, "until_step": self.until_step, "until_s": self.until_s,
                "adaptive_from": self.adaptive_from}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.resolved = bool(saved.get("resolved", False))
        self.until_step, self.until_s = saved.get("until_step"), saved.get("until_s")
        self.adaptive_from = saved.get("adaptive_from")


@hookimpl
def forge_register_callbacks(register: Callable[[CallbackSpec], None]) -> None:
    register(CallbackSpec("act", ACTCallback, config=ACTConfig,
                          description="Adaptive halting: Q-head (TRM) or ponder cost"))
