"""The non-recursive baseline: ``n_layers`` post-norm blocks applied once.

It shares every layer with the TRM (:mod:`agent_forge.models.layers`) and follows the same model
protocol with an empty carry, so the same trainer drives it with one supervision step.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from agent_forge.config import StrictModel
from agent_forge.contracts import TaskSpec
from agent_forge.models.layers import Block, Linear, RotaryEmbedding, TokenEmbedding, make_mixer
from agent_forge.models.protocol import Batch, Carry, ModelOutput


class TransformerConfig(StrictModel):
    d_model: int = Field(128, ge=8)
    n_layers: int = Field(11, ge=1)
    n_heads: int = Field(4, ge=1)
    head_dim: int | None = Field(None, ge=1, description="Per-head width (default: d_model // n_heads).")
    n_kv_heads: int | None = Field(None, ge=1)
    expansion: float = Field(4.0, gt=0)
    mixer: Literal["attention", "mlp"] = "attention"
    causal: bool | None = None
    rope: bool = Field(True, description="Rotary position embeddings inside attention.")
    learned_positions: bool = Field(False, description="Add a learned embedding per position to the input.")

    @model_validator(mode="after")
    def _check(self) -> "TransformerConfig":
        if self.mixer == "attention" and self.head_dim is None and self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) is not divisible by n_heads ({self.n_heads});"
                             " set head_dim explicitly")
        if self.n_heads % (self.n_kv_heads or self.n_heads):
            raise ValueError("n_heads must be divisible by n_kv_heads")
        if self.mixer == "mlp" and self.causal:
            raise ValueError("mixer='mlp' is bidirectional; set causal=false or mixer='attention'")
        return self

    def effective_depth(self) -> int:
        return self.n_layers


class TransformerBaseline(nn.Module):
    n_sup = 1

    def __init__(self, cfg: TransformerConfig, task: TaskSpec) -> None:
        super().__init__()
        self.cfg, self.task = cfg, task
        causal = task.causal if cfg.causal is None else cfg.causal
        rotary = (RotaryEmbedding(cfg.head_dim or cfg.d_model // cfg.n_heads, task.seq_len)
                  if cfg.rope and cfg.mixer == "attention" else None)
        self.embed = TokenEmbedding(task.vocab_size, cfg.d_model, task.seq_len if cfg.learned_positions else None,
                                    task.info.get("num_puzzle_ids"))
        self.blocks = nn.ModuleList(
            Block(cfg.d_model,
                  make_mixer(cfg.mixer, d_model=cfg.d_model, seq_len=task.seq_len, n_heads=cfg.n_heads,
                             n_kv_heads=cfg.n_kv_heads or cfg.n_heads, head_dim=cfg.head_dim, causal=causal,
                             expansion=cfg.expansion, rotary=rotary),
                  cfg.expansion)
            for _ in range(cfg.n_layers))
        self.head = Linear(cfg.d_model, task.vocab_size)

    def initial_carry(self, batch: Batch) -> Carry:
        return {}

    def forward(self, carry: Carry, batch: Batch) -> tuple[Carry, ModelOutput]:
        h = self.embed(batch["inputs"], batch.get("puzzle_ids"))
        for block in self.blocks:
            h = block(h)
        return {}, ModelOutput(logits=self.head(h))


def build_transformer(cfg: TransformerConfig, task: TaskSpec) -> TransformerBaseline:
    return TransformerBaseline(cfg, task)
