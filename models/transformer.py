"""The non-recursive baseline: ``n_layers`` post-norm blocks applied once.

It shares every layer with the TRM (:mod:`agent_forge.models.layers`) and follows the same model
protocol with an empty carry, so the same trainer drives it with one supervision step::

    model = TransformerBaseline(TransformerConfig(d_model=64, n_layers=4), vocab_size=7, seq_len=36)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from torch import nn

from agent_forge.models import moh
from agent_forge.models.fields import option
from agent_forge.models.layers import Linear, TokenEmbedding
from agent_forge.models.protocol import Batch, Carry, ModelOutput
from agent_forge.models.stack import StackConfig, block_stack


@dataclass
class TransformerConfig(StackConfig):
    """The baseline's config: the block stack's fields (:class:`~agent_forge.models.stack.StackConfig`)
    with its own depth and the mixers it supports."""

    n_layers: int = option(11, "Blocks, each applied once.", ge=1)
    mixer: Literal["attention", "mlp", "moh"] = option(
        "attention", "Token mixer: self-attention, an MLP across positions, or Mixture-of-Heads attention ('moh').")

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
        self.embed = TokenEmbedding(vocab_size, cfg.d_model, seq_len if cfg.learned_positions else None,
                                    num_puzzle_ids)
        self.blocks = block_stack(cfg, seq_len=seq_len, causal=causal)
        self.head = Linear(cfg.d_model, vocab_size)
        self._moh = moh.moh_layers(self)  # the MoH mixers (mixer=moh), one per block

    def initial_carry(self, batch: Batch) -> Carry:
        return {}

    def forward(self, carry: Carry, batch: Batch) -> tuple[Carry, ModelOutput]:
        moh.reset(self._moh)
        h = self.embed(batch["inputs"], batch.get("puzzle_ids"))
        for block in self.blocks:
            h = block(h)
        aux = moh.aux_losses(self._moh, self.cfg.moh_weights()) if self._moh else {}
        return {}, ModelOutput(logits=self.head(h), aux_losses=aux)

    def metrics(self) -> dict[str, float]:
        """Metrics of the last forward for the training log (model protocol, docs/plugins.md):
        with mixer=moh the routing (:func:`agent_forge.models.moh.layer_metrics`)."""
        return moh.layer_metrics(self._moh) if self._moh else {}
