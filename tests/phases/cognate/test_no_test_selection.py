"""Nothing is chosen on the eval (test) split: it is only reported.

Each test builds a case in which a choice made on the eval split would come out differently from
the rule, so the test fails if any code path picks by the eval split again.
"""

from __future__ import annotations

import pytest
import torch

from agent_forge import hookimpl, run_phase
from agent_forge.artifacts import load_artifact
from agent_forge.plugin_host import load_plugins
from agent_forge.specs import DatasetSpec, EvaluatorSpec
from agent_forge.phases.cognate import Callback, CallbackSpec
from forge_testing import TINY


class _RawWinsOnEval(Callback):
    """An evaluator that scores the raw (live) weights 1 and any other weights 0 on the eval
    split: an eval-split choice between raw and EMA would pick raw."""

    raw: dict[str, torch.Tensor] = {}

    def on_fit_end(self, trainer, state) -> None:  # a callback too: it records the raw weights
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
        register(EvaluatorSpec("raw_wins_on_eval", _RawWinsOnEval.evaluate))

    @hookimpl
    def forge_register_callbacks(self, register):
        register(CallbackSpec("record_raw", lambda cfg: _RawWinsOnEval()))


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


# -- the validation split -------------------------------------------------------------------
def test_the_validation_split_is_carved_from_training_rows_seeded_and_never_trained_on(host):
    from agent_forge.phases.common.validation import carve_validation

    task = host.get(DatasetSpec, "sudoku4").build(
        host.get(DatasetSpec, "sudoku4").config(train_count=64, eval_count=16, blanks=[6, 8]), 0)
    carved = carve_validation(task, 10, seed=0)
    assert len(carved.validation) == 10 and len(carved.train) == 54
    assert torch.equal(carved.eval.inputs, task.eval.inputs)  # the eval split is untouched
    rows = {bytes(r.tolist()) for r in task.train.inputs}
    train = {bytes(r.tolist()) for r in carved.train.inputs}
    val = {bytes(r.tolist()) for r in carved.validation.inputs}
    assert train | val == rows and not train & val  # a partition of the training rows
    again = carve_validation(task, 10, seed=0)
    assert torch.equal(again.validation.inputs, carved.validation.inputs)  # seeded: the same rows
    assert not torch.equal(carve_validation(task, 10, seed=1).validation.inputs, carved.validation.inputs)
    assert carve_validation(task, 0, seed=0) is task


def test_grouped_rows_are_carved_as_whole_groups():
    from agent_forge.data import Split, TaskData
    from agent_forge.phases.common.validation import carve_validation

    puzzle = torch.arange(20).repeat_interleave(3)  # 20 puzzles, 3 augmented copies each
    inputs = torch.stack([puzzle, torch.arange(60)], 1)
    split = Split(inputs, inputs.clone(), meta={"puzzle": puzzle})
    tested = Split(inputs[:6], inputs[:6].clone(), meta={"puzzle": torch.tensor([0, 0, 1, 1, 2, 2])})
    task = TaskData(spec=None, train=split, eval=tested)  # type: ignore[arg-type]
    for seed in range(5):
        carved = carve_validation(task, 7, seed=seed)
        held = set(carved.validation.meta["puzzle"].tolist())
        assert len(carved.validation) == 9 and len(held) == 3  # the fewest whole puzzles holding >= 7 rows
        assert not held & set(carved.train.meta["puzzle"].tolist())  # no copy of a held-out puzzle trains
        assert not held & {0, 1, 2}  # a puzzle that is tested keeps its rows (demonstrations) in training


def test_validation_samples_that_leave_no_training_rows_are_refused(host):
    from agent_forge.errors import ConfigError
    from agent_forge.phases.common.validation import carve_validation

    task = host.get(DatasetSpec, "sudoku4").build(
        host.get(DatasetSpec, "sudoku4").config(train_count=16, eval_count=8, blanks=[6, 8]), 0)
    with pytest.raises(ConfigError, match=r"validation_samples=16 leaves no training rows.*16 training rows"):
        carve_validation(task, 16, seed=0)


