"""A long-term memory bank: slots read into the latent state, written when a sample surprises.

Reads are differentiable (attention of the pooled latent over the slots, through a gate that
starts at zero, so a fresh bank changes nothing). Writes are not: the memory callback calls
:meth:`MemoryBank.write` after each optimizer step with a per-sample surprise (the loss), and only
samples above a threshold are stored. A full bank evicts its least-used slot. All state is in
buffers, so it is saved with the weights and restored on resume.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from agent_forge.models.layers import Linear


class MemoryBank(nn.Module):
    def __init__(self, d_model: int, capacity: int = 64, usage_decay: float = 0.99) -> None:
        super().__init__()
        self.capacity, self.usage_decay = capacity, usage_decay
        self.register_buffer("keys", torch.zeros(capacity, d_model))
        self.register_buffer("values", torch.zeros(capacity, d_model))
        self.register_buffer("usage", torch.zeros(capacity))
        self.register_buffer("filled", torch.zeros(capacity, dtype=torch.bool))
        self.register_buffer("writes", torch.zeros((), dtype=torch.long))
        self.read_proj = Linear(d_model, d_model)
        # One element, not a 0-d scalar: FSDP shards parameters along a first dimension.
        self.gate = nn.Parameter(torch.zeros(1))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[override]
        # Weights saved before the gate had a dimension hold it as a 0-d tensor.
        gate = state_dict.get(prefix + "gate")
        if gate is not None and gate.dim() == 0:
            state_dict[prefix + "gate"] = gate.reshape(1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def read(self, state: torch.Tensor) -> torch.Tensor:
        """(batch, seq, d) -> (batch, 1, d) memory readout, broadcast over positions."""
        if not bool(self.filled.any()):
            return torch.zeros_like(state[:, :1])
        query = state.mean(dim=1)  # (batch, d)
        scores = query @ self.keys.to(query.dtype).T / math.sqrt(query.shape[-1])
        scores = scores.masked_fill(~self.filled, float("-inf"))
        attn = scores.softmax(dim=-1)  # (batch, capacity)
        if self.training:
            with torch.no_grad():
                self.usage.add_(attn.detach().float().sum(0))
        readout = attn @ self.values.to(attn.dtype)
        return (torch.tanh(self.gate) * self.read_proj(readout)).unsqueeze(1)

    @torch.no_grad()
    def write(self, pooled: torch.Tensor, surprise: torch.Tensor, threshold: float) -> int:
        """Store the pooled states ``(batch, d)`` (a latent averaged over positions) of the samples
        whose ``surprise`` exceeds ``threshold``; return how many."""
        self.usage.mul_(self.usage_decay)
        chosen = (surprise > threshold).nonzero().flatten()
        pooled = pooled.float()
        for i in chosen.tolist():
            empty = (~self.filled).nonzero().flatten()
            slot = int(empty[0]) if len(empty) else int(self.usage.argmin())
            self.keys[slot] = pooled[i]
            self.values[slot] = pooled[i]
            self.usage[slot] = 1.0
            self.filled[slot] = True
        self.writes.add_(len(chosen))
        return len(chosen)
