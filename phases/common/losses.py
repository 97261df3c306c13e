"""Token cross-entropy, softmax or stable-max, shared by training and evaluation.

Stable-max (Prieto et al. 2025, "Grokking at the edge of numerical stability"; every official
TRM config trains with it, ``loss_type: stablemax_cross_entropy``) replaces ``exp`` by

    s(x) = x + 1        for x >= 0
    s(x) = 1 / (1 - x)  for x < 0

and normalises over the vocabulary: ``p_i = s(x_i) / sum_j s(x_j)``. It grows linearly instead
of exponentially, so a confident logit cannot push the others' probabilities to the edge of the
float range. As in the official code it is computed in float64.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

LossKind = Literal["softmax", "stablemax"]


def log_stablemax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``log(s(x) / sum s(x))`` along ``dim``, in float64."""
    x = logits.double()
    s = torch.where(x >= 0, x + 1, 1 / (1 - torch.clamp(x, max=0)))
    return torch.log(s / s.sum(dim=dim, keepdim=True))


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, kind: LossKind = "softmax",
                        ignore_index: int = -100) -> torch.Tensor:
    """Per-position cross-entropy ``(B, S)`` of ``logits`` ``(B, S, V)``; 0 where the target is
    ``ignore_index``. Softmax in float32, stable-max in float64."""
    if kind == "softmax":
        return F.cross_entropy(logits.float().transpose(1, 2), targets, ignore_index=ignore_index, reduction="none")
    if kind != "stablemax":
        raise ValueError(f"unknown loss {kind!r}; use 'softmax' or 'stablemax'")
    scored = targets != ignore_index
    picked = log_stablemax(logits).gather(-1, torch.where(scored, targets, 0).unsqueeze(-1)).squeeze(-1)
    return torch.where(scored, -picked, 0.0)
