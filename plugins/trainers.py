"""Built-in trainers."""

from agent_forge import hookimpl
from agent_forge.phases.cognate.trainer import DeepSupervisionTrainer
from agent_forge.phases.cognate.training_config import DeepSupervisionConfig


@hookimpl
def forge_register_trainers(register):
    register("deep_supervision", DeepSupervisionTrainer, config=DeepSupervisionConfig,
             description="Deep supervision with carry refill, ACT, EMA, checkpoints and resume")
