import types

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
    cb.on_loss(s)
    cb.on_halt(s)
    assert s.halted.tolist() == [True, False, False]
    expected = 0.5 * torch.nn.functional.binary_cross_entropy_with_logits(torch.tensor([2.0, 2.0, -1.0]),
                                                                          torch.ones(3))
    torch.testing.assert_close(s.losses["halt"], expected)


def test_exploration_draws_minimums_for_fresh_rows_only():
    cb = ACTCallback(ACTConfig(explore_prob=1.0))
    s = _state([0.0] * 4, [False] * 4, [0] * 4, min_steps=[7, 7, 7, 7], fresh=[True, False, True, False])
    cb.on_step_start(s)
    m = s.min_halt_steps.tolist()
    assert m[1] == 7 and m[3] == 7 and 2 <= m[0] <= 8 and 2 <= m[2] <= 8


def test_ponder_mode_rewards_halting_regardless_of_correctness():
    cb = ACTCallback(ACTConfig(mode="ponder", ponder_weight=0.1, halt_threshold=0.5))
    s = _state([1.0, -1.0], [False, True], [1, 1])
    cb.on_loss(s)
    cb.on_halt(s)
    # Halts the wrong answer (q > 0) and keeps the right one: the failure mode seed 001 reports.
    assert s.halted.tolist() == [True, False]
    assert "halt" not in s.losses and s.losses["ponder"].item() > 0
