"""The task loss of one supervision step: per-row cross-entropy (``trainer.loss``: softmax or the
official code's stable-max, :mod:`agent_forge.phases.common.losses`) over the scored targets, weighted
by the row's supervision step, with an optional penalty for getting worse than the step before.
Algorithms (ACT's halting BCE, a ponder cost) add their own terms in ``on_loss``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from agent_forge.phases.cognate.chunked_loss import token_losses
from agent_forge.phases.common.losses import token_cross_entropy
from agent_forge.phases.cognate.state import TrainState
from agent_forge.phases.cognate.training_config import DeepSupervisionConfig


@dataclass(frozen=True)
class TaskLoss:
    """What :func:`compute_task_loss` measured on this rank's rows; the trainer puts it on the state."""

    #: The weighted task loss (with the improvement penalty when that is on), to backpropagate.
    lm: torch.Tensor
    #: (B,) each row's mean loss over its scored targets, detached.
    per_sample: torch.Tensor
    #: (B, S) the cell is right (or not scored).
    token_correct: torch.Tensor
    #: (B,) the whole answer is right at this step.
    seq_correct: torch.Tensor


def compute_task_loss(state: TrainState, cfg: DeepSupervisionConfig) -> TaskLoss:
    """The task loss and the step's correctness over this rank's rows. Reads the state (the
    output, the targets, each row's step, ``prev_loss`` for the improvement penalty) and changes
    nothing on it."""
    out, targets = state.output, state.local(state.batch["targets"])
    ignore = state.task.spec.ignore_index
    # (B, S) each (float64 for stable-max); chunk by chunk when the model defers its logits.
    def loss_fn(logits: torch.Tensor, t: torch.Tensor, ignore_index: int) -> torch.Tensor:
        return token_cross_entropy(logits, t, cfg.loss, ignore_index)

    ce, pred = token_losses(out, targets, ignore, loss_fn, cfg.loss_chunk_tokens)
    scored = targets != ignore
    per_sample = ((ce * scored).sum(1) / scored.sum(1).clamp(min=1)).float()
    lm = (per_sample * step_weights(state, cfg.supervision_weight_base)).mean()
    if cfg.improvement_reward_scale > 0 and state.prev_loss is not None:
        # A refilled row has no previous step of its own to compare with.
        worse = F.relu(per_sample - state.prev_loss) * (~state.local(state.fresh))
        lm = lm + cfg.improvement_reward_scale * worse.mean()
    with torch.no_grad():
        token_correct = (pred == targets) | ~scored
        return TaskLoss(lm=lm, per_sample=per_sample.detach(), token_correct=token_correct,
                        seq_correct=token_correct.all(1))


def step_weights(state: TrainState, base: float) -> torch.Tensor:
    """Step s of N weighs ``base**((s-1)/(N-1))``, normalised to mean 1 over the N steps."""
    n = state.max_sup_steps
    s = state.local(state.sup_steps).float()  # already incremented: s in 1..n
    if base == 1.0 or n == 1:
        return torch.ones_like(s)
    w = base ** ((s - 1) / (n - 1))
    mean_w = sum(base ** (i / (n - 1)) for i in range(n)) / n
    return w / mean_w
