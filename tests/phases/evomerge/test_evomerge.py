"""The EvoMerge phase on tiny Cognate models: pipeline, budget, report, config and input checks."""

import json
import re

import pytest

from agent_forge import Pipeline, load_artifact, run_phase
from agent_forge.artifacts import write_artifact
from agent_forge.errors import ConfigError
from forge_testing import TINY

SPLITS = ("selection_samples=16", "heldout_samples=16")  # TINY's eval split has 32 rows


def _cognate(host, out, *extra, models=1, variant="trm_tiny", tiny=TINY):
    result = run_phase("cognate", host=host, variant=variant, overrides=[*tiny, *extra], max_steps=3, models=models,
                       progress=False, out=out)
    return [str(a.manifest_path) for a in result.artifacts]


@pytest.fixture(scope="module")
def inputs(host, tmp_path_factory):
    """Two tiny Cognate models (seeds 0 and 1) of one config."""
    return _cognate(host, tmp_path_factory.mktemp("cognate") / "run", models=2)


def _evomerge(host, out, manifests, *overrides):
    return run_phase("evomerge", host=host, progress=False, out=out,
                     overrides=[f"inputs=[{','.join(manifests)}]", *SPLITS, *overrides])


def test_pipeline_cognate_then_evomerge_runs_five_generations(tmp_path, host):
    results = Pipeline(["cognate", "evomerge"], host=host).run(
        per_phase={"cognate": {"overrides": tuple(TINY)}, "evomerge": {"overrides": SPLITS}},
        variant="trm_tiny", max_steps=3, models=3, progress=False, out=tmp_path / "p")
    cognate, merge = results
    assert merge.status == "completed" and merge.duration_s < 180
    (ref,) = merge.artifacts
    assert set(ref.artifact.parents) == {a.artifact.id for a in cognate.artifacts}
    artifact, weights = load_artifact(ref.manifest_path)  # sealed and checksummed like Cognate's
    assert artifact.phase == "evomerge" and set(weights) == set(load_artifact(cognate.artifacts[0].manifest_path)[1])
    history = merge.details["history"]
    assert [r["generation"] for r in history] == [0, 1, 2, 3, 4, 5]  # the default: 5 after generation 0
    assert merge.metrics["generations"] == 5
    assert history[0]["scored"] == 3 + 5  # every input and one seed merge per operator
    # The hand-off's metrics: held-out (plain and prefixed) and selection, never mixed.
    assert merge.metrics["exact_accuracy"] == merge.metrics["heldout/exact_accuracy"]
    assert {"selection/exact_accuracy", "selection/token_accuracy", "heldout/token_accuracy"} <= set(merge.metrics)
    # Elitism with the inputs in generation 0: at least as fit as every input on the selection split.
    best = merge.details["best"]
    for row in merge.details["inputs"]:
        assert (best["selection"]["exact_accuracy"], best["selection"]["token_accuracy"]) >= (
            row["selection"]["exact_accuracy"], row["selection"]["token_accuracy"])
    assert merge.details["splits"] == {"selection": 16, "heldout": 16, "eval": 32}
    # The Cognate models held no validation rows out: fitness was measured on training rows, and the
    # report says so (docs/cognate.md, "EvoMerge").
    assert merge.details["selection_from"] == "training"
    assert "which the inputs trained on" in merge.report_path.read_text()


def test_generations_budget_is_respected(tmp_path, host, inputs):
    result = _evomerge(host, tmp_path / "e", inputs, "generations=2")
    assert [r["generation"] for r in result.details["history"]] == [0, 1, 2]
    assert result.details["stop_reason"] == "generations"
    rows = [json.loads(line) for line in (tmp_path / "e" / "metrics.jsonl").read_text().splitlines()]
    assert [r["generation"] for r in rows] == [0, 1, 2] and all(r["kind"] == "generation" for r in rows)


def test_minutes_budget_stops_before_the_next_generation(tmp_path, host, inputs):
    result = _evomerge(host, tmp_path / "e", inputs, "generations=50", "minutes=0.00001")
    assert [r["generation"] for r in result.details["history"]] == [0]
    assert result.details["stop_reason"].startswith("minutes")
    assert "stopped: minutes" in (tmp_path / "e" / "report.md").read_text()


