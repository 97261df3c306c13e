"""agent-forge: a model-forging pipeline of pluggable phases.

Public API::

    from agent_forge import hookimpl, Pipeline, run_phase, load_artifact, load_model, solve

Plugin authors register typed specs: ``agent_forge.specs`` (the core's kinds) and
``agent_forge.phases.cognate`` (the Cognate phase's trainers, callbacks and variants).
"""

__version__ = "0.1.0"

# Before anything imports torch: libgomp reads its wait settings when it is loaded.
from agent_forge.threading_env import apply_wait_default  # noqa: E402

apply_wait_default()

from agent_forge.artifacts import load_artifact  # noqa: E402
from agent_forge.hookspecs import hookimpl  # noqa: E402
from agent_forge.loading import load_model  # noqa: E402
from agent_forge.runner import Pipeline, PhaseRunner, RunOptions, run_phase  # noqa: E402
from agent_forge.solving import solve  # noqa: E402

__all__ = ["__version__", "hookimpl", "Pipeline", "PhaseRunner", "RunOptions", "run_phase", "load_artifact",
           "load_model", "solve"]
