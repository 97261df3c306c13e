"""``memory`` callback: writes to the model's memory bank after each optimizer step.

The model reads its bank inside the recursion (``model.memory``, see
:mod:`agent_forge.models.memory`); this callback decides what is written: the pooled latent of
samples whose loss ("surprise") exceeds ``surprise_quantile`` of the batch's losses and
``min_surprise``. It does nothing for a model without a memory bank. The bank's contents are
buffers of the model, so they are saved and restored with its weights.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import Field

from agent_forge import hookimpl
from agent_forge.config import StrictModel


class MemoryConfig(StrictModel):
    surprise_quantile: float = Field(0.9, ge=0, le=1)
    min_surprise: float = Field(0.0, ge=0)
    every: int = Field(1, ge=1)


class MemoryCallback:
    def __init__(self, cfg: MemoryConfig) -> None:
        self.cfg = cfg
        self.written = 0

    def on_step_end(self, state: Any) -> None:
        memory = getattr(state.model, "memory", None)
        if memory is None or state.step % self.cfg.every or state.per_sample_loss is None:
            return
        surprise = state.per_sample_loss
        threshold = max(float(torch.quantile(surprise, self.cfg.surprise_quantile)), self.cfg.min_surprise)
        self.written += memory.write(state.carry["z"], surprise, threshold)

    def on_log(self, state: Any) -> None:
        memory = getattr(state.model, "memory", None)
        if memory is not None:
            state.metrics["memory_filled"] = float(memory.filled.float().mean())
            state.metrics["memory_writes"] = float(self.written)

    def state_dict(self) -> dict[str, Any]:
        return {"written": self.written}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.written = int(s["written"])


@hookimpl
def forge_register_callbacks(register):
    register("memory", MemoryCallback, config=MemoryConfig, description="Surprise-gated writes to the memory bank")
