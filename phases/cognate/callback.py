"""The base class of training callbacks: one typed no-op method per event.

A callback overrides the events it cares about; the trainer calls every callback's handler for
each event in the order the callbacks are configured. The loop that fires them is in
:mod:`agent_forge.events` (the event list) and :mod:`agent_forge.phases.cognate.trainer`.

Subclassing is optional: the trainer calls whichever of these methods an object has, so a plain
object with an ``on_step_end`` works too. Subclass to see every extension point in one place and
to get the defaults (``state_dict`` returns ``{}``; ``eval_weights`` offers nothing).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from agent_forge.phases.cognate.state import TrainState


class Callback:
    # -- events, in loop order --------------------------------------------------------------
    def on_fit_start(self, state: "TrainState") -> None:
        """Before the first step (after a resume's checkpoint is loaded)."""

    def on_step_start(self, state: "TrainState") -> None:
        """After halted rows were refilled (``state.fresh``), before the forward pass."""

    def on_loss(self, state: "TrainState") -> None:
        """``state.losses`` holds the task loss; add terms to it (ACT's halting BCE)."""

    def on_after_backward(self, state: "TrainState") -> None:
        """Gradients exist; the optimizer has not stepped."""

    def on_step_end(self, state: "TrainState") -> None:
        """After the optimizer step (EMA update, memory write)."""

    def on_halt(self, state: "TrainState") -> None:
        """``state.halted`` says which rows finished; set more rows to halt them early."""

    def on_log(self, state: "TrainState") -> None:
        """``state.metrics`` holds this log window's row; add metrics to it."""

    def on_eval(self, state: "TrainState") -> None:
        """``state.eval_metrics`` holds the validation split's figures (``val/raw/...``; empty without
        one; the eval split is only logged); set ``state.should_stop`` to stop."""

    def on_save_checkpoint(self, state: "TrainState") -> None:
        """Just before the trainer collects every state for a checkpoint."""

    def on_fit_end(self, state: "TrainState") -> None:
        """After the last step, before the final checkpoint."""

    def on_exception(self, state: "TrainState", exc: BaseException) -> None:
        """Training is ending because ``exc`` was raised (or an interrupt arrived). Release
        resources here; the trainer re-raises after every callback has been told."""

    # -- evaluation and resume ------------------------------------------------------------
    def eval_weights(self, state: "TrainState") -> tuple[str, dict[str, torch.Tensor]] | None:
        """Offer weights to evaluate beside the live ones: ``(label, {parameter name: tensor})``,
        each tensor laid out like the live parameter (a shard under FSDP). EMA offers ``"ema"``."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """Everything this callback needs to continue exactly after a resume (tensors and JSON
        scalars only: no pickling)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned. Called before ``on_fit_start``."""
