"""The task loss of one supervision step: per-row cross-entropy (``trainer.loss``: softmax or the
official code's stable-max, :mod:`agent_forge.phases.common.losses`) over the scored targets, weighted
by the row's supervision step, with an optional penalty for getting worse than the step before.
Algorithms (ACT's halting BCE, a ponder cost) add their own terms in ``on_loss``."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from agent_forge.phases.cognate.chunked_loss import token_losses
from agent_forge.phases.common.losses import token_cross_entropy
from agent_forge.phases.cognate.state import TrainState
from agent_forge.phases.cognate.training_config import DeepSupervisionConfig


def compute_task_loss(state: TrainState, cfg: DeepSupervisionConfig) -> None:
    """Set ``state.losses = {"lm": ...}`` and the step's correctness (``token_correct``,
    ``seq_correct``) and ``per_sample_loss``, all over this rank's rows."""
    out, targets = state.output, state.local(state.batch["targets"])
    ignore = state.task.spec.ignore_index
    # (B, S) each (float64 for stable-max); chunk by chunk when the model defers its logits.
    def loss_fn(logits: torch.Tensor, t: torch.Tensor, ignore_index: int) -> torch.Tensor:
        return token_cross_entropy(logits, t, cfg.loss, ignore_index)

    ce, pred = token_losses(out, targets, ignore, loss_fn, cfg.loss_chunk_tokens)
    scored = targets != ignore
    per_sample = ((ce * scored).sum(1) / scored.sum(1).clamp(min=1)).float()
    lm = (per_sample * step_weights(state, cfg.supervision_weight_base)).mean()
    if cfg.improvement_reward_scale > 0:
        if state.prev_loss is not None:
            # A refilled row has no previous step of its own to compare with.
            worse = F.relu(per_sample - state.prev_loss) * (~state.local(state.fresh))
            lm = lm + cfg.improvement_reward_scale * worse.mean()
        state.prev_loss = per_sample.detach()
    with torch.no_grad():
        state.token_correct = (pred == targets) | ~scored
        state.seq_correct = state.token_correct.all(1)
        state.per_sample_loss = per_sample.detach()
    state.losses = {"lm": lm}
    for name, value in out.aux_losses.items():
        state.losses[name] = value


def step_weights(state: TrainState, base: float) -> torch.Tensor:
    """Step s of N weighs ``base**((s-1)/(N-1))``, normalised to mean 1 over the N steps."""
    n = state.max_sup_steps
    s = state.local(state.sup_steps).float()  # already incremented: s in 1..n
    if base == 1.0 or n == 1:
        return torch.ones_like(s)
    w = base ** ((s - 1) / (n - 1))
    mean_w = sum(base ** (i / (n - 1)) for i in range(n)) / n
    return w / mean_w
