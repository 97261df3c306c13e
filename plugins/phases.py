"""Built-in phases: Cognate (pretraining) and EvoMerge (merging Cognate's models), and Cognate's
commands (``forge variants``, ``forge eval``, ``forge ablate``)."""

from agent_forge import hookimpl
from agent_forge.phases.cognate.phase import CognatePhase
from agent_forge.phases.evomerge.phase import EvoMergePhase


@hookimpl
def forge_register_phases(register):
    register("cognate", CognatePhase, description="Pretrain base models (TRM and baselines)")
    register("evomerge", EvoMergePhase, description="Merge the previous phase's models; keep the best")


@hookimpl
def forge_register_commands(cli):
    from agent_forge.phases.cognate.commands import add_commands

    add_commands(cli)
