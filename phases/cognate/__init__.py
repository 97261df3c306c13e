"""The Cognate phase: pretraining base models. Plugin authors need :class:`Callback` (the
training events) and :class:`TrainState` (what every event receives)."""

from agent_forge.phases.cognate.callback import Callback
from agent_forge.phases.cognate.state import TrainState

__all__ = ["Callback", "TrainState"]
