"""``ema`` callback: an exponential moving average of the weights, evaluated beside the raw ones.

Built on ``torch.optim.swa_utils.AveragedModel``. The decay warms up as
``min(decay, (1 + t) / (10 + t))`` after t updates, so early evaluations are not dominated by the
random initial weights. Buffers (fixed init vectors, memory bank) are copied from the live model
at evaluation time rather than averaged: averaging a memory's "filled" flags means nothing.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field
from torch.optim.swa_utils import AveragedModel

from agent_forge import hookimpl
from agent_forge.config import StrictModel


class EMAConfig(StrictModel):
    decay: float = Field(0.999, gt=0, lt=1)
    warmup: bool = Field(True, description="Use min(decay, (1+t)/(10+t)) for the first updates.")
    every: int = Field(1, ge=1, description="Update every N optimizer steps.")


def ema_decay(decay: float, num_averaged: int, warmup: bool) -> float:
    return min(decay, (1 + num_averaged) / (10 + num_averaged)) if warmup else decay


class EMACallback:
    def __init__(self, cfg: EMAConfig) -> None:
        self.cfg = cfg
        self.averaged: AveragedModel | None = None
        self._pending: dict[str, Any] | None = None  # restored state, applied at fit start

    def _make(self, model: torch.nn.Module) -> AveragedModel:
        cfg = self.cfg

        def avg_fn(avg: torch.Tensor, new: torch.Tensor, num_averaged: Any) -> torch.Tensor:
            d = ema_decay(cfg.decay, int(num_averaged), cfg.warmup)
            return d * avg + (1 - d) * new

        return AveragedModel(model, avg_fn=avg_fn, use_buffers=False)

    def on_fit_start(self, state: Any) -> None:
        if self.averaged is None:
            self.averaged = self._make(state.model)
        if self._pending is not None:
            self.averaged.load_state_dict(self._pending)
            self._pending = None

    def on_step_end(self, state: Any) -> None:
        if state.step % self.cfg.every == 0:
            self.averaged.update_parameters(state.model)

    def module(self, live: torch.nn.Module) -> torch.nn.Module:
        """The averaged module, with the live model's buffers copied in."""
        module = self.averaged.module
        with torch.no_grad():
            for (_, mine), (_, theirs) in zip(module.named_buffers(), live.named_buffers()):
                mine.copy_(theirs)
        return module

    def eval_model(self, state: Any) -> tuple[str, torch.nn.Module] | None:
        return ("ema", self.module(state.model)) if self.averaged is not None else None

    def state_dict(self) -> dict[str, Any]:
        return {} if self.averaged is None else {"averaged": self.averaged.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # The averaged copy is built at fit start (it needs the model); restore it then.
        self._pending = state.get("averaged")


@hookimpl
def forge_register_callbacks(register):
    register("ema", EMACallback, config=EMAConfig, description="EMA of the weights (raw and EMA are both evaluated)")
