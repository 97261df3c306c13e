"""The block stack every architecture shares: its config fields, the token mixer and the stack.

:class:`StackConfig` holds the fields of the stack of post-norm blocks (width, heads, token
mixer, Mixture-of-Heads options); :class:`~agent_forge.models.trm.TRMConfig` and
:class:`~agent_forge.models.transformer.TransformerConfig` extend it with what only they have.
:func:`block_stack` builds the blocks from it::

    blocks = block_stack(cfg, seq_len=36, causal=False)      # nn.ModuleList of cfg.n_layers Blocks

This module sits above :mod:`~agent_forge.models.layers` and :mod:`~agent_forge.models.moh` (it
chooses between their mixers), so neither of those imports the other's user.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from agent_forge.models.fields import OptionError, check_options, option
from agent_forge.models.layers import Attention, Block, MLPTokenMixer, RotaryEmbedding
from agent_forge.models.moh import AUX_NAMES, MoHAttention

#: Mixers that attend (and so take heads, RoPE and a causal mask).
ATTENTION_MIXERS = ("attention", "moh")


@dataclass
class StackConfig:
    """Fields of the block stack; an architecture's config extends it (and may narrow ``mixer``
    to the mixers it supports, or give ``n_layers`` its own default)."""

    d_model: int = option(128, "Width of every layer.", ge=8)
    n_layers: int = option(2, "Blocks in the stack.", ge=1)
    n_heads: int = option(4, "Attention heads.", ge=1)
    head_dim: int | None = option(None, "Per-head width (default: d_model // n_heads).", ge=1)
    n_kv_heads: int | None = option(None, "Grouped-query KV heads (default: n_heads).", ge=1)
    expansion: float = option(4.0, "SwiGLU expansion of the channel MLP.", gt=0)
    mixer: Literal["attention", "mlp", "mlp_official", "moh"] = option(
        "attention", "Token mixer: self-attention, an MLP across positions, the official code's MLP mixer"
                     " (hidden width rounded to 256, norm over the sequence axis), or Mixture-of-Heads"
                     " attention ('moh': each token routes to a learned subset of heads).")
    causal: bool | None = option(None, "Causal attention; default: what the task says.")
    rope: bool = option(True, "Rotary position embeddings inside attention.")
    learned_positions: bool = option(False, "Add a learned embedding per position to the input.")
    moh_threshold_init: float = option(
        0.9, "mixer=moh: initial router threshold (probability mass a token's heads must cover).", gt=0, lt=1)
    moh_temperature_init: float = option(1.0, "mixer=moh: initial router softmax temperature.", gt=0)
    moh_balance_weight: float = option(0.1, "mixer=moh: weight of the load-balance loss across heads.", ge=0)
    moh_complexity_weight: float = option(
        0.1, "mixer=moh: weight of the complexity loss (mean active heads / n_heads).", ge=0)
    moh_sparsity_weight: float = option(
        0.01, "mixer=moh: weight of the sparsity loss (entropy of the routing / log n_heads).", ge=0)

    def __post_init__(self) -> None:
        check_options(self)
        kv = self.n_kv_heads or self.n_heads
        if self.mixer in ATTENTION_MIXERS and self.head_dim is None and self.d_model % self.n_heads:
            raise OptionError("n_heads", f"d_model={self.d_model} is not divisible by n_heads={self.n_heads};"
                                         " set head_dim or choose n_heads dividing d_model")
        if self.n_heads % kv:
            raise OptionError("n_kv_heads", f"n_heads={self.n_heads} is not divisible by n_kv_heads={kv};"
                                            " choose n_kv_heads dividing n_heads")
        if self.mixer not in ATTENTION_MIXERS and self.causal:
            raise OptionError("causal", f"mixer={self.mixer!r} is bidirectional but causal=True;"
                                        " set causal=false or mixer='attention'")

    def moh_options(self) -> dict[str, float] | None:
        """The :class:`MoHAttention` constructor options (None unless mixer=moh)."""
        if self.mixer != "moh":
            return None
        return {"threshold_init": self.moh_threshold_init, "temperature_init": self.moh_temperature_init}

    def moh_weights(self) -> dict[str, float]:
        """The Mixture-of-Heads auxiliary-loss weights, by loss name."""
        return {name: float(getattr(self, f"moh_{name}_weight")) for name in AUX_NAMES}


def make_mixer(kind: str, *, d_model: int, seq_len: int, n_heads: int, n_kv_heads: int, causal: bool,
               expansion: float, rotary: RotaryEmbedding | None, head_dim: int | None = None,
               moh_options: dict[str, float] | None = None, layout: str = "transpose",
               fused: bool = False) -> nn.Module:
    """One block's token mixer: ``attention``, ``moh`` (Mixture-of-Heads), ``mlp`` or ``mlp_official``."""
    if kind == "attention":
        return Attention(d_model, n_heads, n_kv_heads, causal, rotary, head_dim)
    if kind == "moh":
        return MoHAttention(d_model, n_heads, n_kv_heads, causal, rotary, head_dim, **(moh_options or {}))
    if kind in ("mlp", "mlp_official"):
        if causal:
            raise ValueError("the MLP token mixer is bidirectional; use mixer='attention' for causal tasks")
        return MLPTokenMixer(seq_len, expansion, official=kind == "mlp_official", layout=layout, fused=fused)
    raise ValueError(f"unknown mixer {kind!r}; use 'attention', 'moh', 'mlp' or 'mlp_official'")


def block_stack(cfg: StackConfig, *, seq_len: int, causal: bool, rope_base: float = 10000.0,
                layout: str = "transpose", fused: bool = False) -> nn.ModuleList:
    """``cfg.n_layers`` post-norm blocks for sequences of ``seq_len`` (every position the states
    have, prefix included). One rotary table serves every attention layer; ``layout`` and
    ``fused`` are the MLP mixer's and the blocks' options (:class:`MLPTokenMixer`, :class:`Block`)."""
    head_dim = cfg.head_dim or cfg.d_model // cfg.n_heads
    rotary = RotaryEmbedding(head_dim, seq_len, rope_base) if cfg.rope and cfg.mixer in ATTENTION_MIXERS else None
    # Each block's mixer is built before its channel MLP: the order the parameters draw their
    # initial values in, which every saved seed's weights depend on.
    return nn.ModuleList(
        Block(cfg.d_model,
              make_mixer(cfg.mixer, d_model=cfg.d_model, seq_len=seq_len, n_heads=cfg.n_heads,
                         n_kv_heads=cfg.n_kv_heads or cfg.n_heads, head_dim=cfg.head_dim, causal=causal,
                         expansion=cfg.expansion, rotary=rotary, moh_options=cfg.moh_options(),
                         layout=layout, fused=fused),
              cfg.expansion, fused=fused)
        for _ in range(cfg.n_layers))
