"""An agent-forge plugin that adds the ``cell_mlp`` architecture and a ``forge example-hello`` command.

``cell_mlp`` looks at each cell alone (no token mixing): a deliberately weak control model that
shows the smallest complete architecture a plugin can add. It follows the model protocol with an
empty carry, so the built-in trainer drives it with one supervision step.
"""

from __future__ import annotations

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from agent_forge import hookimpl
from agent_forge.models.protocol import ModelOutput


class CellMLPConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    d_model: int = Field(32, ge=1)
    hidden: int = Field(64, ge=1)


class CellMLP(nn.Module):
    n_sup = 1  # not recursive: one supervision step

    def __init__(self, cfg: CellMLPConfig, task) -> None:
        super().__init__()
        self.embed = nn.Embedding(task.vocab_size, cfg.d_model)
        self.position = nn.Parameter(torch.zeros(task.seq_len, cfg.d_model))
        self.mlp = nn.Sequential(nn.Linear(cfg.d_model, cfg.hidden), nn.GELU(), nn.Linear(cfg.hidden, task.vocab_size))

    def initial_carry(self, batch):
        return {}

    def forward(self, carry, batch):
        h = self.embed(batch["inputs"]) + self.position
        return {}, ModelOutput(logits=self.mlp(h))


@hookimpl
def forge_register_architectures(register):
    register("cell_mlp", CellMLP, config=CellMLPConfig, description="Per-cell MLP (example plugin)")


@hookimpl
def forge_register_commands(cli):
    @cli.command("example-hello")
    def hello(name: str = "forge") -> None:
        """Say hello (proves plugin commands reach the CLI)."""
        print(f"hello from forge-example-plugin, {name}")
