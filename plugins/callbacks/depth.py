"""``depth`` callback: a progressive depth curriculum for recursive models (the idea of CGAR,
arXiv 2511.08653, "Progressive Depth Curriculum"; our own code).

Early in training the recursion is run shallower: fewer latent updates per cycle (``n``) and
fewer cycles per supervision step (``T``), so a step costs less while the network is still
learning what one update should do; the full depth comes back for the rest of training. The
paper's schedule is three stages: about a third of the depth for the first 30% of training, two
thirds until 60%, then full depth. Here ``until`` lists where each shallow stage ends (fractions
of ``trainer.max_steps``, or of ``trainer.minutes`` when the run has no step budget) and
``depth`` the fraction of ``n`` and ``T`` it runs at (each rounded, at least 1)::

    callbacks: {depth: {until: [0.3, 0.6], depth: [0.34, 0.67]}}

The depth is lowered only for the training forward: it is set at ``on_step_start`` and restored
at ``on_step_end``, so every evaluation (during training and the final one) and every saved
artifact use the model's configured depth. The model must keep its recursion depth in
``model.cfg.n`` and ``model.cfg.T`` (the TRM does); the callback says so at fit start otherwise.
Under ``trainer.compile`` each depth is one more compiled graph (a recompile at each stage).
"""

from __future__ import annotations

from typing import Any, Callable

from pydantic import Field, model_validator

from agent_forge import hookimpl
from agent_forge.config import StrictModel
from agent_forge.errors import ConfigError
from agent_forge.phases.cognate import Callback, CallbackSpec, TrainState
from agent_forge.phases.cognate.trainer import DeepSupervisionTrainer


class DepthCurriculumConfig(StrictModel):
    until: list[float] = Field(
        default_factory=lambda: [0.3, 0.6],
        description="Where each shallow stage ends, as fractions of the budget (increasing, in (0, 1]).")
    depth: list[float] = Field(
        default_factory=lambda: [0.34, 0.67],
        description="Fraction of model n and T in each shallow stage (rounded, at least 1); one per entry of"
                    " until.")

    @model_validator(mode="after")
    def _check(self) -> "DepthCurriculumConfig":
        if len(self.until) != len(self.depth):
            raise ValueError(f"callbacks.depth: until has {len(self.until)} entries and depth {len(self.depth)};"
                             " give one depth per stage")
        if any(not 0 < u <= 1 for u in self.until) or sorted(self.until) != self.until:
            raise ValueError(f"callbacks.depth.until={self.until}: use increasing fractions in (0, 1]")
        if any(not 0 < d <= 1 for d in self.depth):
            raise ValueError(f"callbacks.depth.depth={self.depth}: use fractions in (0, 1]")
        return self


def stage_depth(n: int, T: int, fraction: float) -> tuple[int, int]:
    """``(n, T)`` scaled by ``fraction``, each rounded and at least 1."""
    return max(1, round(n * fraction)), max(1, round(T * fraction))


class DepthCurriculumCallback(Callback):
    def __init__(self, cfg: DepthCurriculumConfig) -> None:
        self.cfg = cfg
        self.full: tuple[int, int] | None = None  # the model's configured (n, T)
        self.budget_steps: int | None = None
        self.budget_s: float | None = None

    def on_fit_start(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        model_cfg = getattr(state.model, "cfg", None)
        if not (hasattr(model_cfg, "n") and hasattr(model_cfg, "T")):
            raise ConfigError(f"callbacks.depth needs a recursive model with cfg.n and cfg.T (the TRM);"
                              f" {type(state.model).__name__} has none: remove callbacks.depth")
        self.full = (int(model_cfg.n), int(model_cfg.T))
        budget = trainer.cfg
        if getattr(budget, "max_steps", None):
            self.budget_steps = budget.max_steps
        elif getattr(budget, "minutes", None):
            self.budget_s = budget.minutes * 60
        else:
            raise ConfigError("callbacks.depth needs trainer.max_steps or trainer.minutes to place its stages")

    def progress(self, state: TrainState) -> float:
        if self.budget_steps:
            return state.step / self.budget_steps
        return state.elapsed_s / self.budget_s  # type: ignore[operator]

    def current(self, state: TrainState) -> tuple[int, int]:
        """The (n, T) of the next training step."""
        assert self.full is not None
        p = self.progress(state)
        for until, fraction in zip(self.cfg.until, self.cfg.depth):
            if p < until:
                return stage_depth(*self.full, fraction)
        return self.full

    def _set(self, state: TrainState, n: int, T: int) -> None:
        state.model.cfg.n, state.model.cfg.T = n, T

    def on_step_start(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        self._set(state, *self.current(state))

    def on_step_end(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        self._restore(state)  # evaluations and artifacts see the configured depth

    def _restore(self, state: TrainState) -> None:
        if self.full is not None:
            self._set(state, *self.full)

    def on_fit_end(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        self._restore(state)

    def on_exception(self, trainer: DeepSupervisionTrainer, state: TrainState, exc: BaseException) -> None:
        self._restore(state)

    def on_log(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        n, T = self.current(state)
        state.metrics["depth/n"], state.metrics["depth/T"] = float(n), float(T)

    def state_dict(self) -> dict[str, Any]:
        return {}


@hookimpl
def forge_register_callbacks(register: Callable[[CallbackSpec], None]) -> None:
    register(CallbackSpec("depth", DepthCurriculumCallback, config=DepthCurriculumConfig,
                          description="Progressive depth curriculum (CGAR): shallower recursion early in training"))
