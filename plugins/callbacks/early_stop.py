"""``early_stop`` callback, in both forms the seeds use.

* **Supervision cut** (seed 003): once the training exact accuracy (at halt, over one log
  window) passes ``cut_threshold``, every sample gets ``cut_to`` supervision steps instead of
  ``n_sup``. Off when ``cut_threshold`` is null.
* **Monitor** (Lightning's EarlyStopping): stop when ``monitor`` has not improved by
  ``min_delta`` for ``patience`` evaluations. The monitor is a metric of the validation split
  (``val/...``, which exists with ``validation_samples=N``): deciding when to stop on the eval
  split would choose the stopping step on the figures that are then reported, so the eval
  split's metrics are not even handed to callbacks. A monitor name that no evaluation produces
  is an error listing the names that exist. ``check_finite`` stops on a NaN/inf metric.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Literal

from pydantic import Field, field_validator

from agent_forge import hookimpl
from agent_forge.config import StrictModel
from agent_forge.phases.cognate import Callback, CallbackSpec, TrainState
from agent_forge.phases.cognate.trainer import DeepSupervisionTrainer
from agent_forge.errors import ConfigError


class EarlyStopConfig(StrictModel):
    cut_threshold: float | None = Field(None, gt=0, le=1)
    cut_to: int = Field(1, ge=1)
    monitor: str | None = Field(None, description="A validation metric, e.g. 'val/ema/exact_accuracy' (needs"
                                                    " validation_samples > 0).")
    mode: Literal["max", "min"] = "max"
    patience: int = Field(5, ge=1)
    min_delta: float = Field(0.0, ge=0)
    check_finite: bool = True
    stop_at: float | None = Field(None, description="Stop once monitor reaches this value.")

    @field_validator("monitor")
    @classmethod
    def _validation_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("val/"):
            raise ValueError(f"monitor={value!r} is not a validation metric: the eval split is only reported, never"
                             f" decided on. Monitor the validation split, e.g. 'val/{value}', and hold one out with"
                             " validation_samples=N")
        return value

    def reads_validation(self) -> bool:
        """True when it decides on the validation split (the phase then requires one)."""
        return self.monitor is not None


class EarlyStopCallback(Callback):
    def __init__(self, cfg: EarlyStopConfig) -> None:
        self.cfg = cfg
        self.best: float | None = None
        self.bad_evals = 0
        self.cut_at_step: int | None = None

    def on_log(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        cfg = self.cfg
        if cfg.cut_threshold is None or self.cut_at_step is not None:
            return
        if state.metrics.get("train_exact_at_halt", 0.0) >= cfg.cut_threshold:
            self.cut_at_step = state.step
            state.max_sup_steps = min(state.max_sup_steps, cfg.cut_to)

    def on_eval(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        cfg = self.cfg
        if cfg.monitor is None:
            return
        if cfg.monitor not in state.eval_metrics:
            raise ConfigError(f"callbacks.early_stop.monitor={cfg.monitor!r} is not a validation metric;"
                              f" available: {', '.join(sorted(state.eval_metrics))}")
        value = state.eval_metrics[cfg.monitor]
        if cfg.check_finite and not math.isfinite(value):
            state.should_stop, state.stop_reason = True, f"early_stop: {cfg.monitor} is {value}"
            return
        better = (self.best is None or (value > self.best + cfg.min_delta if cfg.mode == "max"
                                        else value < self.best - cfg.min_delta))
        if better:
            self.best, self.bad_evals = value, 0
        else:
            self.bad_evals += 1
        reached = cfg.stop_at is not None and (value >= cfg.stop_at if cfg.mode == "max" else value <= cfg.stop_at)
        if reached:
            state.should_stop, state.stop_reason = True, f"early_stop: {cfg.monitor} reached {value:.4f}"
        elif self.bad_evals >= cfg.patience:
            state.should_stop = True
            state.stop_reason = f"early_stop: no {cfg.monitor} improvement in {cfg.patience} evaluations"

    def on_fit_start(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        if self.cut_at_step is not None:
            state.max_sup_steps = min(state.max_sup_steps, self.cfg.cut_to)

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_evals": self.bad_evals, "cut_at_step": self.cut_at_step}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.best, self.bad_evals, self.cut_at_step = s["best"], int(s["bad_evals"]), s["cut_at_step"]


@hookimpl
def forge_register_callbacks(register: Callable[[CallbackSpec], None]) -> None:
    register(CallbackSpec("early_stop", EarlyStopCallback, config=EarlyStopConfig,
                          description="Cut supervision steps past a train accuracy; stop on a plateau"))