def test_report_shows_best_and_mean_per_generation(tmp_path, host, inputs):
    result = _evomerge(host, tmp_path / "e", inputs, "generations=3", "population=4", "elite=1")
    report = (tmp_path / "e" / "report.md").read_text()
    rows = re.findall(r"^\| (\d+) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+|n/a) \|", report, flags=re.M)
    history = result.details["history"]
    assert [int(r[0]) for r in rows] == [0, 1, 2, 3]
    for (_, best, mean, _), h in zip(rows, history):
        assert best == f"{h['best']:.3f}" and mean == f"{h['mean']:.3f}"
        assert h["best"] >= h["mean"]
    assert "## Hand-off" in report and "held-out split" in report
    assert (tmp_path / "e" / "fitness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result.report_path == (tmp_path / "e" / "report.md").resolve()


def test_bad_config_is_refused_naming_the_field(tmp_path, host, inputs):
    with pytest.raises(ConfigError, match="populaton: unknown key.*Did you mean 'population'"):
        _evomerge(host, tmp_path / "a", inputs, "populaton=4")
    with pytest.raises(ConfigError, match="elite=6 must be below population=6"):
        _evomerge(host, tmp_path / "b", inputs, "elite=6")
    with pytest.raises(ConfigError, match="operators"):
        _evomerge(host, tmp_path / "c", inputs, "operators=[linear, average]")
    with pytest.raises(ConfigError, match="evomerge.metric='accuracy' is not produced"):
        _evomerge(host, tmp_path / "d", inputs, "metric=accuracy")


def test_without_inputs_it_says_what_to_do(tmp_path, host):
    with pytest.raises(ConfigError, match="needs input models from an earlier phase.*evomerge.inputs"):
        Pipeline(["evomerge"], host=host).run(progress=False, out=tmp_path / "e")
    assert list(tmp_path.iterdir()) == []  # refused before any folder was made


def _copy_with(manifest, out, **changes):
    artifact, state = load_artifact(manifest)
    fields = artifact.model_dump(exclude={"weights", "sha256", "size_bytes", "field_sha256", "manifest_sha256"})
    fields.update(changes)
    write_artifact(out, fields, state)
    return str(out)


def test_inputs_of_another_task_are_refused(tmp_path, host, inputs):
    artifact, _ = load_artifact(inputs[1])
    task = artifact.task.model_copy(update={"info": {**artifact.task.info, "data_seed": 7}})
    other = _copy_with(inputs[1], tmp_path / "other.json", task=task, id="other-task")
    with pytest.raises(ConfigError, match=r"different tasks.*data_seed \(0 vs 7\)"):
        _evomerge(host, tmp_path / "e", [inputs[0], other])


def test_inputs_of_another_architecture_or_shape_are_refused(tmp_path, host, inputs):
    plain = [o for o in TINY if not o.startswith(("model.n=", "model.T=", "model.n_sup="))]
    transformer = _cognate(host, tmp_path / "t", variant="baseline", tiny=plain)
    with pytest.raises(ConfigError, match="different architectures.*'trm'.*'transformer'"):
        _evomerge(host, tmp_path / "e1", [inputs[0], *transformer])
    narrow = _cognate(host, tmp_path / "n", "model.d_model=16")
    with pytest.raises(ConfigError, match=r"different shapes .*only models of one shape.*d_model \(32 vs 16\)"):
        _evomerge(host, tmp_path / "e2", [inputs[0], *narrow])


def test_configs_that_keep_the_shapes_merge_but_not_by_frankenmerge(tmp_path, host, inputs):
    deeper = _cognate(host, tmp_path / "d", "model.n=2")  # more recursion, the same tensors
    with pytest.raises(ConfigError, match=r"operators=\['frankenmerge'\] needs inputs of one architecture config.*n \(1 vs 2\)"):
        _evomerge(host, tmp_path / "e1", [inputs[0], *deeper], "operators=[frankenmerge]")
    result = _evomerge(host, tmp_path / "e2", [inputs[0], *deeper], "generations=2")
    origins = [c["origin"] for r in result.details["history"] for c in r["candidates"]]
    assert not any(o.startswith("frankenmerge") for o in origins) and any(o.startswith("linear") for o in origins)
