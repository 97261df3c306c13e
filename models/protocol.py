"""The model protocol: what every trainer needs from any architecture, recursive or not.

A model keeps its recurrent state in a *carry*: a ``dict[str, Tensor]`` whose tensors all have
the batch as their first dimension. That one rule lets a trainer reset single samples (when a
halted sample is replaced by a fresh one) without knowing what the carry holds::

    fresh = model.initial_carry(batch)
    carry = merge_carry(carry, fresh, reset_mask)

``forward(carry, batch)`` runs one supervision step and returns the next carry (detached from the
graph) and a :class:`ModelOutput`. A non-recursive model returns an empty carry and is trained
with one supervision step (its ``n_sup`` attribute is 1).

A recursive model may opt in to *exploration noise* at inference (``forge eval --samples K``):
it sets the class attribute ``accepts_noise = True`` and takes ``forward(carry, batch,
noise=None)``, calling :meth:`LatentNoise.perturb` on its latent after every latent update.
``noise=None`` must be exactly the computation without the option.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, runtime_checkable

import torch

Carry = dict[str, torch.Tensor]
Batch = dict[str, torch.Tensor]


@dataclass
class ModelOutput:
    """What one supervision step returns.

    A model with a large vocabulary may *defer* its logits: it returns ``logits=None`` with the
    final hidden state ``hidden`` (batch, seq, d) and the ``head`` that maps hidden states to
    logits. The trainer's loss then computes the logits a chunk of tokens at a time (and
    recomputes each chunk in the backward pass), so the full (batch, seq, vocab) fp32 logits and
    their gradient never exist at once (docs/performance.md, "Memory"). Whoever needs them all
    calls :meth:`full_logits`.
    """

    #: (batch, seq, vocab) token logits of the current answer; None when deferred (see above).
    logits: torch.Tensor | None
    #: (batch,) halting logits; > 0 means "halt now". None for models without a halting head.
    q_halt_logits: torch.Tensor | None = None
    #: (batch,) the official code's second Q-head row (``no_ACT_continue: false``); when present a
    #: sample halts when ``q_halt > q_continue`` instead of ``q_halt > 0`` (:meth:`halt_margin`).
    q_continue_logits: torch.Tensor | None = None
    #: Extra losses the model wants minimised (already weighted), by name.
    aux_losses: dict[str, torch.Tensor] = field(default_factory=dict)
    #: With deferred logits: the (batch, seq, d) hidden state the head reads.
    hidden: torch.Tensor | None = None
    #: With deferred logits: hidden (..., d) -> logits (..., vocab), e.g. the model's output layer.
    head: Callable[[torch.Tensor], torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if self.logits is None and (self.hidden is None or self.head is None):
            raise ValueError("ModelOutput needs logits, or hidden and head (deferred logits)")

    def halt_margin(self) -> torch.Tensor | None:
        """(batch,) > 0 where the model says "halt now": ``q_halt - q_continue`` with a continue
        head, else ``q_halt``; None without a halting head."""
        if self.q_halt_logits is None or self.q_continue_logits is None:
            return self.q_halt_logits
        return self.q_halt_logits - self.q_continue_logits

    def full_logits(self) -> torch.Tensor:
        """The (batch, seq, vocab) logits, computed from ``hidden`` and ``head`` if deferred."""
        return self.logits if self.logits is not None else self.head(self.hidden)


@dataclass
class LatentNoise:
    """Gaussian exploration noise for a recursive model's latent, one scale per batch row.

    :meth:`perturb` returns ``h + scale[b] * rms(h[b]) * eps`` with ``eps ~ N(0, 1)`` drawn from
    ``generator``: the noise is *relative* to the state's root-mean-square over all its
    positions and channels, so one ``scale`` means the same on every model width and at every
    step. Rows whose scale is 0 come back unchanged, bit for bit (the noiseless trajectory in a
    batch of noisy ones); their draws are still made, so the stream does not depend on which
    rows are noisy.
    """

    #: (batch,) the relative noise scale (sigma) of each row; 0: that row is noiseless.
    scale: torch.Tensor
    #: The source of the draws (on the states' device); None: torch's global generator.
    generator: torch.Generator | None = None

    def perturb(self, h: torch.Tensor) -> torch.Tensor:
        """``h`` (batch, ...) with this noise added (see the class docstring)."""
        dims = tuple(range(1, h.dim()))
        rms = h.float().pow(2).mean(dim=dims, keepdim=True).sqrt()
        eps = torch.randn(h.shape, generator=self.generator, device=h.device, dtype=torch.float32)
        scale = self.scale.to(device=h.device, dtype=torch.float32).view(-1, *([1] * (h.dim() - 1)))
        return torch.where(scale > 0, (h.float() + scale * rms * eps).to(h.dtype), h)

    def subset(self, rows: torch.Tensor) -> "LatentNoise":
        """The same noise for the batch rows ``rows`` only (same generator)."""
        return LatentNoise(self.scale[rows], self.generator)


def accepts_noise(model: object) -> bool:
    """Whether ``model`` takes ``forward(carry, batch, noise=LatentNoise(...))`` (module docstring)."""
    return bool(getattr(model, "accepts_noise", False))


@runtime_checkable
class RecursiveModel(Protocol):
    #: Supervision steps per sample at evaluation (1 for a non-recursive model).
    n_sup: int

    def initial_carry(self, batch: Batch) -> Carry: ...

    def forward(self, carry: Carry, batch: Batch) -> tuple[Carry, ModelOutput]: ...


def merge_carry(old: Carry, fresh: Carry, reset: torch.Tensor) -> Carry:
    """Rows where ``reset`` (bool, shape (batch,)) is true come from ``fresh``, the rest from ``old``."""
    out: Carry = {}
    for key, value in old.items():
        mask = reset.view(-1, *([1] * (value.dim() - 1)))
        out[key] = torch.where(mask, fresh[key].to(value.dtype), value)
    return out
