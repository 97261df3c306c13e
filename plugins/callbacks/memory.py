"""``memory`` callback: writes to the model's memory bank after each optimizer step.

The model reads its bank inside the recursion (``model.memory``, see
:mod:`agent_forge.models.memory`); this callback decides what is written: the pooled latent of
samples whose loss ("surprise") exceeds ``surprise_quantile`` of the batch's losses and
``min_surprise``. It does nothing for a model without a memory bank. The bank's contents are
buffers of the model, so they are saved and restored with its weights. In a multi-process run
the bank stays identical on every rank without a broadcast: writes are chosen from the gathered
global batch, and reads' usage counts are summed across ranks.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from pydantic import Field

from agent_forge import distributed as dist
from agent_forge import hookimpl
from agent_forge.config import StrictModel
from agent_forge.phases.cognate import Callback, CallbackSpec, TrainState
from agent_forge.phases.cognate.trainer import DeepSupervisionTrainer


class MemoryConfig(StrictModel):
    surprise_quantile: float = Field(0.9, ge=0, le=1)
    min_surprise: float = Field(0.0, ge=0)
    every: int = Field(1, ge=1)


class MemoryCallback(Callback):
    def __init__(self, cfg: MemoryConfig) -> None:
        self.cfg = cfg
        self.written = 0
        self._usage_seen: torch.Tensor | None = None  # the bank's usage after the last step

    def on_fit_start(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        memory = getattr(state.model, "memory", None)
        if memory is not None:
            self._usage_seen = memory.usage.detach().clone()

    def on_step_end(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        memory = getattr(state.model, "memory", None)
        if memory is None:
            return
        self._share_usage(memory)
        if state.step % self.cfg.every == 0 and state.per_sample_loss is not None:
            # At on_step_end the carry and losses hold this rank's rows; gather the global
            # batch's, so every rank writes the same rows in the same slots (as one process would).
            pooled = dist.gather_rows(state.carry["z"].mean(dim=1).float())
            surprise = dist.gather_rows(state.per_sample_loss)
            threshold = max(float(torch.quantile(surprise, self.cfg.surprise_quantile)), self.cfg.min_surprise)
            self.written += memory.write(pooled, surprise, threshold)
        self._usage_seen = memory.usage.detach().clone()

    def _share_usage(self, memory: Any) -> None:
        """Reading adds each rank's own rows' attention to ``usage``; sum those additions across
        ranks, so the bank holds the global batch's usage on every rank (as one process would)
        and its eviction choices agree."""
        if not dist.active() or self._usage_seen is None:
            return
        added = memory.usage - self._usage_seen
        total = torch.tensor(dist.agree(added.double().tolist(), "sum"), dtype=memory.usage.dtype)
        with torch.no_grad():
            memory.usage.copy_(self._usage_seen + total.to(memory.usage.device))

    def on_log(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        memory = getattr(state.model, "memory", None)
        if memory is not None:
            state.metrics["memory_filled"] = float(memory.filled.float().mean())
            state.metrics["memory_writes"] = float(self.written)

    def state_dict(self) -> dict[str, Any]:
        return {"written": self.written}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.written = int(s["written"])


@hookimpl
def forge_register_callbacks(register: Callable[[CallbackSpec], None]) -> None:
    register(CallbackSpec("memory", MemoryCallback, config=MemoryConfig,
                          description="Surprise-gated writes to the memory bank"))
