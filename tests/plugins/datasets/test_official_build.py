"""``forge data build``: the official builders' folders from the public CSV layout.

Expectations are written out here from the official builders' documented encoding (not from
their code or files): Sudoku cells '.'/'0' -> 1, digit d -> d + 1, vocab 11; Maze '# SGo' ->
1..5, vocab 6; int32 index arrays, one example per puzzle, identifiers all 0, and dataset.json
as ``json.dump`` of the metadata model writes it.
"""

import csv
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets import sudoku_core
from agent_forge.plugins.datasets.official_build import build_folder
from agent_forge.plugins.datasets.official_folder import read_split

HEADER = ["source", "question", "answer", "rating"]


def _csv(path, rows, header=HEADER):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def _sudoku_rows(count, seed):
    from agent_forge.plugins.datasets.sudoku import generate

    puzzles, solutions = generate(9, count, (40, 46), seed, cache=False)
    rows = []
    for i, (p, s) in enumerate(zip(puzzles.tolist(), solutions.tolist())):
        blank = "." if i % 2 else "0"  # the public file uses '.', the official reader takes '0' too
        rows.append([f"src{i}", "".join(str(v) if v else blank for v in p), "".join(map(str, s)), str(i)])
    return rows


@pytest.fixture(scope="module")
def sudoku_src(tmp_path_factory):
    src = tmp_path_factory.mktemp("sx")
    _csv(src / "train.csv", _sudoku_rows(6, 0))
    _csv(src / "test.csv", _sudoku_rows(3, 1))
    return src


MAZE = {"#": 1, " ": 2, "S": 3, "G": 4, "o": 5}


@pytest.fixture(scope="module")
def maze_src(tmp_path_factory):
    from agent_forge.plugins.datasets.maze import MazeConfig, generate

    src = tmp_path_factory.mktemp("mz")
    chars = {1: "#", 2: " ", 3: "S", 4: "G", 5: "o"}  # ours -> the public Maze-Hard characters
    for split, seed in (("train", 0), ("test", 1)):
        q, a = generate(MazeConfig(size=9), 4, seed, cache=False)
        _csv(src / f"{split}.csv", [[f"m{i}", "".join(chars[v] for v in x), "".join(chars[v] for v in y), "0"]
                                    for i, (x, y) in enumerate(zip(q.tolist(), a.tolist()))])
    return src


def _metadata_text(vocab, seq_len, groups):
    return (f'{{"pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": {vocab}, "seq_len": '
            f'{seq_len}, "num_puzzle_identifiers": 1, "total_groups": {groups}, "mean_puzzle_examples": 1.0, '
            f'"total_puzzles": {groups}, "sets": ["all"]}}')


