import math
import types

import pytest
import torch

from agent_forge.plugins.callbacks.act import ACTCallback, ACTConfig
from agent_forge.models.protocol import ModelOutput


def _state(q, correct, steps, min_steps=None, fresh=None):
    b = len(q)
    return types.SimpleNamespace(
        output=ModelOutput(logits=torch.zeros(b, 2, 3), q_halt_logits=torch.tensor(q)),
        seq_correct=torch.tensor(correct), sup_steps=torch.tensor(steps), losses={},
        min_halt_steps=torch.tensor(min_steps if min_steps is not None else [1] * b),
        halted=torch.zeros(b, dtype=torch.bool), fresh=torch.tensor(fresh or [False] * b),
        generator=torch.Generator().manual_seed(0), max_sup_steps=8, device=torch.device("cpu"))


def test_q_learning_halts_on_positive_q_after_minimum_steps():
    cb = ACTCallback(ACTConfig())
    s = _state([2.0, 2.0, -1.0], [True, True, True], [1, 1, 5], min_steps=[1, 3, 1])
    cb.on_loss(None, s)
    cb.on_halt(None, s)
    assert s.halted.tolist() == [True, False, False]
    expected = 0.5 * torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor([2.0, 2.0, -1.0]),
                                                                          torch.ones(3))
    torch.testing.assert_close(s.losses["halt"], expected)


def test_exploration_draws_minimums_for_fresh_rows_only():
    cb = ACTCallback(ACTConfig(explore_prob=1.0))
    s = _state([0.0] * 4, [False] * 4, [0] * 4, min_steps=[7, 7, 7, 7], fresh=[True, False, True, False])
    cb.on_step_start(None, s)
    m = s.min_halt_steps.tolist()
    assert m[1] == 7 and m[3] == 7 and 2 <= m[0] <= 8 and 2 <= m[2] <= 8


def test_per_step_exploration_draws_every_row_at_every_step_and_per_sample_keeps_the_draw():
    """The official code draws the minimum halting step anew at every step for every row."""
    def minimums(exploration):
        cb = ACTCallback(ACTConfig(explore_prob=1.0, exploration=exploration))
        s = _state([0.0] * 64, [False] * 64, [0] * 64, min_steps=[1] * 64, fresh=[True] * 64)
        s.max_sup_steps = 16
        seen = []
        for _ in range(4):
            cb.on_step_start(None, s)
            seen.append(s.min_halt_steps.clone())
            s.fresh = torch.zeros(64, dtype=torch.bool)  # no row halted: none is fresh after the first step
        return seen

    per_sample, per_step = minimums("per_sample"), minimums("per_step")
    assert all(torch.equal(m, per_sample[0]) for m in per_sample)  # drawn once, when the sample started
    for before, after in zip(per_step, per_step[1:]):
        assert not torch.equal(before, after)  # redrawn: 64 rows keeping 15-way draws would be ~1e-75
    assert all(((m >= 2) & (m <= 16)).all() for m in per_step)
    ACTConfig(exploration="per_step")
    with pytest.raises(Exception, match="exploration"):
        ACTConfig(exploration="always")


def test_per_step_exploration_with_no_exploring_row_lets_any_positive_q_halt():
    cb = ACTCallback(ACTConfig(explore_prob=0.0, exploration="per_step"))
    s = _state([1.0, 1.0, -1.0], [True] * 3, [1, 4, 4], min_steps=[9, 9, 9])  # stale minimums are replaced
    cb.on_step_start(None, s)
    cb.on_halt(None, s)
    assert s.halted.tolist() == [True, True, False]


def test_ponder_mode_rewards_halting_regardless_of_correctness():
    cb = ACTCallback(ACTConfig(mode="ponder", ponder_weight=0.1, halt_threshold=0.5))
    s = _state([1.0, -1.0], [False, True], [1, 1])
    cb.on_loss(None, s)
    cb.on_halt(None, s)
    # Halts the wrong answer (q > 0) and keeps the right one: the failure mode seed 001 reports.
    assert s.halted.tolist() == [True, False]
    assert "halt" not in s.losses and s.losses["ponder"].item() > 0


def test_q_learning_target_is_whole_answer_correct_on_mixed_rows():
    """The halting BCE's target is "every scored cell right", per row: not a constant, not token accuracy."""
    # Five rows of three cells; which cells the answer gets right, and the Q-head's logit.
    cells_right = [[1, 1, 1], [1, 1, 0], [0, 0, 0], [1, 1, 1], [0, 1, 0]]
    q = [1.5, 0.5, -1.0, -0.5, 2.5]
    targets = torch.tensor([[0, 1, 2]] * 5)
    # Logits whose argmax is the target exactly where the cell is right (the next class otherwise).
    logits = torch.zeros(5, 3, 3)
    for r, row in enumerate(cells_right):
        for c, right in enumerate(row):
            logits[r, c, (c if right else c + 1) % 3] = 4.0
    token_correct = logits.argmax(-1) == targets
    assert token_correct.int().tolist() == cells_right
    state = types.SimpleNamespace(
        output=ModelOutput(logits=logits, q_halt_logits=torch.tensor(q)), batch={"targets": targets},
        token_correct=token_correct, seq_correct=token_correct.all(1), sup_steps=torch.ones(5, dtype=torch.long),
        losses={}, min_halt_steps=torch.ones(5, dtype=torch.long), halted=torch.zeros(5, dtype=torch.bool),
        fresh=torch.zeros(5, dtype=torch.bool), generator=torch.Generator().manual_seed(0), max_sup_steps=8,
        device=torch.device("cpu"))
    weight = 0.7
    ACTCallback(ACTConfig(loss_weight=weight)).on_loss(None, state)

    def bce(target):  # by hand: -(t log s(q) + (1-t) log(1-s(q))) = log(1 + e^q) - t q, mean over rows
        return weight * sum(math.log1p(math.exp(qi)) - ti * qi for qi, ti in zip(q, target)) / len(q)

    whole = [1.0 if all(row) else 0.0 for row in cells_right]
    assert whole == [1.0, 0.0, 0.0, 1.0, 0.0]
    wrong_targets = {"constant 1": [1.0] * 5, "constant 0": [0.0] * 5,
                     "token accuracy": [sum(row) / 3 for row in cells_right],
                     "inverted": [1 - t for t in whole]}
    for name, target in wrong_targets.items():  # the rows tell every wrong target apart from the right one
        assert abs(bce(target) - bce(whole)) > 0.05, name
    assert state.losses["halt"].item() == pytest.approx(bce(whole), rel=1e-5, abs=1e-6)
