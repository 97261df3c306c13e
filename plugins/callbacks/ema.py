"""``ema`` callback: an exponential moving average of the weights, evaluated beside the raw ones.

The average is kept as one shadow tensor per parameter, laid out like the parameter itself: a
whole tensor in a single process or under DDP, this rank's shard under FSDP (so the EMA costs
each rank ``1/K`` of the weights, and a sharded model, which cannot be deep-copied, works the
same). The trainer evaluates it by swapping the shadows into the live model
(``eval_weights``); buffers (fixed init vectors, a memory bank) are therefore the live ones,
since averaging a memory's "filled" flags means nothing.

Parameters the model declares as sparse embeddings (``sparse_embedding_parameters()``, the
TRM's puzzle table with ``model.puzzle_emb_sparse``) are not averaged, as in the official code,
where that table is a buffer EMA never sees: evaluating the EMA weights uses their live rows.

The first update copies the weights; update ``t`` (counting from 0) then moves the average by
``1 - d`` towards them, with ``d = min(decay, (1 + t) / (10 + t))`` while ``warmup`` is on, so
early evaluations are not dominated by the random initial weights.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from pydantic import Field

from agent_forge import hookimpl
from agent_forge.config import StrictModel
from agent_forge.phases.cognate import Callback, CallbackSpec, TrainState
from agent_forge.phases.cognate.optimizers import sparse_embeddings
from agent_forge.phases.cognate.trainer import DeepSupervisionTrainer
from agent_forge.parallel import full_tensor, shard_like


class EMAConfig(StrictModel):
    decay: float = Field(0.999, gt=0, lt=1)
    warmup: bool = Field(True, description="Use min(decay, (1+t)/(10+t)) for the first updates.")
    every: int = Field(1, ge=1, description="Update every N optimizer steps.")


def ema_decay(decay: float, num_averaged: int, warmup: bool) -> float:
    return min(decay, (1 + num_averaged) / (10 + num_averaged)) if warmup else decay


class EMACallback(Callback):
    def __init__(self, cfg: EMAConfig) -> None:
        self.cfg = cfg
        self.shadow: dict[str, torch.Tensor] | None = None  # parameter name -> average
        self.num_averaged = 0
        self._pending: dict[str, Any] | None = None  # restored state, applied at fit start

    def on_fit_start(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        params = averaged_parameters(state.model)
        if self.shadow is None:
            self.shadow = {name: p.detach().clone() for name, p in params.items()}
        if self._pending is not None:
            saved = self._pending["shadow"]
            missing = sorted(set(params) - set(saved))
            if missing:
                raise ValueError(f"the checkpoint's EMA lacks parameters of this model: {missing[:5]}")
            self.shadow = {name: shard_like(saved[name], p.detach()) for name, p in params.items()}
            self.num_averaged = int(self._pending["num_averaged"])
            self._pending = None

    @torch.no_grad()
    def on_step_end(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        if state.step % self.cfg.every:
            return
        first = self.num_averaged == 0
        d = ema_decay(self.cfg.decay, self.num_averaged, self.cfg.warmup)
        for name, p in averaged_parameters(state.model).items():
            shadow = self.shadow[name]
            if first:
                shadow.copy_(p.detach())
            else:
                shadow.lerp_(p.detach(), 1 - d)  # d * avg + (1 - d) * new, in place
        self.num_averaged += 1

    def eval_weights(self, state: TrainState) -> tuple[str, dict[str, torch.Tensor]] | None:
        return ("ema", self.shadow) if self.shadow is not None else None

    def state_dict(self) -> dict[str, Any]:
        # Whole tensors, so the checkpoint does not depend on how the run was sharded.
        if self.shadow is None:
            return {}
        return {"shadow": {name: full_tensor(s).detach().cpu() for name, s in self.shadow.items()},
                "num_averaged": self.num_averaged}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # Shadows are laid out like the live (maybe sharded) parameters; restore them at fit start.
        self._pending = state if state.get("shadow") is not None else None


def averaged_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """The parameters EMA averages, by name: all but the model's sparse embeddings."""
    skip = sparse_embeddings(model)
    return {name: p for name, p in model.named_parameters() if name not in skip}


@hookimpl
def forge_register_callbacks(register: Callable[[CallbackSpec], None]) -> None:
    register(CallbackSpec("ema", EMACallback, config=EMAConfig,
                          description="EMA of the weights (raw and EMA are both evaluated)"))
