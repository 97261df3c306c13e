import itertools
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_forge.plugins.datasets import sudoku_core as core
from agent_forge.plugins.datasets.sudoku import (Sudoku4Config, build_sudoku, generate,
                                                 make_augment)


@pytest.mark.parametrize("size,blanks,count", [(4, 10, 40), (6, 20, 40), (9, 45, 5)])
def test_generated_puzzles_have_exactly_one_solution(size, blanks, count):
    puzzles, solutions = generate(size, count, (blanks, blanks), seed=3, cache=False)
    assert puzzles.shape == (count, size * size)
    assert len({bytes(p) for p in puzzles}) == count  # distinct
    for p, s in zip(puzzles.tolist(), solutions.tolist()):
        assert p.count(0) == blanks
        assert core.is_valid_solution(s, size)
        assert all(x in (0, y) for x, y in zip(p, s))  # givens agree with the answer
        assert core.count_solutions(p, size, limit=2) == 1
        assert core.solve(p, size) == s


def test_blank_range_is_respected():
    puzzles, _ = generate(6, 60, (14, 22), seed=1, cache=False)
    counts = (puzzles == 0).sum(1)
    assert counts.min() >= 14 and counts.max() <= 22 and len(set(counts.tolist())) > 3


def test_generation_is_reproducible_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("FORGE_CACHE_DIR", str(tmp_path))
    a = generate(4, 20, (8, 8), seed=5)
    assert list(tmp_path.rglob("*.npz"))
    b = generate(4, 20, (8, 8), seed=5)
    c = generate(4, 20, (8, 8), seed=5, cache=False)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[0], c[0])
    assert not np.array_equal(a[0], generate(4, 20, (8, 8), seed=6, cache=False)[0])


def test_eval_split_never_repeats_a_training_puzzle():
    data = build_sudoku(Sudoku4Config(train_count=150, eval_count=60, cache=False), seed=0)
    train = {bytes(p) for p in data.train.inputs.to(torch.uint8).numpy()}
    assert not any(bytes(p) in train for p in data.eval.inputs.to(torch.uint8).numpy())


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), size=st.sampled_from([4, 6, 9]))
def test_augmentation_keeps_validity_and_alignment(seed, size):
    rng = random.Random(seed)
    blanks = {4: 8, 6: 16, 9: 30}[size]
    pairs = [core.make_puzzle(size, blanks, rng) for _ in range(4)]
    batch = {"inputs": torch.tensor([p for p, _ in pairs]), "targets": torch.tensor([s for _, s in pairs])}
    out = make_augment(size)(batch, torch.Generator().manual_seed(seed))
    for p, s in zip(out["inputs"].tolist(), out["targets"].tolist()):
        assert core.is_valid_solution(s, size)
        assert all(x in (0, y) for x, y in zip(p, s))
        assert p.count(0) == blanks
        assert core.count_solutions(p, size, limit=2) == 1


