"""The official dataset folder layout: a round trip, and every broken folder refused with one
error that names the file (never unpickled)."""

import json

import numpy as np
import pytest

from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets.official_folder import (OfficialMetadata, OfficialSet, is_official_folder,
                                                          read_split, write_split)

META = dict(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=6, seq_len=4, num_puzzle_identifiers=3,
            total_groups=2, mean_puzzle_examples=1.5, total_puzzles=3, sets=["all"])


def _set() -> OfficialSet:
    # Puzzles: p0 = examples 0-1 (identifier 1), p1 = example 2 (2), p2 = examples 3-4 (0);
    # groups: g0 = p0 and p1, g1 = p2.
    return OfficialSet(inputs=np.array([[1, 2, 3, 4], [2, 2, 2, 2], [5, 5, 1, 1], [1, 1, 1, 1], [3, 3, 3, 3]],
                                       np.uint8),
                       labels=np.array([[0, 2, 3, 4], [2, 2, 2, 2], [5, 5, 1, 1], [1, 1, 1, 1], [3, 3, 3, 0]],
                                       np.uint8),
                       puzzle_identifiers=np.array([1, 2, 0], np.int32),
                       puzzle_indices=np.array([0, 2, 3, 5], np.int32), group_indices=np.array([0, 2, 3], np.int32))


@pytest.fixture
def folder(tmp_path):
    write_split(tmp_path / "ds", "test", OfficialMetadata(**META), {"all": _set()})
    return tmp_path / "ds"


def test_round_trip_keeps_values_and_dtypes(folder):
    split = read_split(folder, "test")
    assert split.metadata == OfficialMetadata(**META) and len(split) == 5
    for field in ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices"):
        got, want = getattr(split.sets["all"], field), getattr(_set(), field)
        assert got.dtype == want.dtype and np.array_equal(got, want), field
    assert split.sets["all"].example_puzzle_identifiers().tolist() == [1, 1, 2, 0, 0]
    # dataset.json holds exactly the fields, in the official order
    assert list(json.loads((folder / "test" / "dataset.json").read_text())) == list(META)
    assert is_official_folder(folder) and is_official_folder(folder / "test") and not is_official_folder(folder.parent)
    assert read_split(folder / "test", "test").metadata == split.metadata  # a split folder itself
    assert not list(folder.rglob("*.tmp"))


def _json(folder, text):
    (folder / "test" / "dataset.json").write_text(text)


def _npy(folder, field, array, name="all"):
    np.save(folder / "test" / f"{name}__{field}.npy", array, allow_pickle=True)


BROKEN = [
    ("bad-json", lambda f: _json(f, '{"pad_id": 0,'), "dataset.json", ["not readable JSON"]),
    ("not-an-object", lambda f: _json(f, "[1, 2]"), "dataset.json", ["JSON object"]),
    ("missing-field", lambda f: _json(f, json.dumps({k: v for k, v in META.items() if k != "seq_len"})),
     "dataset.json", ["missing field 'seq_len'"]),
    ("unknown-field", lambda f: _json(f, json.dumps({**META, "seqlen": 4})), "dataset.json",
     ["unknown field 'seqlen'", "seq_len"]),
    ("wrong-type", lambda f: _json(f, json.dumps({**META, "vocab_size": "six"})), "dataset.json",
     ["'vocab_size'", "'six'"]),
    ("zero-vocab", lambda f: _json(f, json.dumps({**META, "vocab_size": 0})), "dataset.json", ["vocab_size=0"]),
    ("no-sets", lambda f: _json(f, json.dumps({**META, "sets": []})), "dataset.json", ["sets is empty"]),
    ("missing-array", lambda f: (f / "test" / "all__labels.npy").unlink(), "all__labels.npy", ["not found"]),
    ("missing-set", lambda f: _json(f, json.dumps({**META, "sets": ["all", "extra"]})), "extra__inputs.npy",
     ["not found"]),
    ("pickled-objects", lambda f: _npy(f, "inputs", np.array([{"a": 1}, None], dtype=object)), "all__inputs.npy",
     ["never unpickled"]),
    ("float-array", lambda f: _npy(f, "labels", np.zeros((5, 4), np.float32)), "all__labels.npy",
     ["integer array"]),
    ("not-npy", lambda f: (f / "test" / "all__inputs.npy").write_bytes(b"hello"), "all__inputs.npy",
     ["not a .npy file"]),
    ("labels-length", lambda f: _npy(f, "labels", np.zeros((4, 4), np.uint8)), "all__labels.npy",
     ["(4, 4)", "(5, 4)"]),
    ("seq-len", lambda f: _json(f, json.dumps({**META, "seq_len": 5})), "all__inputs.npy", ["seq_len=5"]),
    ("puzzle-indices-length", lambda f: _npy(f, "puzzle_indices", np.array([0, 2, 5], np.int32)),
     "all__puzzle_indices.npy", ["one more than the 3 puzzle identifiers"]),
    ("puzzle-indices-end", lambda f: _npy(f, "puzzle_indices", np.array([0, 2, 3, 4], np.int32)),
     "all__puzzle_indices.npy", ["0 to the 5 examples"]),
    ("group-indices-end", lambda f: _npy(f, "group_indices", np.array([0, 2], np.int32)),
     "all__group_indices.npy", ["0 to the 3 puzzles"]),
    ("identifier-out-of-table", lambda f: _npy(f, "puzzle_identifiers", np.array([1, 3, 0], np.int32)),
     "all__puzzle_identifiers.npy", ["outside 0..2"]),
    ("token-out-of-vocab", lambda f: _npy(f, "inputs", np.full((5, 4), 6, np.uint8)), "all__inputs.npy",
     ["outside 0..5"]),
]


@pytest.mark.parametrize("case, breaks, file, parts", BROKEN, ids=[c[0] for c in BROKEN])
def test_a_broken_folder_is_one_error_naming_the_file(folder, case, breaks, file, parts):
    breaks(folder)
    with pytest.raises(ConfigError) as err:
        read_split(folder, "test")
    message = str(err.value)
    assert str(folder / "test" / file) in message, message
    assert "\n" not in message
    for part in parts:
        assert part in message, message


def test_a_missing_split_names_the_splits_there(folder, tmp_path):
    with pytest.raises(ConfigError, match=r"train/dataset.json: not found.*the split\(s\) test"):
        read_split(folder, "train")
    with pytest.raises(ConfigError, match="is the 'test' split folder itself"):
        read_split(folder / "test", "train")
    with pytest.raises(ConfigError, match="no such folder"):
        read_split(tmp_path / "nowhere", "test")


def test_written_arrays_follow_the_umask(tmp_path):
    """A dataset folder is made to be shared: its files get 0666 less the umask, not mkstemp's 0600."""
    import os

    import numpy as np

    from agent_forge.plugins.datasets.official_folder import OfficialMetadata, OfficialSet, write_split

    meta = OfficialMetadata(pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=5, seq_len=2,
                            num_puzzle_identifiers=1, total_groups=1, mean_puzzle_examples=1.0, total_puzzles=1,
                            sets=["all"])
    s = OfficialSet(np.ones((1, 2), np.uint8), np.ones((1, 2), np.uint8), np.zeros(1, np.int32),
                    np.array([0, 1], np.int32), np.array([0, 1], np.int32))
    old = os.umask(0o022)
    try:
        folder = write_split(tmp_path, "test", meta, {"all": s})
    finally:
        os.umask(old)
    for path in folder.iterdir():
        assert path.stat().st_mode & 0o777 == 0o644, path
