"""predict: per-step correctness counts (test-time compute) and the answer at the Q-head's halt."""

from types import SimpleNamespace

import pytest
import torch

from agent_forge.contracts import TaskSpec
from agent_forge.data import Split
from agent_forge.models.protocol import ModelOutput
from agent_forge.phases.common.evaluation import EvalContext, cache_positions, predict, step_curve

VOCAB = 4
TARGETS = torch.tensor([[1, 2, 3], [3, 1, 2], [2, 3, 1], [1, 1, 1], [2, 2, 2]])
INPUTS = torch.tensor([[1, 0, 0]] * 5)  # cell 0 given, cells 1 and 2 blank (token 0)


class StepModel(torch.nn.Module):
    """At step k (1-based) sample i is right everywhere when i < k, else wrong at cell 2 only;
    its Q-head says halt from step 2 on for sample 0 and never for the others."""

    n_sup = 3

    def __init__(self, halting=True):
        super().__init__()
        self.halting = halting

    def initial_carry(self, batch):
        return {"step": 0}

    def forward(self, carry, batch):
        k = carry["step"] + 1
        i = batch["idx"]
        pred = TARGETS[i].clone()
        wrong = i >= k
        pred[wrong, 2] = (pred[wrong, 2] % (VOCAB - 1)) + 1  # another digit
        logits = torch.nn.functional.one_hot(pred, VOCAB).float() * 10
        q = torch.where((i == 0) & torch.tensor(k >= 2), 1.0, -1.0) if self.halting else None
        return {"step": k}, ModelOutput(logits=logits, q_halt_logits=q)


def _split():
    return Split(INPUTS.clone(), TARGETS.clone(), extras={"idx": torch.arange(5)})


@pytest.mark.parametrize("n_sup", [1, 3, 7])
def test_per_step_counts_match_the_answers_step_by_step(n_sup):
    p = predict(StepModel(), _split(), n_sup=n_sup, batch_size=3, device=torch.device("cpu"), blank_token=0)
    assert p.step_exact.tolist() == [min(k, 5) for k in range(1, n_sup + 1)]
    # 10 blank cells; every sample not yet right misses one of them.
    assert p.token_count == 10
    assert p.step_token.tolist() == [10 - (5 - min(k, 5)) for k in range(1, n_sup + 1)]
    steps = p.per_step()
    assert [s["step"] for s in steps] == list(range(1, n_sup + 1))
    assert steps[-1]["exact_accuracy"] == pytest.approx(float(((p.final == TARGETS).all(1)).float().mean()))
    # Sample 0 halts at step 2 (when K >= 2) and keeps that answer; the others halt at the last step.
    assert p.halt_step.tolist() == [min(2, n_sup)] + [n_sup] * 4


def test_step_curve_reports_accuracy_at_the_halting_step():
    task = SimpleNamespace(spec=TaskSpec(name="t", kind="puzzle", vocab_size=VOCAB, seq_len=3,
                                         info={"blank_token": 0}), eval=_split())
    curve = step_curve(EvalContext(StepModel(), task, torch.device("cpu"), batch_size=2, n_sup=4))
    assert curve["n_sup"] == 4 and len(curve["steps"]) == 4
    assert curve["steps"][0] == {"step": 1, "exact_accuracy": 0.2, "token_accuracy": 0.6}
    # At halt: sample 0 (right from step 1) at step 2, samples 1-4 at step 4, where 1, 2, 3 are right.
    assert curve["at_halt"] == {"exact_accuracy": 0.8, "token_accuracy": 0.9, "mean_halt_step": (2 + 4 * 4) / 5}
    no_head = step_curve(EvalContext(StepModel(halting=False), task, torch.device("cpu"), n_sup=2))
    assert no_head["at_halt"] is None and [s["exact_accuracy"] for s in no_head["steps"]] == [0.2, 0.4]


def test_a_cache_across_tokens_holds_the_longest_window_before_it_slides():
    assert cache_positions(3, 4, 12) == 6  # the 7th token is never fed back
    assert cache_positions(3, 14, 12) == 12  # the window fills, then slides
    assert cache_positions(12, 5, 12) == 12
    assert cache_positions(13, 5, 12) == 0  # slides from the first token: nothing is kept
