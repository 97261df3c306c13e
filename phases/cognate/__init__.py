"""The Cognate phase: pretraining base models.

Plugin authors need :class:`Callback` (the training events, each taking ``(trainer, state)``),
:class:`TrainState` (what every event receives) and the specs of the hooks this phase adds
(:mod:`agent_forge.phases.cognate.hookspecs`): :class:`TrainerSpec`, :class:`CallbackSpec`,
:class:`VariantSpec`.
"""

from agent_forge.phases.cognate.callback import Callback
from agent_forge.phases.cognate.events import Event
from agent_forge.phases.cognate.hookspecs import CallbackSpec, TrainerSpec, VariantSpec
from agent_forge.phases.cognate.state import CALLBACK_WRITABLE, TrainState

__all__ = ["Callback", "CallbackSpec", "CALLBACK_WRITABLE", "Event", "TrainState", "TrainerSpec", "VariantSpec"]