def _read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _arrays(folder, split):
    return {k: np.load(folder / split / f"all__{k}.npy", allow_pickle=False)
            for k in ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")}


def _expect_one_per_group(arrays, n):
    assert arrays["puzzle_identifiers"].dtype == np.int32 and arrays["puzzle_identifiers"].tolist() == [0] * n
    for key in ("puzzle_indices", "group_indices"):
        assert arrays[key].dtype == np.int32 and arrays[key].tolist() == list(range(n + 1))


def test_sudoku_without_augmentation_is_the_official_folder(sudoku_src, tmp_path):
    out = tmp_path / "sx"
    summary = build_folder("sudoku-extreme", sudoku_src, out, augmentations=0)
    assert summary["train"]["examples"] == 6 and summary["test"]["examples"] == 3
    for split, n in (("train", 6), ("test", 3)):
        rows = _read_csv(sudoku_src / f"{split}.csv")
        arrays = _arrays(out, split)
        want_in = np.array([[1 if c in ".0" else int(c) + 1 for c in r["question"]] for r in rows], np.uint8)
        want_lab = np.array([[int(c) + 1 for c in r["answer"]] for r in rows], np.uint8)
        assert arrays["inputs"].dtype == arrays["labels"].dtype == np.uint8
        assert np.array_equal(arrays["inputs"], want_in) and np.array_equal(arrays["labels"], want_lab)
        _expect_one_per_group(arrays, n)
        assert (out / split / "dataset.json").read_text() == _metadata_text(11, 81, n)
    assert (out / "identifiers.json").read_text() == '["<blank>"]'
    assert sorted(p.name for p in out.iterdir()) == ["identifiers.json", "test", "train"]
    assert not list(tmp_path.glob(".*"))  # no temporary folder left


def test_maze_is_the_official_folder_and_its_eight_transforms(maze_src, tmp_path):
    build_folder("maze-hard", maze_src, tmp_path / "plain")
    rows = _read_csv(maze_src / "train.csv")
    want_in = np.array([[MAZE[c] for c in r["question"]] for r in rows], np.uint8)
    want_lab = np.array([[MAZE[c] for c in r["answer"]] for r in rows], np.uint8)
    plain = _arrays(tmp_path / "plain", "train")
    assert np.array_equal(plain["inputs"], want_in) and np.array_equal(plain["labels"], want_lab)
    _expect_one_per_group(plain, 4)
    assert (tmp_path / "plain" / "train" / "dataset.json").read_text() == _metadata_text(6, 81, 4)

    build_folder("maze-hard", maze_src, tmp_path / "aug", augmentations=7)
    aug = _arrays(tmp_path / "aug", "train")
    assert aug["inputs"].shape == (32, 81) and aug["group_indices"].tolist() == [0, 8, 16, 24, 32]
    assert aug["puzzle_indices"].tolist() == list(range(33))
    # The official numbering: identity, 3 quarter turns, left-right, up-down, transpose, anti-diagonal.
    transforms = [lambda g: g, lambda g: np.rot90(g, 1), lambda g: np.rot90(g, 2), lambda g: np.rot90(g, 3),
                  np.fliplr, np.flipud, lambda g: g.T, lambda g: np.fliplr(np.rot90(g, 1))]
    for m in range(4):
        for k, t in enumerate(transforms):
            assert np.array_equal(aug["inputs"][m * 8 + k], t(want_in[m].reshape(9, 9)).reshape(81)), (m, k)
            assert np.array_equal(aug["labels"][m * 8 + k], t(want_lab[m].reshape(9, 9)).reshape(81)), (m, k)
    # the test split is never augmented
    assert _arrays(tmp_path / "aug", "test")["inputs"].shape == (4, 81)
    assert (tmp_path / "aug" / "train" / "dataset.json").read_text() == _metadata_text(6, 81, 4)


def test_every_sudoku_augmentation_is_a_valid_puzzle_of_its_solution(sudoku_src, tmp_path):
    build_folder("sudoku-extreme", sudoku_src, tmp_path / "a", augmentations=30, seed=4)
    arrays = _arrays(tmp_path / "a", "train")
    assert arrays["inputs"].shape == (6 * 31, 81) and arrays["group_indices"].tolist() == list(range(0, 187, 31))
    inputs, labels = arrays["inputs"].astype(int) - 1, arrays["labels"].astype(int) - 1  # back to digits, 0 blank
    seen = set()
    for i in range(len(inputs)):
        original = (i // 31) * 31
        puzzle, solution = inputs[i].tolist(), labels[i].tolist()
        assert sudoku_core.is_valid_solution(solution, 9), i
        assert all(p in (0, s) for p, s in zip(puzzle, solution)), i  # every given agrees with the solution
        assert puzzle.count(0) == inputs[original].tolist().count(0)  # blanks are moved, never added
        seen.add(bytes(inputs[i].astype(np.uint8)))
        if i % 31 == 5:  # a sample: still exactly one solution, and it is the label
            assert sudoku_core.count_solutions(puzzle, 9) == 1 and sudoku_core.solve(puzzle, 9) == solution
    assert len(seen) == len(inputs)  # 30 distinct versions of each puzzle
    # Deterministic given the seed; another seed gives other versions, the same originals.
    build_folder("sudoku-extreme", sudoku_src, tmp_path / "b", augmentations=30, seed=4)
    build_folder("sudoku-extreme", sudoku_src, tmp_path / "c", augmentations=30, seed=5)
    for split in ("train", "test"):
        for name in ("dataset.json", "all__inputs.npy", "all__labels.npy"):
            assert (tmp_path / "a" / split / name).read_bytes() == (tmp_path / "b" / split / name).read_bytes()
    other = _arrays(tmp_path / "c", "train")["inputs"]
    assert np.array_equal(other[::31], arrays["inputs"][::31]) and not np.array_equal(other, arrays["inputs"])


def test_each_part_of_the_sudoku_shuffle_is_used():
    """Over many draws: a puzzle whose givens are the first row ends up with its givens in one
    row (not transposed) or one column (transposed), each about half the time, on every one of
    the 9 lines; and digit relabelling sends the first cell to every digit."""
    from agent_forge.plugins.datasets.official_build import sudoku_shuffles

    solution = np.array([[(3 * (r % 3) + r // 3 + c) % 9 + 1 for c in range(9)] for r in range(9)]).reshape(81)
    assert sudoku_core.is_valid_solution(solution.tolist(), 9)
    puzzle = np.where(np.arange(81) < 9, solution, 0)
    n = 400
    q, a = sudoku_shuffles((np.repeat(puzzle[None], n, 0), np.repeat(solution[None], n, 0)),
                           np.random.default_rng(0))
    transposed, lines = 0, set()
    for given, sol in zip(q.reshape(n, 9, 9) > 0, a):
        assert sudoku_core.is_valid_solution(sol.tolist(), 9)
        rows, cols = np.nonzero(given)
        assert len(rows) == 9
        if len(set(rows.tolist())) == 1:
            lines.add(("row", int(rows[0])))
        else:
            assert len(set(cols.tolist())) == 1
            transposed += 1
            lines.add(("column", int(cols[0])))
    assert 140 < transposed < 260
    assert lines == {(kind, i) for kind in ("row", "column") for i in range(9)}
    assert set(a[:, 0].tolist()) == set(range(1, 10))


def test_subsample_keeps_that_many_rows_in_file_order(sudoku_src, tmp_path):
    build_folder("sudoku-extreme", sudoku_src, tmp_path / "s", augmentations=2, subsample=3, seed=1)
    arrays = _arrays(tmp_path / "s", "train")
    originals = arrays["inputs"][::3]
    rows = _read_csv(sudoku_src / "train.csv")
    encoded = [bytes(1 if c in ".0" else int(c) + 1 for c in r["question"]) for r in rows]
    positions = [encoded.index(bytes(o)) for o in originals]
    assert len(positions) == 3 and positions == sorted(positions)
    assert (tmp_path / "s" / "train" / "dataset.json").read_text() == _metadata_text(11, 81, 3)
    assert _arrays(tmp_path / "s", "test")["inputs"].shape == (3, 81)  # the test split is whole


def test_out_is_never_overwritten_silently(sudoku_src, tmp_path):
    out = tmp_path / "sx"
    build_folder("sudoku-extreme", sudoku_src, out, augmentations=0)
    before = (out / "train" / "all__inputs.npy").read_bytes()
    with pytest.raises(ConfigError, match="is not empty; pass --overwrite"):
        build_folder("sudoku-extreme", sudoku_src, out, augmentations=1)
    assert (out / "train" / "all__inputs.npy").read_bytes() == before
    build_folder("sudoku-extreme", sudoku_src, out, augmentations=1, overwrite=True)
    assert read_split(out, "train").metadata.total_groups == 6 and len(read_split(out, "train")) == 12
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sx"]  # the old folder is gone, no temporaries
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds files but no dataset"):
        build_folder("sudoku-extreme", sudoku_src, notes, augmentations=0, overwrite=True)
    assert (notes / "todo.txt").read_text() == "mine"


@pytest.mark.parametrize("name, rows, header, parts", [
    ("sudoku-extreme", [["s", "1" * 80, "1" * 81, "0"]], HEADER, ["row 2", "question has 80 cells; expected 81"]),
    ("sudoku-extreme", [["s", "1" * 81, "1" * 81, "0"], ["s", "x" + "1" * 80, "1" * 81, "0"]], HEADER,
     ["row 3", "question has the character 'x'"]),
    ("sudoku-extreme", [["s", "1" * 81, "." + "1" * 80, "0"]], HEADER, ["row 2", "answer has the character '.'"]),
    ("sudoku-extreme", [["s", "1" * 81, "1" * 81]], ["source", "puzzle", "answer"], ["lacks", "'question'"]),
    ("maze-hard", [["m", "#" * 15, "#" * 15, "0"]], HEADER, ["row 2", "15 cells, not a square grid"]),
    ("maze-hard", [["m", "#" * 16, "#" * 16, "0"], ["m", "#" * 9, "#" * 9, "0"]], HEADER,
     ["row 3", "9 cells; expected 16"]),
    ("maze-hard", [["m", "#" * 15 + ".", "#" * 16, "0"]], HEADER, ["row 2", "'.'"]),
    ("maze-hard", [["m", "#" * 15 + "é", "#" * 16, "0"]], HEADER, ["row 2", "'é'"]),
])
def test_a_bad_row_names_the_file_and_row(tmp_path, name, rows, header, parts):
    src = tmp_path / "src"
    _csv(src / "train.csv", rows, header)
    _csv(src / "test.csv", rows, header)
    with pytest.raises(ConfigError) as err:
        build_folder(name, src, tmp_path / "out", augmentations=0)
    assert str(src / "train.csv") in str(err.value)
    for part in parts:
        assert part in str(err.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


#: A 5x5 Maze-Hard question, its shortest path (S, one step, G) and a longer route (6 steps).
MAZE_ROWS = ("#####" "#S G#" "# # #" "#   #" "#####",
             "#####" "#SoG#" "# # #" "#   #" "#####",
             "#####" "#S G#" "#o#o#" "#ooo#" "#####")


def test_the_maze_check_is_no_stricter_than_the_official_one(tmp_path):
    """A row whose path is not a shortest one (our maze task refuses it) builds: the official
    builder checks only the characters and the lengths."""
    from agent_forge.plugins.datasets.maze import read_maze_csv

    q, a, roundabout = MAZE_ROWS
    src = tmp_path / "src"
    _csv(src / "train.csv", [["m", q, a, "0"], ["m", q, roundabout, "0"]])
    _csv(src / "test.csv", [["m", q, a, "0"]])
    with pytest.raises(ConfigError, match="row 3: the marked path .* is not a shortest path"):
        read_maze_csv(src / "train.csv", 5)
    build_folder("maze-hard", src, tmp_path / "out")
    assert read_split(tmp_path / "out", "train").sets["all"].inputs.shape == (2, 25)


def test_augmentation_bounds(sudoku_src, maze_src, tmp_path):
    with pytest.raises(ConfigError, match="--augmentations 8: maze-hard takes 0 to 7"):
        build_folder("maze-hard", maze_src, tmp_path / "x", augmentations=8)
    with pytest.raises(ConfigError, match="did you mean 'maze-hard'"):
        build_folder("maze_hard", maze_src, tmp_path / "x")
    with pytest.raises(ConfigError, match="has no test.csv"):
        (tmp_path / "half").mkdir()
        (tmp_path / "half" / "train.csv").write_text("question,answer\n")
        build_folder("maze-hard", tmp_path / "half", tmp_path / "x")


def test_the_build_command_prints_json_and_trains(sudoku_src, tmp_path):
    """The command line end to end, and the folder it writes is one the official task reads."""
    from agent_forge.cli import build_app
    from agent_forge.plugin_host import load_plugins
    from agent_forge.plugins.datasets.official import OfficialConfig, build_official

    result = CliRunner().invoke(build_app(load_plugins(entry_points=False)),
                                ["data", "build", "sudoku-extreme", str(sudoku_src), str(tmp_path / "sx"),
                                 "--augmentations", "3", "--seed", "2"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["train"] == {"rows": 6, "examples": 24, "seq_len": 81, "vocab_size": 11}
    assert summary["augmentations"] == 3 and summary["seed"] == 2
    task = build_official(OfficialConfig(path=tmp_path / "sx"), seed=0)
    assert len(task.train) == 24 and len(task.eval) == 3 and task.spec.vocab_size == 11
    assert task.info["total_groups"] == 6 and task.info["mean_puzzle_examples"] == 1.0
