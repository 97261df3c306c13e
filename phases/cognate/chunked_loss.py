"""Per-token losses and predictions from a :class:`~agent_forge.models.protocol.ModelOutput`,
with or without the full logits.

A model with a large vocabulary may defer its logits (``out.logits is None``; ``out.hidden`` and
``out.head`` instead, see the model protocol). :func:`token_losses` then runs the head and the
per-token loss a chunk of ``chunk_tokens`` tokens at a time, each chunk under
:func:`torch.utils.checkpoint.checkpoint`: the backward pass recomputes a chunk's logits instead
of keeping them, so no more than one chunk of (tokens, vocab) logits and their gradient is
alive at any time. For lm_conservative (vocab 50,304, seq 512, batch 8) that is ~0.2 GB per 1,024
tokens instead of 0.8 GB of logits plus as much again for the log-softmax and for its gradient.

The result is the same function of the same numbers: each token's loss reads only its own row
of logits, so the per-token losses and predictions equal the unchunked ones; the head's weight
gradient is summed chunk by chunk rather than in one matrix product, which differs only in fp32
rounding (tests/phases/cognate/test_chunked_loss.py).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.utils.checkpoint import checkpoint

from agent_forge.models.protocol import ModelOutput

#: (logits (..., S, V), targets (..., S), ignore_index) -> per-token loss (..., S)
TokenLoss = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


def token_losses(out: ModelOutput, targets: torch.Tensor, ignore_index: int, loss_fn: TokenLoss,
                 chunk_tokens: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(loss, pred)``, both (batch, seq): each token's loss (0 where ignored) and its argmax."""
    if out.logits is not None:
        with torch.no_grad():
            pred = out.logits.argmax(-1)
        return loss_fn(out.logits, targets, ignore_index), pred
    hidden, head = out.hidden, out.head
    b, s, d = hidden.shape
    flat_h, flat_t = hidden.reshape(1, b * s, d), targets.reshape(1, b * s)

    def piece(h: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = head(h)
        return loss_fn(logits, t, ignore_index), logits.detach().argmax(-1)

    losses, preds = [], []
    for start in range(0, b * s, chunk_tokens):
        h, t = flat_h[:, start:start + chunk_tokens], flat_t[:, start:start + chunk_tokens]
        if torch.is_grad_enabled() and h.requires_grad:
            loss, pred = checkpoint(piece, h, t, use_reentrant=False)
        else:
            loss, pred = piece(h, t)
        losses.append(loss)
        preds.append(pred)
    return torch.cat(losses, 1).view(b, s), torch.cat(preds, 1).view(b, s)
