"""TRMEnhancedCognate: a Tiny Recursive Model ("Less is More", Jolicoeur-Martineau 2025).

One small shared network ``net`` (``n_layers`` post-norm blocks) refines two states: the answer
``y`` and a latent ``z``. One call of :meth:`forward` is one *supervision step*::

    x = embed(inputs)
    no_grad: repeat T-1 times: y, z = cycle(x, y, z)
    y, z = cycle(x, y, z)                 # the only cycle that builds a graph
    return (y, z).detach(), head(y), q_head(y)    # q_head only with halting_head=True

    cycle(x, y, z): repeat n times: z = net(z, x + y)   # think
                    y = net(y, z)                        # answer

Effective depth per supervision step is ``n_layers * (n + 1) * T``; the trainer runs up to
``n_sup`` steps per sample, so the whole model is ``n_layers * (n+1) * T * n_sup`` layers deep.

Plain torch: the model takes its config and what the task says, nothing of the pipeline::

    model = TRMEnhancedCognate(TRMConfig(d_model=64, n=2, T=2), vocab_size=7, seq_len=36)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from agent_forge.models.fields import OptionError, check_options, option
from agent_forge.models.layers import Block, Linear, RotaryEmbedding, TokenEmbedding, make_mixer, trunc_normal_
from agent_forge.models.memory import MemoryBank
from agent_forge.models.protocol import Batch, Carry, ModelOutput


@dataclass
class TRMConfig:
    d_model: int = option(128, "Width of every state and layer.", ge=8)
    n_layers: int = option(2, "Blocks in the shared network (L).", ge=1)
    n_heads: int = option(4, "Attention heads.", ge=1)
    head_dim: int | None = option(None, "Per-head width (default: d_model // n_heads).", ge=1)
    n_kv_heads: int | None = option(None, "Grouped-query KV heads (default: n_heads).", ge=1)
    expansion: float = option(4.0, "SwiGLU expansion of the channel MLP.", gt=0)
    n: int = option(3, "Latent updates per cycle.", ge=1)
    T: int = option(3, "Cycles per supervision step (T-1 without gradients).", ge=1)
    n_sup: int = option(16, "Maximum supervision steps per sample.", ge=1)
    mixer: Literal["attention", "mlp"] = option("attention", "Token mixer: self-attention or an MLP across positions.")
    causal: bool | None = option(None, "Causal attention; default: what the task says.")
    rope: bool = option(True, "Rotary position embeddings inside attention.")
    learned_positions: bool = option(False, "Add a learned embedding per position to the input.")
    step_scales: bool = option(False, "Learnable per-step residual scales (ReZero-style).")
    step_scale_init: float = option(0.1, "Initial value of every step scale.", gt=0)
    step_scale_min: float = option(0.01, "Lower clamp of the step scales.", ge=0)
    step_scale_max: float = option(1.0, "Upper clamp of the step scales.", gt=0)
    memory: Literal["none", "latent", "full"] = option(
        "none", "Memory bank read into z ('latent') or into z and y ('full').")
    memory_capacity: int = option(64, "Slots in the memory bank.", ge=1)
    halting_head: bool = option(
        True, "The Q-head predicting 'halt' (trained by callbacks.act); off: no q_head, q_halt_logits=None.")
    defer_logits: bool = option(
        False, "Return the final hidden state and the head instead of the (batch, seq, vocab) logits; the loss"
               " computes them in chunks (trainer.loss_chunk_tokens). For large vocabularies.")
    checkpoint_blocks: bool = option(
        False, "Recompute each block of the graded cycle in the backward pass (torch.utils.checkpoint) instead"
               " of keeping its activations: less memory, about a third more compute per step.")

    def __post_init__(self) -> None:
        check_options(self)
        kv = self.n_kv_heads or self.n_heads
        if self.mixer == "attention" and self.head_dim is None and self.d_model % self.n_heads:
            raise OptionError("n_heads", f"d_model={self.d_model} is not divisible by n_heads={self.n_heads};"
                                         " set head_dim or choose n_heads dividing d_model")
        if self.n_heads % kv:
            raise OptionError("n_kv_heads", f"n_heads={self.n_heads} is not divisible by n_kv_heads={kv};"
                                            " choose n_kv_heads dividing n_heads")
        if self.step_scale_min > self.step_scale_max:
            raise OptionError("step_scale_min", f"step_scale_min={self.step_scale_min} exceeds step_scale_max="
                                                f"{self.step_scale_max}; lower the minimum or raise the maximum")
        if self.mixer == "mlp" and self.causal:
            raise OptionError("causal", "mixer='mlp' is bidirectional but causal=True;"
                                        " set causal=false or mixer='attention'")

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
        self.checkpoint_blocks = cfg.checkpoint_blocks

    def forward(self, h: torch.Tensor, injection: torch.Tensor, step: int) -> torch.Tensor:
        h = h + injection
        recompute = self.checkpoint_blocks and torch.is_grad_enabled()
        for i, block in enumerate(self.blocks):
            scales = None if self.scales is None else self.scales[i, step].clamp(*self.scale_range)
            h = checkpoint(block, h, scales, use_reentrant=False) if recompute else block(h, scales)
        return h


class TRMEnhancedCognate(nn.Module):
    """The TRM for a task of ``vocab_size`` tokens and sequences of ``seq_len``.

    ``causal`` is the task's default (``cfg.causal`` overrides it when set); ``num_puzzle_ids``
    adds a learned embedding per puzzle id (``batch["puzzle_ids"]``) when the task names puzzles.
    """

    def __init__(self, cfg: TRMConfig, *, vocab_size: int, seq_len: int, causal: bool = False,
                 num_puzzle_ids: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.n_sup = cfg.n_sup
        causal = causal if cfg.causal is None else cfg.causal
        d = cfg.d_model
        self.embed = TokenEmbedding(vocab_size, d, seq_len if cfg.learned_positions else None, num_puzzle_ids)
        self.net = RecursiveNet(cfg, seq_len, causal)
        self.head = Linear(d, vocab_size)
        # The halting head exists only when asked for: a head no loss trains would be a parameter
        # without a gradient, which DDP refuses (and halting on an untrained head means nothing).
        self.q_head = nn.Linear(d, 1) if cfg.halting_head else None
        if self.q_head is not None:
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
        q_halt = self.q_head(y.mean(dim=1)).squeeze(-1) if self.q_head is not None else None  # (batch,)
        if self.cfg.defer_logits:  # the loss runs the head chunk by chunk (model protocol)
            return {"y": y.detach(), "z": z.detach()}, ModelOutput(None, q_halt, hidden=y, head=self.head)
        logits = self.head(y)  # (batch, seq, vocab)
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