def test_callbacks_never_see_the_eval_split_and_early_stop_decides_on_validation(probe_host, tmp_path):
    from agent_forge.config import apply_overrides
    from agent_forge.errors import ConfigError
    from agent_forge.phases.cognate.config import validate_cognate
    from agent_forge.plugins.variants import VARIANTS

    seen: list[dict[str, float]] = []

    class Watch(Callback):
        def on_eval(self, trainer, state):
            seen.append(dict(state.eval_metrics))

    class WatchPlugin:
        @hookimpl
        def forge_register_callbacks(self, register):
            register(CallbackSpec("watch_eval", lambda cfg: Watch()))

    host = load_plugins(entry_points=False, extra=(WatchPlugin(),))
    result = run_phase("cognate", host=host, variant="trm_tiny", max_steps=4, progress=False, out=str(tmp_path / "v"),
                       overrides=[*TINY, "trainer.eval_every=2", "validation_samples=8", "callbacks.watch_eval={}"])
    assert len(seen) == 2 and all(m and all(k.startswith("val/") for k in m) for m in seen)
    rows = (tmp_path / "v" / "metrics.jsonl").read_text()
    assert '"raw/exact_accuracy"' in rows and '"val/raw/exact_accuracy"' in rows  # both logged
    assert result.artifacts[0].artifact.task.info["validation_samples"] == 8

    def check(*overrides):
        return validate_cognate(probe_host, apply_overrides(VARIANTS["trm_tiny"][0], [*TINY, *overrides]))

    with pytest.raises(ConfigError, match=r"monitor='ema/exact_accuracy' is not a validation metric.*"
                                          r"'val/ema/exact_accuracy'.*validation_samples=N"):
        check("callbacks.early_stop.monitor=ema/exact_accuracy")
    with pytest.raises(ConfigError, match=r"callbacks.early_stop decides on the validation split, but there is none"):
        check("callbacks.early_stop.monitor=val/ema/exact_accuracy")
    assert check("callbacks.early_stop.monitor=val/ema/exact_accuracy", "validation_samples=8").validation_samples == 8


# -- EvoMerge ---------------------------------------------------------------------------------
def test_evomerge_selects_on_the_validation_split_even_where_the_eval_split_would_pick_another(tmp_path):
    """Two inputs; an evaluator under which in0 wins on every eval-split row and in1 on every
    other row. Selection on the eval split (as EvoMerge once did, on its first 250 rows) would
    hand on in0; the rule hands on in1, the validation split's best, and names it the input to beat."""
    eval_rows: set[bytes] = set()
    winners: dict[str, dict[str, torch.Tensor]] = {}

    def probe(model, task, ctx) -> dict[str, float]:
        rows = {bytes(r.tolist()) for r in task.eval.inputs}
        on_eval = rows <= eval_rows
        assert on_eval or not rows & eval_rows  # a split is wholly eval rows or wholly not
        live = model.state_dict()
        wins = all(torch.equal(live[k], v) for k, v in winners["eval" if on_eval else "other"].items())
        return {"exact_accuracy": float(wins), "token_accuracy": float(wins)}

    class Plugin:
        @hookimpl
        def forge_register_evaluators(self, register):
            register(EvaluatorSpec("split_probe", probe))

    host = load_plugins(entry_points=False, extra=(Plugin(),))
    cognate = run_phase("cognate", host=host, variant="trm_tiny", max_steps=3, models=2, progress=False,
                        out=str(tmp_path / "c"), overrides=[*TINY, "trainer.eval_every=null", "validation_samples=16"])
    task = host.get(DatasetSpec, "sudoku4").build(
        host.get(DatasetSpec, "sudoku4").config(train_count=64, eval_count=32, blanks=[6, 8]), 0)
    eval_rows |= {bytes(r.tolist()) for r in task.eval.inputs}
    (a0, w0), (a1, w1) = (load_artifact(ref.manifest_path) for ref in cognate.artifacts)
    winners.update(eval=w0, other=w1)
    manifests = ",".join(str(ref.manifest_path) for ref in cognate.artifacts)
    merge = run_phase("evomerge", host=host, progress=False, out=str(tmp_path / "e"),
                      overrides=[f"inputs=[{manifests}]", "generations=0", "evaluators=[split_probe]",
                                 "tiebreak=null", "selection_samples=16", "heldout_samples=16"])
    assert merge.details["selection_from"] == "validation"
    assert merge.details["best"]["input_id"] == "in1" and merge.details["best_input"] == "in1"
    assert merge.metrics["selection/exact_accuracy"] == 1.0 and merge.metrics["heldout/exact_accuracy"] == 0.0
    inputs = {r["id"]: r for r in merge.details["inputs"]}
    assert inputs["in0"]["heldout"]["exact_accuracy"] == 1.0  # the eval split would have picked in0
