"""An agent-forge plugin that adds the ``cell_mlp`` architecture and a ``forge example-hello`` command.

``cell_mlp`` looks at each cell alone (no token mixing): a deliberately weak control model that
shows the smallest complete architecture a plugin can add. It follows the model protocol with an
empty carry, so the built-in trainer drives it with one supervision step.

The file has the two halves every architecture plugin has: the model (plain torch: a config
dataclass and a constructor with plain arguments, usable without agent-forge's pipeline) and the
plugin (the validated ``model`` section and ``build(config, task_spec)``, which turns the task
spec into those arguments).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from agent_forge import hookimpl
from agent_forge.config import config_from_dataclass
from agent_forge.models.fields import check_options, option
from agent_forge.models.protocol import ModelOutput

# --- the model: plain torch ------------------------------------------------------------------


@dataclass
class CellMLPConfig:
    d_model: int = option(32, "Embedding width.", ge=1)
    hidden: int = option(64, "Hidden width of the per-cell MLP.", ge=1)

    def __post_init__(self) -> None:
        check_options(self)


class CellMLP(nn.Module):
    n_sup = 1  # not recursive: one supervision step

    def __init__(self, cfg: CellMLPConfig, *, vocab_size: int, seq_len: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, cfg.d_model)
        self.position = nn.Parameter(torch.zeros(seq_len, cfg.d_model))
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, vocab_size))

    def initial_carry(self, batch):
        return {}

    def forward(self, carry, batch):
        h = self.embed(batch["inputs"]) + self.position  # (batch, seq, d_model)
        return {}, ModelOutput(logits=self.mlp(h))


# --- the plugin: config section and translation of the task spec ------------------------------


class CellMLPSettings(config_from_dataclass(CellMLPConfig)):
    """The ``model`` section of ``cell_mlp``: the dataclass's fields, strict (a typo is an error)."""


def build_cell_mlp(config: CellMLPSettings, task) -> CellMLP:  # task: agent_forge.contracts.TaskSpec
    return CellMLP(config.to_dataclass(), vocab_size=task.vocab_size, seq_len=task.seq_len)


@hookimpl
def forge_register_architectures(register):
    register("cell_mlp", build_cell_mlp, config=CellMLPSettings, description="Per-cell MLP (example plugin)")


@hookimpl
def forge_register_commands(cli):
    @cli.command("example-hello")
    def hello(name: str = "forge") -> None:
        """Say hello (proves plugin commands reach the CLI)."""
        print(f"hello from forge-example-plugin, {name}")
