"""Built-in architectures, registered exactly as a third-party plugin would register its own.

The models (``agent_forge.models``) are plain torch: a config dataclass and a constructor that
takes plain arguments. This plugin is the translation layer: it owns the user-facing ``model``
section (a strict pydantic model derived from the dataclass, so ``--set model.d_moddel=1`` is an
error) and ``build(config, task_spec)``, which turns the task spec into constructor arguments.
"""

from __future__ import annotations

from typing import Any, Callable

from agent_forge import hookimpl
from agent_forge.config import config_from_dataclass
from agent_forge.contracts import TaskSpec
from agent_forge.models.transformer import TransformerBaseline, TransformerConfig
from agent_forge.models.trm import TRMConfig, TRMEnhancedCognate
from agent_forge.specs import ArchitectureSpec


class TRMSettings(config_from_dataclass(TRMConfig)):
    """The ``model`` section of architecture ``trm`` (fields: :class:`agent_forge.models.trm.TRMConfig`)."""

    def effective_depth(self) -> int:
        return self.to_dataclass().effective_depth()


class TransformerSettings(config_from_dataclass(TransformerConfig)):
    """The ``model`` section of architecture ``transformer`` (fields:
    :class:`agent_forge.models.transformer.TransformerConfig`)."""

    def effective_depth(self) -> int:
        return self.to_dataclass().effective_depth()


def task_arguments(task: TaskSpec) -> dict[str, Any]:
    """What a model constructor needs to know of the task."""
    return {"vocab_size": task.vocab_size, "seq_len": task.seq_len, "causal": task.causal,
            "num_puzzle_ids": task.info.get("num_puzzle_ids")}


def build_trm(config: TRMSettings, task: TaskSpec) -> TRMEnhancedCognate:
    return TRMEnhancedCognate(config.to_dataclass(), **task_arguments(task))


def build_transformer(config: TransformerSettings, task: TaskSpec) -> TransformerBaseline:
    return TransformerBaseline(config.to_dataclass(), **task_arguments(task))


@hookimpl
def forge_register_architectures(register: Callable[[ArchitectureSpec], None]) -> None:
    register(ArchitectureSpec("trm", build_trm, config=TRMSettings,
                              description="Tiny Recursive Model: one shared net refining answer y and latent z"))
    register(ArchitectureSpec("transformer", build_transformer, config=TransformerSettings,
                              description="Non-recursive baseline: n_layers blocks applied once"))
