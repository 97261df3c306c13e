"""The ``official`` evaluator: the official TRM code's accuracy and exact accuracy, worked out by hand."""

import types

import pytest
import torch

from agent_forge.contracts import TaskSpec
from agent_forge.data import Split, TaskData


def test_official_metrics_by_hand():
    from agent_forge.plugins.evaluators import official, token

    x = -100
    # Example 0: labelled at 4 positions, 3 right -> 0.75, not exact.
    # Example 1: labelled at 1 position, right -> 1.0, exact.
    # Example 2: nothing labelled -> left out of both (the official code's count excludes it).
    targets = torch.tensor([[1, 2, 3, 4], [x, x, 5, x], [x, x, x, x]])
    final = torch.tensor([[1, 2, 3, 0], [0, 0, 5, 0], [9, 9, 9, 9]])
    # The blank cells (input 0) are where `token` scores: example 0 positions 2 and 3, example 1 position 2.
    inputs = torch.tensor([[1, 2, 0, 0], [1, 1, 0, 1], [0, 0, 0, 0]])
    spec = TaskSpec(name="t", vocab_size=10, seq_len=4, info={"blank_token": 0})
    split = Split(inputs, targets)
    task = TaskData(spec=spec, train=split, eval=split)
    ctx = types.SimpleNamespace(split="eval", predictions=lambda: types.SimpleNamespace(final=final))
    m = official(None, task, ctx)
    assert m["official_accuracy"] == pytest.approx((0.75 + 1.0) / 2)
    assert m["official_exact_accuracy"] == pytest.approx(1 / 2)
    # Ours differs: token accuracy pools the blank cells of every example (2 right of 3).
    assert token(None, task, ctx)["token_accuracy"] == pytest.approx(2 / 3)
