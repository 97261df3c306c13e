"""Built-in phases: Cognate (pretraining) and EvoMerge (merging Cognate's models), and Cognate's
commands (``forge variants``, ``forge eval``, ``forge ablate``)."""

from __future__ import annotations

from typing import Any, Callable

from agent_forge import hookimpl
from agent_forge.phases.cognate import hookspecs as cognate_hookspecs
from agent_forge.phases.cognate.phase import CognatePhase
from agent_forge.phases.evomerge.phase import EvoMergePhase
from agent_forge.specs import PhaseSpec


@hookimpl
def forge_register_phases(register: Callable[[PhaseSpec], None]) -> None:
    # Cognate brings its own hooks (trainers, callbacks, variants): the core describes no phase.
    register(PhaseSpec("cognate", CognatePhase, hookspecs=(cognate_hookspecs,),
                       description="Pretrain base models (TRM and baselines)"))
    register(PhaseSpec("evomerge", EvoMergePhase,
                       description="Merge the previous phase's models; keep the best"))


@hookimpl
def forge_register_commands(cli: Any) -> None:
    from agent_forge.phases.cognate.commands import add_commands

    add_commands(cli)
