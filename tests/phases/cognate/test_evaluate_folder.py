"""``forge eval`` on a dataset folder in the official layout, the official metrics, and
``--save-predictions`` (shape, order, dtype, refusal of an existing file)."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from agent_forge.errors import ConfigError
from agent_forge.phases.cognate.evaluate import evaluate_artifact_on_file
from forge_testing import TINY, TINY_MODEL, official_sudoku4_folder


@pytest.fixture(scope="module")
def host():
    from agent_forge.plugin_host import load_plugins

    return load_plugins(entry_points=False)


@pytest.fixture(scope="module")
def folder_run(host, tmp_path_factory):
    """A tiny model trained on an official-layout folder whose given cells are not scored."""
    from agent_forge import run_phase

    root = tmp_path_factory.mktemp("folder")
    data = official_sudoku4_folder(root / "sx", train=48, test=16, ignore_givens=True)
    result = run_phase("cognate", host=host, variant="trm_tiny", task="official",
                       overrides=[*TINY_MODEL, f"task.path={data}"], max_steps=4, progress=False,
                       out=str(root / "run"))
    return data, result.artifacts[0].manifest_path


@pytest.fixture(scope="module")
def csv_run(host, tmp_path_factory):
    from agent_forge import run_phase
    from agent_forge.plugins.datasets.files import generate_file

    root = tmp_path_factory.mktemp("csv")
    result = run_phase("cognate", host=host, variant="trm_tiny", overrides=list(TINY), max_steps=2, progress=False,
                       out=str(root / "run"))
    data = generate_file(host, "sudoku4", 7, ["blanks=6"], root / "p.csv", seed=5)[0]
    return data, result.artifacts[0].manifest_path


def _reversed_copy(src, dst):
    """``src`` with the examples of its test split in reverse order (one example per puzzle)."""
    import shutil

    shutil.copytree(src, dst)
    for field in ("inputs", "labels"):
        path = dst / "test" / f"all__{field}.npy"
        np.save(path, np.load(path)[::-1].copy())
    return dst


def _official_by_hand(predictions: np.ndarray, labels: np.ndarray, ignore: int) -> tuple[float, float]:
    labelled = labels != ignore
    counts = labelled.sum(1)
    right = ((predictions == labels) & labelled).sum(1)
    keep = counts > 0
    return float((right[keep] / counts[keep]).mean()), float((right[keep] == counts[keep]).mean())


def test_eval_on_a_folder_through_the_cli(host, folder_run, tmp_path):
    from agent_forge.cli import build_app

    data, manifest = folder_run
    preds = tmp_path / "out" / "preds.npy"
    out = CliRunner().invoke(build_app(host), ["eval", str(manifest), "--data", str(data), "--json",
                                               "--save-predictions", str(preds)])
    assert out.exit_code == 0, out.output
    m = json.loads(out.stdout)
    assert m["split"] == "test" and m["examples"] == 16 and m["predictions"] == str(preds)
    assert m["n_sup"] == m["trained_n_sup"] == 3
    saved = np.load(preds, allow_pickle=False)
    assert saved.shape == (16, 16) and saved.dtype == np.uint8
    labels = np.load(data / "test" / "all__labels.npy")
    accuracy, exact = _official_by_hand(saved, labels, ignore=0)  # the metrics are those of the saved answers
    assert m["official_accuracy"] == pytest.approx(accuracy)
    assert m["official_exact_accuracy"] == pytest.approx(exact)
    assert m["exact_accuracy"] == pytest.approx(exact)  # every example has a labelled cell here
    train = CliRunner().invoke(build_app(host), ["eval", str(manifest), "--data", str(data), "--split", "train",
                                                 "--json"])
    assert train.exit_code == 0, train.output
    assert json.loads(train.stdout)["examples"] == 48 and json.loads(train.stdout)["split"] == "train"


def test_predictions_follow_the_datas_order(host, folder_run, tmp_path):
    data, manifest = folder_run
    flipped = _reversed_copy(data, tmp_path / "flipped")
    a = evaluate_artifact_on_file(host, manifest, data, batch_size=5, predictions_path=tmp_path / "a.npy")
    b = evaluate_artifact_on_file(host, manifest, flipped, batch_size=7, predictions_path=tmp_path / "b.npy")
    pa, pb = np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy")
    assert np.array_equal(pa[::-1], pb)
    assert len(np.unique(pa, axis=0)) > 1  # distinct answers, so the order is visible
    assert a["official_accuracy"] == pytest.approx(b["official_accuracy"])


def test_an_existing_predictions_file_is_kept_unless_overwrite(host, folder_run, tmp_path):
    data, manifest = folder_run
    target = tmp_path / "preds.npy"
    target.write_bytes(b"keep me")
    with pytest.raises(ConfigError, match="already exists; pass --overwrite"):
        evaluate_artifact_on_file(host, manifest, data, predictions_path=target)
    assert target.read_bytes() == b"keep me"
    evaluate_artifact_on_file(host, manifest, data, predictions_path=target, overwrite=True)
    assert np.load(target).shape == (16, 16)
    assert [p.name for p in tmp_path.iterdir()] == ["preds.npy"]  # no temporary file left behind


def test_save_predictions_of_a_csv(host, csv_run, tmp_path):
    data, manifest = csv_run
    m = evaluate_artifact_on_file(host, manifest, data, predictions_path=tmp_path / "p.npy")
    saved = np.load(tmp_path / "p.npy")
    assert saved.shape == (7, 16) and m["examples"] == 7
    assert saved.min() >= 0 and saved.max() <= 4
    # our sudoku4 targets score every cell: the official figures follow from the saved answers
    from agent_forge.plugins.datasets.csv_grids import read_grid_csv

    _, solutions = read_grid_csv(data)
    accuracy, exact = _official_by_hand(saved, solutions, ignore=-100)
    assert m["official_accuracy"] == pytest.approx(accuracy) and m["official_exact_accuracy"] == pytest.approx(exact)


def _write(root, *, vocab, seq, ids, table, encode=lambda p: p):
    from agent_forge.plugins.datasets.official_folder import OfficialMetadata, OfficialSet, write_split
    from agent_forge.plugins.datasets.sudoku import generate

    puzzles, solutions = generate(4, len(ids), (6, 8), 3, cache=False)
    inputs, labels = encode(puzzles)[:, :seq], encode(solutions)[:, :seq]
    meta = OfficialMetadata(pad_id=0, ignore_label_id=None, blank_identifier_id=0, vocab_size=vocab, seq_len=seq,
                            num_puzzle_identifiers=table, total_groups=len(ids), mean_puzzle_examples=1,
                            total_puzzles=len(ids), sets=["all"])
    index = np.arange(len(ids) + 1, dtype=np.int32)
    write_split(root, "test", meta, {"all": OfficialSet(inputs, labels, np.asarray(ids, np.int32), index, index)})
    return root


@pytest.mark.parametrize("which, folder, parts", [
    ("folder", dict(vocab=6, seq=9, ids=[0, 0], table=1, encode=lambda p: p + 1),
     ["seq_len is 9 in the data but 16 in the model"]),
    ("folder", dict(vocab=6, seq=16, ids=[0, 2], table=3, encode=lambda p: p + 1),
     ["puzzle identifiers go up to 2 but the model's puzzle table has 1 row(s)"]),
    ("csv", dict(vocab=5, seq=16, ids=[0, 3], table=4),  # our own sudoku4 encoding: fits, but names puzzles
     ["identifiers up to 3", "no puzzle table"]),
    ("csv", dict(vocab=6, seq=9, ids=[0], table=1, encode=lambda p: p + 1),
     ["vocab_size is 6 in the data but 5 in the model", "seq_len is 9 in the data but 16 in the model"]),
])
def test_a_folder_that_does_not_fit_the_model_is_one_error(host, folder_run, csv_run, tmp_path, which, folder, parts):
    manifest = (folder_run if which == "folder" else csv_run)[1]
    data = _write(tmp_path / "ds", **folder)
    with pytest.raises(ConfigError) as err:
        evaluate_artifact_on_file(host, manifest, data)
    message = str(err.value)
    assert message.startswith(f"--data {data} (split 'test') does not fit the model of {manifest}")
    for part in parts:
        assert part in message


def test_a_folder_in_our_encoding_evaluates_a_model_trained_on_csv(host, csv_run, tmp_path):
    data = _write(tmp_path / "ours", vocab=5, seq=16, ids=[0, 0, 0], table=1)
    m = evaluate_artifact_on_file(host, csv_run[1], data)
    assert m["examples"] == 3 and 0 <= m["official_accuracy"] <= 1
