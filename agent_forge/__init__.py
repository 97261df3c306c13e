"""agent-forge: a model-forging pipeline of pluggable phases.

Public API::

    from agent_forge import hookimpl, Pipeline, run_phase, load_artifact, load_model, solve

Plugin authors register typed specs: ``agent_forge.specs`` (the core's kinds) and
``agent_forge.phases.cognate`` (the Cognate phase's trainers, callbacks and variants).

The names load on first use (PEP 562 ``__getattr__``), so importing a part that needs nothing of
the pipeline loads nothing of it: ``import agent_forge.models.trm`` is torch and the model files
(tests/models/test_plain_torch.py checks it in a fresh interpreter).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# Before anything imports torch: libgomp reads its wait settings when it is loaded.
from agent_forge.threading_env import apply_wait_default  # noqa: E402

apply_wait_default()

#: Public name -> the module that defines it.
_EXPORTS = {
    "hookimpl": "agent_forge.hookspecs",
    "Pipeline": "agent_forge.runner",
    "PhaseRunner": "agent_forge.runner",
    "RunOptions": "agent_forge.runner",
    "run_phase": "agent_forge.runner",
    "load_artifact": "agent_forge.artifacts",
    "load_model": "agent_forge.loading",
    "solve": "agent_forge.solving",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'agent_forge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what a type checker and an IDE see: the same names, imported eagerly
    from agent_forge.artifacts import load_artifact  # noqa: F401
    from agent_forge.hookspecs import hookimpl  # noqa: F401
    from agent_forge.loading import load_model  # noqa: F401
    from agent_forge.runner import Pipeline, PhaseRunner, RunOptions, run_phase  # noqa: F401
    from agent_forge.solving import solve  # noqa: F401
