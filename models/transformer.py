"""The non-recursive baseline: ``n_layers`` post-norm blocks applied once.

It shares every layer with the TRM (:mod:`agent_forge.models.layers`) and follows the same model
protocol with an empty carry, so the same trainer drives it with one supervision step::

    model = TransformerBaseline(TransformerConfig(d_model=64, n_layers=4), vocab_size=7, seq_len=36)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from agent_forge.models.fields import OptionError, check_options, option
from agent_forge.models import moh
from agent_forge.models.layers import Block, Linear, RotaryEmbedding, TokenEmbedding, make_mixer
from agent_forge.models.protocol import Batch, Carry, ModelOutput


@dataclass
class TransformerConfig:
    d_model: int = option(128, "Width of every layer.", ge=8)
    n_layers: int = option(11, "Blocks, each applied once.", ge=1)
    n_heads: int = option(4, "Attention heads.", ge=1)
    head_dim: int | None = option(None, "Per-head width (default: d_model // n_heads).", ge=1)
    n_kv_heads: int | None = option(None, "Grouped-query KV heads (default: n_heads).", ge=1)
    expansion: float = option(4.0, "SwiGLU expansion of the channel MLP.", gt=0)
    mixer: Literal["attention", "mlp", "moh"] = option(
        "attention", "Token mixer: self-attention, an MLP across positions, or Mixture-of-Heads attention ('moh').")
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
        if self.mixer in ("attention", "moh") and self.head_dim is None and self.d_model % self.n_heads:
            raise OptionError("n_heads", f"d_model={self.d_model} is not divisible by n_heads={self.n_heads};"
                                         " set head_dim or choose n_heads dividing d_model")
        if self.n_heads % kv:
            raise OptionError("n_kv_heads", f"n_heads={self.n_heads} is not divisible by n_kv_heads={kv};"
                                            " choose n_kv_heads dividing n_heads")
        if self.mixer == "mlp" and self.causal:
            raise OptionError("causal", "mixer='mlp' is bidirectional but causal=True;"
                                        " set causal=false or mixer='attention'")

    def effective_depth(self) -> int:
        return self.n_layers


class TransformerBaseline(nn.Module):
    """The baseline for a task of ``vocab_size`` tokens and sequences of ``seq_len``; ``causal`` and
    ``num_puzzle_ids`` as for :class:`~agent_forge.models.trm.TRMEnhancedCognate`."""

    n_sup = 1

    def __init__(self, cfg: TransformerConfig, *, vocab_size: int, seq_len: int, causal: bool = False,
                 num_puzzle_ids: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        causal = causal if cfg.causal is None else cfg.causal
        rotary = (RotaryEmbedding(cfg.head_dim or cfg.d_model // cfg.n_heads, seq_len)
                  if cfg.rope and cfg.mixer in ("attention", "moh") else None)
        self.embed = TokenEmbedding(vocab_size, cfg.d_model, seq_len if cfg.learned_positions else None,
                                    num_puzzle_ids)
        self.blocks = nn.ModuleList(
            Block(cfg.d_model,
                  make_mixer(cfg.mixer, d_model=cfg.d_model, seq_len=seq_len, n_heads=cfg.n_heads,
                             n_kv_heads=cfg.n_kv_heads or cfg.n_heads, head_dim=cfg.head_dim, causal=causal,
                             expansion=cfg.expansion, rotary=rotary, moh_options=moh.moh_options(cfg)),
                  cfg.expansion)
            for _ in range(cfg.n_layers))
        self.head = Linear(cfg.d_model, vocab_size)
        self._moh = moh.moh_layers(self)  # the MoH mixers (mixer=moh), one per block

    def initial_carry(self, batch: Batch) -> Carry:
        return {}

    def forward(self, carry: Carry, batch: Batch) -> tuple[Carry, ModelOutput]:
        moh.reset(self._moh)
        h = self.embed(batch["inputs"], batch.get("puzzle_ids"))
        for block in self.blocks:
            h = block(h)
        aux = moh.aux_losses(self._moh, moh.moh_weights(self.cfg)) if self._moh else {}
        return {}, ModelOutput(logits=self.head(h), aux_losses=aux)

    def metrics(self) -> dict[str, float]:
        """Metrics of the last forward for the training log (model protocol, docs/plugins.md):
        with mixer=moh the routing (:func:`agent_forge.models.moh.layer_metrics`)."""
        return moh.layer_metrics(self._moh) if self._moh else {}
