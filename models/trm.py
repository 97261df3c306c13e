"""TRMEnhancedCognate: a Tiny Recursive Model ("Less is More", Jolicoeur-Martineau 2025).

One small shared network ``net`` (``n_layers`` post-norm blocks) refines two states: the answer
``y`` and a latent ``z``. One call of :meth:`forward` is one *supervision step*::

    x = embed(inputs)
    no_grad: repeat T-1 times: y, z = cycle(x, y, z)
    y, z = cycle(x, y, z)                 # the only cycle that builds a graph
    return (y, z).detach(), head(y), q_head(y)

    cycle(x, y, z): repeat n times: z = net(z, x + y)   # think
                    y = net(y, z)                        # answer

Effective depth per supervision step is ``n_layers * (n + 1) * T``; the trainer runs up to
``n_sup`` steps per sample, so the whole model is ``n_layers * (n+1) * T * n_sup`` layers deep.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from agent_forge.config import StrictModel
from agent_forge.contracts import TaskSpec
from agent_forge.models.layers import Block, Linear, RotaryEmbedding, TokenEmbedding, make_mixer, trunc_normal_
from agent_forge.models.memory import MemoryBank
from agent_forge.models.protocol import Batch, Carry, ModelOutput


class TRMConfig(StrictModel):
    d_model: int = Field(128, ge=8, description="Width of every state and layer.")
    n_layers: int = Field(2, ge=1, description="Blocks in the shared network (L).")
    n_heads: int = Field(4, ge=1)
    head_dim: int | None = Field(None, ge=1, description="Per-head width (default: d_model // n_heads).")
    n_kv_heads: int | None = Field(None, ge=1, description="Grouped-query KV heads (default: n_heads).")
    expansion: float = Field(4.0, gt=0, description="SwiGLU expansion of the channel MLP.")
    n: int = Field(3, ge=1, description="Latent updates per cycle.")
    T: int = Field(3, ge=1, description="Cycles per supervision step (T-1 without gradients).")
    n_sup: int = Field(16, ge=1, description="Maximum supervision steps per sample.")
    mixer: Literal["attention", "mlp"] = "attention"
    causal: bool | None = Field(None, description="Causal attention; default: what the task says.")
    rope: bool = Field(True, description="Rotary position embeddings inside attention.")
    learned_positions: bool = Field(False, description="Add a learned embedding per position to the input.")
    step_scales: bool = Field(False, description="Learnable per-step residual scales (ReZero-style).")
    step_scale_init: float = Field(0.1, gt=0)
    step_scale_min: float = Field(0.01, ge=0)
    step_scale_max: float = Field(1.0, gt=0)
    memory: Literal["none", "latent", "full"] = Field(
        "none", description="Memory bank read into z ('latent') or into z and y ('full').")
    memory_capacity: int = Field(64, ge=1)

    @model_validator(mode="after")
    def _check(self) -> "TRMConfig":
        kv = self.n_kv_heads or self.n_heads
        if self.mixer == "attention" and self.head_dim is None and self.d_model % self.n_heads:
            raise ValueError(f"d_model ({self.d_model}) is not divisible by n_heads ({self.n_heads});"
                             " set head_dim explicitly")
        if self.n_heads % kv:
            raise ValueError(f"n_heads ({self.n_heads}) must be divisible by n_kv_heads ({kv})")
        if self.step_scale_min > self.step_scale_max:
            raise ValueError("step_scale_min must not exceed step_scale_max")
        if self.mixer == "mlp" and self.causal:
            raise ValueError("mixer='mlp' is bidirectional; set causal=false or mixer='attention'")
        return self

    def effective_depth(self) -> int:
        return self.n_layers * (self.n + 1) * self.T * self.n_sup


class RecursiveNet(nn.Module):
    """The one shared network: ``net(h, injection) = blocks(h + injection)``."""

    def __init__(self, cfg: TRMConfig, seq_len: int, causal: bool) -> None:
        super().__init__()
        head_dim = cfg.head_dim or cfg.d_model // cfg.n_heads
        rotary = RotaryEmbedding(head_dim, seq_len) if cfg.rope and cfg.mixer == "attention" else None
        self.blocks = nn.ModuleList(
            Block(cfg.d_model,
                  make_mixer(cfg.mixer, d_model=cfg.d_model, seq_len=seq_len, n_heads=cfg.n_heads,
                             n_kv_heads=cfg.n_kv_heads or cfg.n_heads, head_dim=cfg.head_dim, causal=causal,
                             expansion=cfg.expansion, rotary=rotary),
                  cfg.expansion)
            for _ in range(cfg.n_layers))
        # One (mixer, mlp) scale pair per block and per position in the cycle (0..n).
        self.scales = (nn.Parameter(torch.full((cfg.n_layers, cfg.n + 1, 2), cfg.step_scale_init))
                       if cfg.step_scales else None)
        self.scale_range = (cfg.step_scale_min, cfg.step_scale_max)

    def forward(self, h: torch.Tensor, injection: torch.Tensor, step: int) -> torch.Tensor:
        h = h + injection
        for i, block in enumerate(self.blocks):
            scales = None if self.scales is None else self.scales[i, step].clamp(*self.scale_range)
            h = block(h, scales)
        return h


class TRMEnhancedCognate(nn.Module):
    def __init__(self, cfg: TRMConfig, task: TaskSpec) -> None:
        super().__init__()
        self.cfg, self.task = cfg, task
        self.n_sup = cfg.n_sup
        causal = task.causal if cfg.causal is None else cfg.causal
        d = cfg.d_model
        self.embed = TokenEmbedding(task.vocab_size, d, task.seq_len if cfg.learned_positions else None,
                                    task.info.get("num_puzzle_ids"))
        self.net = RecursiveNet(cfg, task.seq_len, causal)
        self.head = Linear(d, task.vocab_size)
        self.q_head = nn.Linear(d, 1)
        # Q-head starts at "keep going" (sigmoid(-5) ~ 0.007) so early training never halts.
        nn.init.zeros_(self.q_head.weight)
        nn.init.constant_(self.q_head.bias, -5.0)
        # Fixed (not learned) starting points for y and z, as in the official code.
        self.register_buffer("y_init", trunc_normal_(torch.empty(d), std=1.0))
        self.register_buffer("z_init", trunc_normal_(torch.empty(d), std=1.0))
        self.memory = MemoryBank(d, cfg.memory_capacity) if cfg.memory != "none" else None
        # An empty bank is not read, so its parameters get no gradient on those steps; DDP must
        # be told to look for such parameters (see the model protocol in docs/plugins.md).
        self.has_unused_parameters = self.memory is not None

    def initial_carry(self, batch: Batch) -> Carry:
        b, s = batch["inputs"].shape
        shape = (b, s, self.cfg.d_model)
        return {"y": self.y_init.expand(shape).clone(), "z": self.z_init.expand(shape).clone()}

    def cycle(self, x: torch.Tensor, y: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        recall = self.memory.read(z) if self.memory is not None else 0
        for i in range(self.cfg.n):
            z = self.net(z, x + y + recall, step=i)
        answer_recall = recall if self.cfg.memory == "full" else 0
        y = self.net(y, z + answer_recall, step=self.cfg.n)
        return y, z

    def forward(self, carry: Carry, batch: Batch) -> tuple[Carry, ModelOutput]:
        x = self.embed(batch["inputs"], batch.get("puzzle_ids"))  # (batch, seq, d)
        y, z = carry["y"], carry["z"]
        with torch.no_grad():
            for _ in range(self.cfg.T - 1):
                y, z = self.cycle(x, y, z)
        y, z = self.cycle(x, y, z)
        logits = self.head(y)  # (batch, seq, vocab)
        q_halt = self.q_head(y.mean(dim=1)).squeeze(-1)  # (batch,)
        return {"y": y.detach(), "z": z.detach()}, ModelOutput(logits=logits, q_halt_logits=q_halt)

    def step_scale_values(self) -> dict[str, float]:
        """Current clamped residual scales, for the metrics (empty when disabled)."""
        if self.net.scales is None:
            return {}
        s = self.net.scales.detach()
        # Under FSDP the parameter is a sharded DTensor; the metrics need all of it.
        s = s.full_tensor() if hasattr(s, "full_tensor") else s
        s = s.clamp(*self.net.scale_range)
        return {f"scale/l{l}/s{i}/{part}": float(s[l, i, j]) for l in range(s.shape[0])
                for i in range(s.shape[1]) for j, part in enumerate(("mix", "mlp"))}


def build_trm(cfg: TRMConfig, task: TaskSpec) -> TRMEnhancedCognate:
    return TRMEnhancedCognate(cfg, task)
