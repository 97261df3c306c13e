"""Built-in trainers."""

from __future__ import annotations

from typing import Callable

from agent_forge import hookimpl
from agent_forge.phases.cognate.hookspecs import TrainerSpec
from agent_forge.phases.cognate.trainer import DeepSupervisionTrainer
from agent_forge.phases.cognate.training_config import DeepSupervisionConfig


@hookimpl
def forge_register_trainers(register: Callable[[TrainerSpec], None]) -> None:
    register(TrainerSpec("deep_supervision", DeepSupervisionTrainer, config=DeepSupervisionConfig,
                         description="Deep supervision with carry refill, ACT, EMA, checkpoints and resume"))