def _canonical(grid, size):
    """Smallest form of a grid under the shuffles a base-pattern generator applies (band/stack and
    row/column-within-band permutations, digit relabelling; no transposition)."""
    br, bc = core.box_shape(size)
    g = np.array(grid).reshape(size, size)

    def grouped(groups, per):
        for order in itertools.permutations(range(groups)):
            for inner in itertools.product(*[list(itertools.permutations(range(per)))] * groups):
                yield [order[i] * per + inner[i][j] for i in range(groups) for j in range(per)]

    best = None
    cols = list(grouped(size // bc, bc))
    for rows in grouped(size // br, br):
        for c in cols:
            h = g[np.ix_(rows, c)]
            relabel = {v: i + 1 for i, v in enumerate(h[0])}  # first row becomes 1..size
            key = bytes(relabel[v] for v in h.flatten())
            if best is None or key < best:
                best = key
    return best


def test_sampler_reaches_grids_no_single_pattern_shuffle_produces():
    """Statistic: the number of distinct equivalence classes (under the shuffles above) among
    sampled 4x4 grids. Shuffling one base pattern stays in one class; 4x4 grids form two such
    classes, so uniform-ish sampling must hit both."""
    rng = random.Random(0)
    classes = {_canonical(core.random_grid(4, rng), 4) for _ in range(200)}
    assert len(classes) >= 2
    # And the 6x6 sampler reaches more than one class within a few dozen grids.
    classes6 = {_canonical(core.random_grid(6, rng), 6) for _ in range(30)}
    assert len(classes6) >= 2


# -- the hard generator and the difficulty statistics ---------------------------------------
def test_hard_puzzles_are_unique_minimal_and_need_search():
    puzzles, solutions = generate(9, 4, (54, 64), seed=1, cache=False, hard=True)
    assert len({bytes(p) for p in puzzles}) == 4
    for p, s in zip(puzzles.tolist(), solutions.tolist()):
        assert 54 <= p.count(0) <= 64 and core.count_solutions(p, 9) == 1 and core.solve(p, 9) == s
        filled, complete = core.propagate_singles(p, 9)
        assert not complete  # singles alone get stuck: it needs search
        assert all(x in (0, y) for x, y in zip(filled, s))  # and they never place a wrong digit
        for i in (i for i, v in enumerate(p) if v):  # minimal: no given can go
            assert core.count_solutions(p[:i] + [0] + p[i + 1:], 9) >= 2
        stats = core.search_stats(p, 9)
        assert stats["solutions"] == 1 and stats["guesses"] >= 1 and stats["dead_ends"] >= 1


def test_singles_finish_easy_puzzles_and_search_stats_count_the_tree():
    puzzles, solutions = generate(9, 5, (30, 30), seed=2, cache=False)
    for p, s in zip(puzzles.tolist(), solutions.tolist()):
        assert core.propagate_singles(p, 9) == (s, True)
    assert core.search_stats(solutions[0].tolist(), 9) == {"nodes": 1, "guesses": 0, "dead_ends": 0, "solutions": 1}
    # An empty grid has many solutions: the walk stops at the second.
    grid = solutions[0].tolist()
    assert core.search_stats([0] * 81, 9)["solutions"] == 2
    assert core.search_stats([1, 1] + grid[2:], 9)["solutions"] == 0  # a repeated digit: no solution


def test_hard_task_registers_and_generates_with_a_stats_line(tmp_path, host):
    from agent_forge.plugins.datasets.files import file_stats, generate_file

    out, _ = generate_file(host, "sudoku9_hard", 3, [], tmp_path / "hard.csv", seed=0)
    stats = file_stats(host, "sudoku9_hard", out, [])
    assert stats["puzzles"] == 3 and stats["needs_search"] == 1.0 and stats["unique_solution"] == 1.0 and stats["duplicate_puzzles"] == 0
    assert stats["givens"]["max"] <= 27 and sum(stats["givens"]["histogram"].values()) == 3
    assert stats["dfs_nodes"]["min"] > 1 and "fewest candidates" in stats["solver"]
    easy, _ = generate_file(host, "sudoku9", 3, ["blanks=30"], tmp_path / "easy.csv", seed=0)
    easy_stats = file_stats(host, "sudoku", easy, [])
    assert easy_stats["needs_search"] == 0.0 and easy_stats["givens"]["min"] == 51


def test_stats_of_a_public_layout_file_read_its_rating_and_take_a_subset(tmp_path, host):
    """Sudoku-Extreme's columns: source,question,answer,rating; '.' blanks."""
    import csv

    from agent_forge.plugins.datasets.csv_grids import grid_text
    from agent_forge.plugins.datasets.files import file_stats

    puzzles, solutions = generate(9, 6, (40, 44), seed=4, cache=False)
    path = tmp_path / "extreme.csv"
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["source", "question", "answer", "rating"])
        for k, (p, s) in enumerate(zip(puzzles.tolist(), solutions.tolist())):
            w.writerow([f"src{k}", grid_text(p), grid_text(s), k])
    stats = file_stats(host, "sudoku", path, [])
    assert stats["puzzles"] == 6 and stats["rating"]["max"] == 5 and stats["rating"]["min"] == 0
    sub = file_stats(host, "sudoku", path, [], rows=3, seed=7)
    assert sub["puzzles"] == 3 and sub == file_stats(host, "sudoku", path, [], rows=3, seed=7) | {
        "stats_seconds": sub["stats_seconds"]}
    # The rating summary covers the same rows as the puzzles: the givens match those rows.
    from agent_forge.plugins.datasets.csv_grids import read_grid_csv

    chosen, _ = read_grid_csv(path, rows=3, seed=7)
    ratings = [k for k, p in enumerate(puzzles) if any((p == c).all() for c in chosen)]
    assert sub["rating"]["min"] == min(ratings) and sub["rating"]["max"] == max(ratings)


def test_train_rows_take_a_seeded_subset_of_the_file(tmp_path):
    from agent_forge.plugins.datasets.csv_grids import grid_text
    from agent_forge.plugins.datasets.grids import write_question_answer
    puzzles, solutions = generate(4, 30, (8, 8), seed=0, cache=False)
    path = write_question_answer(tmp_path / "p.csv", [grid_text(p) for p in puzzles.tolist()],
                                 [grid_text(s) for s in solutions.tolist()])
    cfg = Sudoku4Config(train_file=path, eval_file=path, train_rows=10, eval_rows=5)
    a, b = build_sudoku(cfg, seed=0), build_sudoku(cfg, seed=0)
    assert len(a.train) == 10 and len(a.eval) == 5 and torch.equal(a.train.inputs, b.train.inputs)
    rows = [bytes(p) for p in puzzles]
    picked = [rows.index(bytes(p)) for p in a.train.inputs.to(torch.uint8).numpy()]
    assert picked == sorted(picked)  # file order
    assert not torch.equal(build_sudoku(cfg, seed=1).train.inputs, a.train.inputs)
    with pytest.raises(ValueError, match="train_rows takes a subset of train_file's rows"):
        Sudoku4Config(train_rows=10)


def test_the_one_solver_counts_to_the_limit_and_no_further():
    # An empty 4x4 grid has 288 solutions: the count stops exactly at the limit asked for.
    assert [core.count_solutions([0] * 16, 4, limit=k) for k in (1, 2, 5)] == [1, 2, 5]
    stats = core.search_stats([0] * 16, 4)
    assert stats["solutions"] == 2 and stats["nodes"] >= 16  # one root-to-leaf path per solution, at least
    solution = core.solve([0] * 16, 4)
    assert solution is not None and core.is_valid_solution(solution, 4)
