"""The two refinement terms of the task loss, against values computed by hand."""

import math
from types import SimpleNamespace

import pytest
import torch

from agent_forge.models.protocol import ModelOutput
from agent_forge.phases.cognate.losses import compute_task_loss, step_weights
from agent_forge.phases.cognate.training_config import DeepSupervisionConfig


def _state(sup_steps, max_sup_steps, *, vocab=4, prev_loss=None, fresh=None):
    rows = len(sup_steps)
    # Zero logits: every token's cross-entropy is ln(vocab), whatever the target.
    return SimpleNamespace(
        output=ModelOutput(logits=torch.zeros(rows, 2, vocab)),
        batch={"targets": torch.zeros(rows, 2, dtype=torch.long)},
        task=SimpleNamespace(spec=SimpleNamespace(ignore_index=-100)),
        local=lambda t: t, max_sup_steps=max_sup_steps, sup_steps=torch.tensor(sup_steps),
        prev_loss=prev_loss, fresh=torch.tensor(fresh if fresh is not None else [False] * rows))


def _cfg(**kw):
    return DeepSupervisionConfig(max_steps=1, **kw)


def test_hierarchical_weights_by_hand():
    # base 5, N 3: raw 5^0, 5^0.5, 5^1 = 1, 2.2360680, 5; their mean 2.7453560.
    w = step_weights(_state([1, 2, 3], 3), 5.0)
    assert w.tolist() == pytest.approx([0.3642515, 0.8144911, 1.8212574], abs=1e-6)
    assert float(w.mean()) == pytest.approx(1.0)  # normalised: the loss scale does not move with base
    # base 1 (the default) is uniform; one step is weight 1 whatever the base.
    assert step_weights(_state([1, 3], 3), 1.0).tolist() == [1.0, 1.0]
    assert step_weights(_state([1], 1), 5.0).tolist() == [1.0]


def test_task_loss_is_the_weighted_mean_over_rows():
    task = compute_task_loss(_state([1, 3], 3), _cfg(supervision_weight_base=5.0))
    # rows at steps 1 and 3: ln4 * (0.3642515 + 1.8212574) / 2
    assert float(task.lm) == pytest.approx(math.log(4) * 1.0927544, rel=1e-6)


def test_improvement_penalty_by_hand():
    # First step: nothing to compare with, so no penalty; the row losses are kept for the next.
    task = compute_task_loss(_state([1, 1], 4), _cfg(improvement_reward_scale=1.0))
    assert float(task.lm) == pytest.approx(math.log(4))
    assert task.per_sample.tolist() == pytest.approx([math.log(4)] * 2)
    # Next step: row 0 was at 1.0 and is now at ln4 = 1.3862944 (worse by 0.3862944); row 1 was at
    # 2.0 (better now: no penalty); row 2 got worse but was refilled (a fresh sample: no penalty).
    state = _state([2, 2, 1], 4, prev_loss=torch.tensor([1.0, 2.0, 0.5]), fresh=[False, False, True])
    lm = compute_task_loss(state, _cfg(improvement_reward_scale=2.0)).lm
    assert float(lm) == pytest.approx(math.log(4) + 2.0 * 0.3862944 / 3, rel=1e-6)
    # Scale 0 (the default) adds nothing.
    lm = compute_task_loss(_state([2], 4, prev_loss=torch.tensor([0.1])), _cfg()).lm
    assert float(lm) == pytest.approx(math.log(4))


def test_the_task_loss_returns_its_result_and_changes_nothing_on_the_state():
    state = _state([1, 2], 4, prev_loss=torch.tensor([9.0, 9.0]))
    before = {key: id(value) for key, value in vars(state).items()}
    task = compute_task_loss(state, _cfg(improvement_reward_scale=1.0))
    assert {key: id(value) for key, value in vars(state).items()} == before
    assert state.prev_loss.tolist() == [9.0, 9.0]
    assert task.seq_correct.tolist() == [True, True]  # zero logits pick token 0, the target
    assert task.token_correct.shape == (2, 2) and not task.per_sample.requires_grad
