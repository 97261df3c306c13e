"""The base class of training callbacks: one typed no-op method per event.

Every callback subclasses :class:`Callback` (the trainer refuses any other object, naming the
callback) and overrides the events it cares about. Each event receives ``(trainer, state)``: the
trainer that runs the loop (its ``cfg`` is the validated ``trainer`` section) and the
:class:`~agent_forge.phases.cognate.state.TrainState`, of which a callback may assign only the
fields in :data:`~agent_forge.phases.cognate.state.CALLBACK_WRITABLE`. The trainer fires each
event on every callback in the order they are configured (:class:`CallbackList`); the loop is
drawn in :mod:`agent_forge.phases.cognate.events`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Mapping

import torch

from agent_forge.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover - annotations only
    from agent_forge.phases.cognate.state import TrainState
    from agent_forge.phases.cognate.trainer import DeepSupervisionTrainer


class Callback:
    # -- events, in loop order --------------------------------------------------------------
    def on_fit_start(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        """Before the first step (after a resume's checkpoint is loaded)."""

    def on_step_start(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        """After halted rows were refilled (``state.fresh``), before the forward pass; may set
        ``state.min_halt_steps`` (ACT's exploration)."""

    def on_loss(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        """``state.losses`` holds the task loss; add terms to it (ACT's halting BCE)."""

    def on_after_backward(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        """Gradients exist; the optimizer has not stepped."""

    def on_step_end(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        """After the optimizer step (EMA update, memory write)."""

    def on_halt(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        """``state.halted`` says which rows finished; set more rows to halt them early."""

    def on_log(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        """``state.metrics`` holds this log window's row; add metrics to it."""

    def on_eval(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        """``state.eval_metrics`` holds the validation split's figures (``val/raw/...``; empty without
        one; the eval split is only logged); set ``state.should_stop`` to stop."""

    def on_save_checkpoint(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        """Just before the trainer collects every state for a checkpoint."""

    def on_fit_end(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        """After the last step, before the final checkpoint."""

    def on_exception(self, trainer: DeepSupervisionTrainer, state: TrainState, exc: BaseException) -> None:
        """Training is ending because ``exc`` was raised (or an interrupt arrived). Release
        resources here; the trainer re-raises after every callback has been told."""

    # -- evaluation and resume ------------------------------------------------------------
    def eval_weights(self, state: TrainState) -> tuple[str, dict[str, torch.Tensor]] | None:
        """Offer weights to evaluate beside the live ones: ``(label, {parameter name: tensor})``,
        each tensor laid out like the live parameter (a shard under FSDP). EMA offers ``"ema"``."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """Everything this callback needs to continue exactly after a resume (tensors and JSON
        scalars only: no pickling)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned. Called before ``on_fit_start``."""


class CallbackList:
    """The run's callbacks, fired in their configured order: one method per event, so each event
    is a call a reader (and a type checker) can follow, not a method looked up by name.

    While a callback runs, the state knows its name and refuses assignments outside
    :data:`~agent_forge.phases.cognate.state.CALLBACK_WRITABLE`, naming the callback.
    """

    def __init__(self, callbacks: Mapping[str, Callback]) -> None:
        for name, cb in callbacks.items():
            if not isinstance(cb, Callback):
                raise ConfigError(f"callbacks.{name}: its plugin built a {type(cb).__name__}, which is not a"
                                  " Callback; subclass agent_forge.phases.cognate.Callback (its events take"
                                  " (trainer, state); docs/plugins.md, \"Training callbacks\")")
        self.named: list[tuple[str, Callback]] = list(callbacks.items())

    def _each(self, state: TrainState, call: Callable[[Callback], None]) -> None:
        for name, cb in self.named:
            with state.written_by(name):
                call(cb)

    def on_fit_start(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        self._each(state, lambda cb: cb.on_fit_start(trainer, state))

    def on_step_start(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        self._each(state, lambda cb: cb.on_step_start(trainer, state))

    def on_loss(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        self._each(state, lambda cb: cb.on_loss(trainer, state))

    def on_after_backward(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        self._each(state, lambda cb: cb.on_after_backward(trainer, state))

    def on_step_end(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        self._each(state, lambda cb: cb.on_step_end(trainer, state))

    def on_halt(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        self._each(state, lambda cb: cb.on_halt(trainer, state))

    def on_log(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        self._each(state, lambda cb: cb.on_log(trainer, state))

    def on_eval(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        self._each(state, lambda cb: cb.on_eval(trainer, state))

    def on_save_checkpoint(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        self._each(state, lambda cb: cb.on_save_checkpoint(trainer, state))

    def on_fit_end(self, trainer: DeepSupervisionTrainer, state: TrainState) -> None:
        self._each(state, lambda cb: cb.on_fit_end(trainer, state))

    def on_exception(self, trainer: DeepSupervisionTrainer, state: TrainState, exc: BaseException) -> None:
        self._each(state, lambda cb: cb.on_exception(trainer, state, exc))
