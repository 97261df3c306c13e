"""Nothing is chosen on the eval (test) split: it is only reported.

Each test builds a case in which a choice made on the eval split would come out differently from
the rule, so the test fails if any code path picks by the eval split again.
"""

from __future__ import annotations

import pytest
import torch

from agent_forge import hookimpl, run_phase
from agent_forge.checkpoint import load_artifact
from agent_forge.plugin_host import load_plugins
from forge_testing import TINY


class _RawWinsOnEval:
    """An evaluator that scores the raw (live) weights 1 and any other weights 0 on the eval
    split: an eval-split choice between raw and EMA would pick raw."""

    raw: dict[str, torch.Tensor] = {}

    def on_fit_end(self, state) -> None:  # a callback too: it records the raw weights
        _RawWinsOnEval.raw = {n: p.detach().clone() for n, p in state.model.named_parameters()}

    @staticmethod
    def evaluate(model, task, ctx) -> dict[str, float]:
        live = dict(model.named_parameters())
        is_raw = bool(_RawWinsOnEval.raw) and all(torch.equal(live[n], t) for n, t in _RawWinsOnEval.raw.items())
        score = 1.0 if is_raw and ctx.split == "eval" else 0.0
        return {"exact_accuracy": score, "token_accuracy": score}


class _Plugin:
    @hookimpl
    def forge_register_evaluators(self, register):
        register("raw_wins_on_eval", _RawWinsOnEval.evaluate)

    @hookimpl
    def forge_register_callbacks(self, register):
        register("record_raw", lambda cfg: _RawWinsOnEval(), config=None)


@pytest.fixture(scope="module")
def probe_host():
    return load_plugins(entry_points=False, extra=(_Plugin(),))


def _run(host, tmp_path, *overrides):
    return run_phase("cognate", host=host, variant="trm_tiny", max_steps=4, progress=False, out=str(tmp_path / "run"),
                     overrides=[*TINY, "trainer.eval_every=null", "evaluators=[raw_wins_on_eval]",
                                "callbacks.record_raw={}", *overrides])


def test_the_hand_off_is_the_ema_even_where_raw_scores_higher_on_the_eval_split(probe_host, tmp_path):
    result = _run(probe_host, tmp_path)
    m = result.metrics
    assert m["raw/exact_accuracy"] == 1.0 and m["ema/exact_accuracy"] == 0.0  # the eval split favours raw
    artifact = result.artifacts[0].artifact
    assert artifact.weights_kind == "ema" and result.details["models"][0]["chosen_weights"] == "ema"
    assert m["exact_accuracy"] == m["ema/exact_accuracy"]  # the headline is the hand-off's, not the max
    _, weights = load_artifact(result.artifacts[0].manifest_path)
    raw = _RawWinsOnEval.raw
    assert any(not torch.equal(weights[n], raw[n]) for n in raw)  # the EMA weights, not the raw ones


def test_without_ema_the_hand_off_is_raw(probe_host, tmp_path):
    result = _run(probe_host, tmp_path, "callbacks.ema=null")
    assert result.artifacts[0].artifact.weights_kind == "raw"
    assert "ema/exact_accuracy" not in result.metrics
