import random
from collections import deque

import numpy as np
import pytest
import torch

from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets import maze_core as core
from agent_forge.plugins.datasets.grids import write_question_answer
from agent_forge.plugins.datasets.maze import MazeConfig, build_maze, generate, make_augment, read_maze_csv


def bfs_all_shortest(grid, side, start, goal):
    """Independent check: every shortest path, by brute-force enumeration over the BFS layers."""
    dist = {start: 0}
    queue = deque([start])
    while queue:
        i = queue.popleft()
        r, c = divmod(i, side)
        for rr, cc in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            j = rr * side + cc
            if 0 <= rr < side and 0 <= cc < side and grid[j] != core.WALL and j not in dist:
                dist[j] = dist[i] + 1
                queue.append(j)
    paths = [[goal]]
    for _ in range(dist[goal]):
        paths = [p + [j] for p in paths for j in dist
                 if dist[j] == dist[p[-1]] - 1 and abs(j // side - p[-1] // side) + abs(j % side - p[-1] % side) == 1]
    return dist[goal], paths


@pytest.mark.parametrize("size,loops", [(7, 0.0), (11, 0.1), (12, 0.3)])
def test_targets_are_the_unique_shortest_path(size, loops):
    cfg = MazeConfig(size=size, loops=loops)
    questions, answers = generate(cfg, 30, seed=2, cache=False)
    assert len({bytes(q) for q in questions}) == 30
    for q, a in zip(questions.tolist(), answers.tolist()):
        start, goal = q.index(core.START), q.index(core.GOAL)
        length, paths = bfs_all_shortest(q, size, start, goal)
        assert length >= cfg.min_path
        assert len(paths) == 1  # unique: the target is well defined
        marked = {i for i, v in enumerate(a) if v == core.PATH}
        assert marked == set(paths[0][1:-1])
        assert core.check_answer(q, a, size) is None


def test_loops_make_alternative_routes():
    grid = core.carve(15, random.Random(0), loops=0.0)
    looped = core.carve(15, random.Random(0), loops=0.3)
    # A perfect maze on a k x k lattice has k*k - 1 passages; loops add more open cells.
    assert sum(v == core.OPEN for v in looped) > sum(v == core.OPEN for v in grid)


def test_check_answer_rejects_a_longer_or_broken_path():
    q, a = core.make_maze(9, 9, 0.0, random.Random(1))
    broken = list(a)
    broken[a.index(core.PATH)] = core.OPEN
    assert "not a shortest path" in core.check_answer(q, broken, 9)
    extra = list(a)
    extra[next(i for i, v in enumerate(q) if v == core.OPEN and a[i] == core.OPEN)] = core.PATH
    assert "not a shortest path" in core.check_answer(q, extra, 9)


@pytest.mark.parametrize("seed", range(3))
def test_augmentation_keeps_shortest_paths_and_alignment(seed):
    size = 9
    q, a = generate(MazeConfig(size=size), 16, seed=seed, cache=False)
    batch = {"inputs": torch.from_numpy(q.astype(np.int64)), "targets": torch.from_numpy(a.astype(np.int64))}
    out = make_augment(size)(batch, torch.Generator().manual_seed(seed))
    assert not torch.equal(out["inputs"], batch["inputs"])
    for qi, ai in zip(out["inputs"].tolist(), out["targets"].tolist()):
        assert core.check_answer(qi, ai, size) is None


def test_csv_round_trip_and_row_numbered_errors(tmp_path):
    cfg = MazeConfig(size=7)
    q, a = generate(cfg, 5, seed=0, cache=False)
    good = [core.to_text(r) for r in q.tolist()], [core.to_text(r) for r in a.tolist()]
    path = write_question_answer(tmp_path / "m.csv", *good)
    rq, ra = read_maze_csv(path, 7)
    assert np.array_equal(rq, q) and np.array_equal(ra, a)

    bad_char = (good[0][:2] + [good[0][2].replace(".", "x", 1)], good[1][:3])
    with pytest.raises(ConfigError, match=r"row 4 \(question\): 'x'"):
        read_maze_csv(write_question_answer(tmp_path / "b1.csv", *bad_char), 7)
    wrong_path = (good[0][:2], [good[1][0], good[1][1].replace("*", ".", 1)])
    with pytest.raises(ConfigError, match="row 3: the marked path"):
        read_maze_csv(write_question_answer(tmp_path / "b2.csv", *wrong_path), 7)
    with pytest.raises(ConfigError, match="row 2: a 7x7 maze, but this task is 9x9"):
        read_maze_csv(path, 9)


def test_eval_split_is_disjoint_from_train():
    data = build_maze(MazeConfig(size=7, train_count=100, eval_count=30, cache=False), seed=0)
    train = {bytes(r) for r in data.train.inputs.numpy().astype(np.uint8)}
    assert not train & {bytes(r) for r in data.eval.inputs.numpy().astype(np.uint8)}
    assert data.spec.vocab_size == 6 and data.spec.seq_len == 49


def test_impossible_path_length_is_a_config_error():
    with pytest.raises(ValueError, match="min_path_length 100 cannot fit"):
        MazeConfig(size=7, min_path_length=100)


def test_cognate_trains_and_evaluates_on_maze(tmp_path, host, tiny):
    from agent_forge import run_phase

    overrides = [o for o in tiny if not o.startswith("task.")] + [
        "task.name=maze", "task.size=7", "task.train_count=64", "task.eval_count=16"]
    result = run_phase("cognate", host=host, variant="trm_tiny", overrides=overrides, max_steps=4,
                       progress=False, out=tmp_path / "r")
    assert result.status == "completed"
    metrics = result.artifacts[0].artifact.metrics
    assert 0.0 <= metrics["token_accuracy"] <= 1.0 and "exact_accuracy" in metrics


def _maze_hard_text(tokens):
    return "".join(core.MAZE_HARD_CHARS[t] for t in tokens)


def test_maze_hard_csv_is_read_with_its_own_characters(tmp_path):
    """The public layout: header source,question,answer,rating; ' ' open, 'o' path, 30x30 (here 8x8)."""
    import csv

    cfg = MazeConfig(size=8)
    q, a = generate(cfg, 4, seed=3, cache=False)
    path = tmp_path / "maze-hard.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "question", "answer", "rating"])
        for qi, ai in zip(q.tolist(), a.tolist()):
            w.writerow(["gen", _maze_hard_text(qi), _maze_hard_text(ai), 7])
    rq, ra = read_maze_csv(path, 8)
    assert np.array_equal(rq, q) and np.array_equal(ra, a)
    # A leading or trailing open cell is a space: it is a cell, not stripped away.
    edges = write_question_answer(tmp_path / "edges.csv", ["  S G" + "#####" * 3 + "#### "],
                                  ["  SoG" + "#####" * 3 + "#### "])
    eq, ea = read_maze_csv(edges, 5)
    assert eq[0, 0] == core.OPEN and eq[0, -1] == core.OPEN and ea[0, 3] == core.PATH
    qt, at = _maze_hard_text(q[0].tolist()), _maze_hard_text(a[0].tolist())
    data = build_maze(MazeConfig(size=8, train_file=path, eval_file=path), seed=0)
    assert len(data.train) == 4 and torch.equal(data.eval.targets, torch.from_numpy(a.astype(np.int64)))
    sub = build_maze(MazeConfig(size=8, train_file=path, eval_file=path, train_rows=2, eval_rows=3), seed=0)
    assert len(sub.train) == 2 and len(sub.eval) == 3
    rows = {bytes(r) for r in q.astype(np.uint8)}
    assert {bytes(r) for r in sub.train.inputs.numpy().astype(np.uint8)} <= rows

    # Errors name the row and the reason, in the file's own characters.
    not_shortest = at.replace("o", " ", 1)
    with pytest.raises(ConfigError, match=r"row 3: the marked path .* is not a shortest path"):
        read_maze_csv(write_question_answer(tmp_path / "b1.csv", [qt, qt], [at, not_shortest]), 8)
    assert qt[8] == "#"  # generated mazes have a wall border
    with pytest.raises(ConfigError, match=r"row 2: cell at row 2, column 1 is '#' in the question but 'o'"
                                          r" in the answer \(only ' ' may become 'o'\)"):
        read_maze_csv(write_question_answer(tmp_path / "b2.csv", [qt], [at[:8] + "o" + at[9:]]), 8)
    ours = core.to_text(q[1].tolist()), core.to_text(a[1].tolist())
    with pytest.raises(ConfigError, match=r"row 3: uses the characters of ours .* but the rows before use Maze-Hard"):
        read_maze_csv(write_question_answer(tmp_path / "b3.csv", [qt, ours[0]], [at, ours[1]]), 8)
    with pytest.raises(ConfigError, match=r"row 2: mixes the characters"):
        read_maze_csv(write_question_answer(tmp_path / "b4.csv", [qt.replace(" ", ".", 1)], [at]), 8)
    with pytest.raises(ConfigError, match=r"row 2 \(answer\): 'x' is not one of"):
        read_maze_csv(write_question_answer(tmp_path / "b5.csv", [qt], [at.replace("#", "x", 1)]), 8)


def test_stats_report_the_rows_our_reader_refuses(tmp_path):
    """A public file may mark a path that is not a shortest one: stats count and name such rows
    (the official builder keeps them) and describe the others."""
    import csv

    from agent_forge.plugin_host import load_plugins
    from agent_forge.plugins.datasets.files import file_stats

    q = "#####" "#S G#" "# # #" "#   #" "#####"
    shortest = "#####" "#SoG#" "# # #" "#   #" "#####"
    roundabout = "#####" "#S G#" "#o#o#" "#ooo#" "#####"
    path = tmp_path / "maze.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "question", "answer", "rating"])
        w.writerows([["a", q, shortest, 0], ["b", q, roundabout, 0], ["c", q, shortest, 0], ["d", q, q, 0]])
    stats = file_stats(load_plugins(entry_points=False), "maze", path, [])
    assert stats["mazes"] == 2 and stats["path_length"]["max"] == 2.0
    refused = stats["refused_rows"]
    assert refused["rows"] == 2 and refused["share"] == 0.5
    assert refused["first"][0].startswith(f"{path}: row 3: the marked path (5 cells) is not a shortest path (1 cells")
    assert refused["first"][1].startswith(f"{path}: row 5: ")
