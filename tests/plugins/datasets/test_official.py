"""Task ``official``: a folder in the official layout read as it is (ids, pads and identifiers
unchanged), ignore labels scored as ``ignore_index``, ``puzzle_ids`` in every batch."""

import numpy as np
import pytest
import torch

from agent_forge.config import validate
from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets.official import OfficialConfig, build_official
from agent_forge.plugins.datasets.official_folder import OfficialMetadata, OfficialSet, write_split
from agent_forge.specs import DatasetSpec

META = dict(pad_id=0, ignore_label_id=1, blank_identifier_id=0, vocab_size=7, seq_len=3, num_puzzle_identifiers=4,
            total_groups=2, mean_puzzle_examples=1.5, total_puzzles=2, sets=["second", "first"])


def _set(rows: list[list[int]], labels: list[list[int]], identifiers: list[int], puzzles: list[int]) -> OfficialSet:
    return OfficialSet(np.array(rows, np.uint8), np.array(labels, np.uint8), np.array(identifiers, np.int32),
                       np.array(puzzles, np.int32), np.array([0, len(identifiers)], np.int32))


def _folder(root, *, test_meta: dict | None = None):
    # "second" is listed first in metadata.sets, so its examples come first.
    second = _set([[2, 3, 4], [5, 6, 0]], [[1, 3, 4], [5, 6, 2]], [3], [0, 2])
    first = _set([[4, 4, 4]], [[1, 1, 1]], [2], [0, 1])
    write_split(root, "train", OfficialMetadata(**META), {"second": second, "first": first})
    only = _set([[6, 5, 4]], [[6, 1, 4]], [1], [0, 1])
    write_split(root, "test", OfficialMetadata(**{**META, "total_groups": 1, "sets": ["all"], **(test_meta or {})}),
                {"all": only})
    return root


def test_batches_keep_the_folders_ids_and_carry_puzzle_ids(tmp_path):
    task = build_official(OfficialConfig(path=_folder(tmp_path)), seed=0)
    batch = task.train.batch(torch.arange(3))
    assert batch["inputs"].tolist() == [[2, 3, 4], [5, 6, 0], [4, 4, 4]]  # no re-encoding; sets in metadata order
    assert batch["targets"].tolist() == [[-100, 3, 4], [5, 6, 2], [-100, -100, -100]]  # ignore_label_id 1 -> -100
    assert batch["puzzle_ids"].tolist() == [3, 3, 2]  # each example gets its puzzle's identifier
    assert batch["inputs"].dtype == batch["targets"].dtype == torch.int64
    assert task.train.inputs.dtype == torch.uint8  # stored as the folder stores it
    assert task.eval.batch(torch.arange(1))["targets"].tolist() == [[6, -100, 4]]  # eval = the test split
    assert task.eval.extras["puzzle_ids"].tolist() == [1]
    spec = task.spec
    assert (spec.vocab_size, spec.seq_len, spec.ignore_index, spec.causal) == (7, 3, -100, False)
    # the step budget's inputs come from the train split (the test split says total_groups=1)
    for info in (spec.info, task.info):
        assert info["num_puzzle_ids"] == 4 and info["total_groups"] == 2 and info["mean_puzzle_examples"] == 1.5
    assert task.augment is None


def test_one_split_for_both_is_read_once(tmp_path):
    task = build_official(OfficialConfig(path=_folder(tmp_path), train_split="test", eval_split="test"), seed=0)
    assert task.train is task.eval and len(task.eval) == 1


@pytest.mark.parametrize("change, parts", [
    ({"vocab_size": 8}, ["test/dataset.json: vocab_size=8", "train/dataset.json says vocab_size=7"]),
    ({"seq_len": 4}, ["seq_len"]),
])
def test_splits_that_one_model_cannot_read_are_refused(tmp_path, change, parts):
    root = _folder(tmp_path)
    if "seq_len" in change:  # the arrays must match their own dataset.json to get this far
        write_split(root, "test", OfficialMetadata(**{**META, "sets": ["all"], **change}),
                    {"all": _set([[6, 5, 4, 4]], [[6, 1, 4, 4]], [1], [0, 1])})
    else:
        _folder(root, test_meta=change)
    with pytest.raises(ConfigError) as err:
        build_official(OfficialConfig(path=root), seed=0)
    for part in parts:
        assert part in str(err.value)


def test_an_eval_identifier_beyond_the_train_table_is_refused(tmp_path):
    root = _folder(tmp_path)
    write_split(root, "test", OfficialMetadata(**{**META, "num_puzzle_identifiers": 9, "sets": ["all"]}),
                {"all": _set([[6, 5, 4]], [[6, 1, 4]], [7], [0, 1])})
    with pytest.raises(ConfigError, match="puzzle identifier 7 has no row in the model's puzzle table of 4"):
        build_official(OfficialConfig(path=root), seed=0)


def test_the_config_is_strict_and_registered():
    from agent_forge.plugin_host import load_plugins

    reg = load_plugins(entry_points=False).get(DatasetSpec, "official")
    assert reg.config is OfficialConfig
    with pytest.raises(ConfigError, match="task.paht"):
        validate(OfficialConfig, {"path": "x", "paht": "y"}, "task")
    with pytest.raises(ConfigError, match="task.path"):
        validate(OfficialConfig, {}, "task")
    with pytest.raises(ConfigError, match="task.eval_split"):
        validate(OfficialConfig, {"path": "x", "eval_split": "val"}, "task")


def test_training_on_a_folder_feeds_the_puzzle_table(tmp_path):
    """Only the identifiers the training examples carry get their table row trained."""
    from agent_forge import run_phase
    from agent_forge.artifacts import load_artifact
    from agent_forge.plugin_host import load_plugins
    from forge_testing import TINY_MODEL, official_sudoku4_folder

    root = official_sudoku4_folder(tmp_path / "sx", train=32, test=8)
    ids = np.where(np.arange(32) % 2 == 0, 1, 2).astype(np.int32)  # puzzles use rows 1 and 2 of a 4-row table
    np.save(root / "train" / "all__puzzle_identifiers.npy", ids)
    meta = (root / "train" / "dataset.json").read_text().replace('"num_puzzle_identifiers": 1',
                                                                 '"num_puzzle_identifiers": 4')
    (root / "train" / "dataset.json").write_text(meta)
    result = run_phase("cognate", host=load_plugins(entry_points=False), variant="trm_tiny", task="official",
                       overrides=[*TINY_MODEL, f"task.path={root}", "callbacks.ema=null"], max_steps=3,
                       progress=False, out=str(tmp_path / "run"))
    artifact, state = load_artifact(result.artifacts[0].manifest_path)
    assert artifact.task.info["num_puzzle_ids"] == 4 and artifact.task.info["total_groups"] == 32
    tables = [v for k, v in state.items() if "puzzle" in k and v.dim() == 2 and v.shape[0] == 4]
    assert len(tables) == 1, list(state)
    table = tables[0]
    used = table.abs().sum(1) > 0
    assert used.tolist() == [False, True, True, False]
