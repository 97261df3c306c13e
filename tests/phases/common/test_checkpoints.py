"""The one checkpoint folder both phases use: whole folders, a pointer, pruning, damaged ones set aside."""

import json

import pytest
import torch

from agent_forge.checkpoint import load_train_state
from agent_forge.errors import ConfigError
from agent_forge.phases.common.checkpoints import CheckpointFolder, has_checkpoint


def _folder(tmp_path):
    return CheckpointFolder(tmp_path / "checkpoints", prefix="gen", digits=4, unit="generation")


def test_a_checkpoint_is_written_whole_pointed_at_and_the_oldest_pruned(tmp_path):
    store = _folder(tmp_path)
    assert store.numbered() == [] and store.newest() is None and not has_checkpoint(store.folder)
    assert store.saved_note() == "no checkpoint was saved"
    for n in range(4):
        store.write(n, {"n": n, "t": torch.full((2,), float(n))}, keep=2)
    names = sorted(p.name for p in store.folder.iterdir())
    assert names == ["gen-0002", "gen-0003", "latest.json"]  # no .tmp- folder left behind
    assert json.loads((store.folder / "latest.json").read_text()) == {"checkpoint": "gen-0003", "generation": 3}
    newest = store.newest()
    assert (newest.unit, newest.position, newest.folder.name) == ("generation", 3, "gen-0003")
    assert store.saved_note() == f"the newest checkpoint ({newest.folder}) is intact"
    assert has_checkpoint(store.folder)
    assert load_train_state(newest.folder)["t"].tolist() == [3.0, 3.0]
    # The same position again replaces the folder whole.
    store.write(3, {"n": 33}, keep=2)
    assert load_train_state(store.path(3))["n"] == 33


def test_numbers_sort_as_numbers_and_other_folders_do_not_count(tmp_path):
    store = _folder(tmp_path)
    for n in (9, 10):
        store.write(n, {"n": n}, keep=5)
    (store.folder / ".tmp-gen-0011").mkdir()  # half-written
    (store.folder / "gen-0012.corrupt").mkdir()  # set aside
    (store.folder / "step-00000099").mkdir()  # another phase's name
    assert [n for n, _ in store.numbered()] == [10, 9]


def test_a_damaged_checkpoint_is_set_aside_and_the_one_before_is_read(tmp_path):
    store = _folder(tmp_path)
    for n in (1, 2):
        store.write(n, {"n": n, "t": torch.ones(4)}, keep=5)
    tensors = store.path(2) / "state.safetensors"
    tensors.write_bytes(tensors.read_bytes()[:-8])  # truncated: its sha256 no longer matches

    class Log:
        events = []

        def warning(self, event, **fields):
            self.events.append((event, fields))

    log = Log()
    folder, state = store.read_newest_intact(load_train_state, log=log)
    assert folder == store.path(1) and state["n"] == 1
    assert (store.folder / "gen-0002.corrupt").is_dir() and not store.path(2).exists()
    assert log.events[0][0] == "checkpoint.corrupt" and log.events[0][1]["moved_to"].endswith("gen-0002.corrupt")


def test_an_error_that_is_not_damage_is_raised_not_set_aside(tmp_path):
    store = _folder(tmp_path)
    store.write(1, {"n": 1}, keep=5)

    def refuse(folder):
        raise ConfigError("--resume: written with a different config")

    with pytest.raises(ConfigError, match="different config"):
        store.read_newest_intact(refuse)
    assert store.path(1).is_dir()
    assert _folder(tmp_path / "empty").read_newest_intact(load_train_state) is None
