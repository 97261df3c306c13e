"""ARC-AGI scored as the paper scores it: votes over every augmented version of a test input,
pass@k per puzzle and overall, and the ARC Prize ``submission.json``.

On a dataset folder that ``forge data build arc`` (or the official builder) wrote, with its
``identifiers.json`` (the name, hence the augmentation, of every puzzle identifier) and
``test_puzzles.json`` (the test set's puzzles with their solutions). For every example of the
``test/`` split the model's answer after the last supervision step is read as a grid
(:func:`~agent_forge.plugins.datasets.arc_format.crop`), mapped back by its version's inverse
transform and inverse colour map, and counted as one vote for that grid under the original
puzzle and test input (the input is mapped back the same way to say which test input it is).
Candidates are ranked by votes; equal votes by the mean of sigmoid(q_halt) over the versions
that voted for them (the official evaluator's tie-break; still equal: the first seen). A test
input scores at pass@k when its solution is among the top k; a puzzle's score is the share of
its test inputs that score, the overall score the mean over puzzles. The top two are the
submission's ``attempt_1`` and ``attempt_2`` (the first repeated when there is one candidate).

Registered as the evaluator ``arc_protocol`` (``forge eval ARTIFACT --data FOLDER --protocol arc``);
:func:`vote` is the protocol on plain arrays.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from agent_forge import hookimpl
from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets.arc_format import crop, grid_key, parse_name, restore_grid
from agent_forge.specs import EvaluatorSpec

#: The k of pass@k reported (the official evaluator's).
PASS_KS = (1, 2, 5, 10, 100, 1000)
#: Attempts per test input in a submission (the ARC Prize's rule).
ATTEMPTS = 2
#: An attempt for a test input without any prediction, or whose top grid is empty.
FILLER = [[0]]


@dataclass
class Candidate:
    grid: np.ndarray
    votes: int = 0
    q_sum: float = 0.0

    @property
    def mean_q(self) -> float:
        return self.q_sum / self.votes


@dataclass
class VoteResult:
    """Scores per puzzle and overall, and the submission (every test input, two attempts)."""

    metrics: dict[str, float]
    per_puzzle: dict[str, dict[str, Any]]
    submission: dict[str, list[dict[str, list[list[int]]]]]
    #: Test inputs that received no prediction at all.
    unanswered: list[str] = field(default_factory=list)


def _sigmoid(logit: float) -> float:
    if math.isnan(logit):  # a model without a halting head: no tie-break preference
        return 0.5
    return 1.0 / (1.0 + math.exp(-logit)) if logit >= 0 else math.exp(logit) / (1.0 + math.exp(logit))


def ranked(candidates: dict[bytes, Candidate]) -> list[Candidate]:
    """By votes, then mean sigmoid(q_halt), both descending; the first seen first among equals."""
    return sorted(candidates.values(), key=lambda c: (c.votes, c.mean_q), reverse=True)


def vote(names: list[str], puzzle_ids: np.ndarray, inputs: np.ndarray, predictions: np.ndarray,
         q_halt: np.ndarray, test_puzzles: dict[str, Any], *, blank_id: int = 0,
         unsolved: set[str] | frozenset[str] = frozenset(), ks: tuple[int, ...] = PASS_KS) -> VoteResult:
    """The protocol (module docstring) on arrays: ``names`` is ``identifiers.json``; per example
    its puzzle identifier, its 900 input tokens, the predicted tokens and the q_halt logit.
    Examples with ``blank_id`` are padding and skipped. Puzzles in ``unsolved`` (a hidden test
    set, whose outputs are placeholders) get attempts but no score."""
    votes: dict[str, dict[bytes, dict[bytes, Candidate]]] = {}
    for pid, tokens_in, tokens_out, q in zip(np.asarray(puzzle_ids).tolist(), inputs, predictions,
                                             np.asarray(q_halt, dtype=np.float64).tolist()):
        if pid == blank_id:
            continue
        if not 0 <= pid < len(names):
            raise ConfigError(f"puzzle identifier {pid} has no name in identifiers.json ({len(names)} names)")
        try:
            puzzle, transform, colour_map = parse_name(names[pid])
        except ValueError as exc:
            raise ConfigError(f"identifiers.json[{pid}]: {exc}") from None
        test_input = grid_key(restore_grid(crop(tokens_in), transform, colour_map))
        grid = restore_grid(crop(tokens_out), transform, colour_map)
        per_input = votes.setdefault(puzzle, {}).setdefault(test_input, {})
        candidate = per_input.setdefault(grid_key(grid), Candidate(grid))
        candidate.votes += 1
        candidate.q_sum += _sigmoid(q)

    per_puzzle: dict[str, dict[str, Any]] = {}
    submission: dict[str, list[dict[str, list[list[int]]]]] = {}
    unanswered: list[str] = []
    totals = {k: 0.0 for k in ks}
    for puzzle, body in test_puzzles.items():
        hits = {k: 0 for k in ks}
        attempts_of_puzzle = []
        for index, pair in enumerate(body["test"]):
            test_input = grid_key(np.array(pair["input"]).astype(np.uint8))
            solution = grid_key(np.array(pair["output"]).astype(np.uint8))
            order = ranked(votes.get(puzzle, {}).get(test_input, {}))
            if not order:
                unanswered.append(f"{puzzle} test[{index}]")
            for k in ks:
                hits[k] += any(grid_key(c.grid) == solution for c in order[:k])
            grids = [c.grid.tolist() if c.grid.size else FILLER for c in order[:ATTEMPTS]] or [FILLER]
            grids += [grids[0]] * (ATTEMPTS - len(grids))
            attempts_of_puzzle.append({f"attempt_{i + 1}": g for i, g in enumerate(grids)})
        submission[puzzle] = attempts_of_puzzle
        tests = len(body["test"])
        row: dict[str, Any] = {"tests": tests}
        if puzzle in unsolved:
            row["scored"] = False
        else:
            for k in ks:
                row[f"pass@{k}"] = hits[k] / tests
                totals[k] += hits[k] / tests
        per_puzzle[puzzle] = row
    scored = sum(1 for p in test_puzzles if p not in unsolved)
    metrics: dict[str, float] = {"arc_puzzles": float(scored),
                                 "arc_test_inputs": float(sum(len(b["test"]) for b in test_puzzles.values())),
                                 "arc_unanswered": float(len(unanswered))}
    if scored:
        metrics.update({f"arc_pass@{k}": totals[k] / scored for k in ks})
    return VoteResult(metrics, per_puzzle, submission, unanswered)


# -- the submission file -------------------------------------------------------------------------
def submission_problems(submission: Any, test_puzzles: dict[str, Any]) -> list[str]:
    """What makes ``submission`` not an ARC Prize submission for ``test_puzzles`` (empty: valid):
    ``{puzzle id: [{"attempt_1": grid, "attempt_2": grid}, ...]}``, one entry per test input in
    order, every puzzle present, each grid a rectangle of 1-30 rows of 1-30 colours 0-9."""
    if not isinstance(submission, dict):
        return [f"expected an object {{puzzle id: [...]}}, got {type(submission).__name__}"]
    problems = [f"{p}: missing" for p in test_puzzles if p not in submission]
    problems += [f"{p}: not a test puzzle" for p in submission if p not in test_puzzles]
    for puzzle, entries in submission.items():
        if puzzle not in test_puzzles:
            continue
        tests = len(test_puzzles[puzzle]["test"])
        if not isinstance(entries, list) or len(entries) != tests:
            problems.append(f"{puzzle}: expected a list of {tests} entries (one per test input)")
            continue
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or sorted(entry) != [f"attempt_{a + 1}" for a in range(ATTEMPTS)]:
                problems.append(f"{puzzle}[{i}]: expected exactly the keys attempt_1, attempt_2")
                continue
            for key, grid in entry.items():
                ok = (isinstance(grid, list) and 1 <= len(grid) <= 30
                      and all(isinstance(r, list) and len(r) == len(grid[0]) for r in grid)
                      and 1 <= len(grid[0]) <= 30
                      and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 9 for r in grid for v in r))
                if not ok:
                    problems.append(f"{puzzle}[{i}].{key}: not a grid (1-30 rows of the same 1-30 colours 0-9)")
    return problems


# -- on a dataset folder ---------------------------------------------------------------------------
@dataclass
class ArcFolder:
    """What the protocol reads beside a dataset folder's splits."""

    folder: Path
    names: list[str]
    test_puzzles: dict[str, Any]
    unsolved: frozenset[str]


def read_arc_folder(folder: str | Path) -> ArcFolder:
    """``identifiers.json``, ``test_puzzles.json`` and (when ``forge data build arc`` wrote the
    folder) the unsolved test puzzles recorded in ``arc_build.json``."""
    folder = Path(folder)
    out: dict[str, Any] = {}
    for name, kind in (("identifiers.json", list), ("test_puzzles.json", dict)):
        path = folder / name
        if not path.is_file():
            raise ConfigError(f"{path}: not found; the ARC protocol needs an ARC dataset folder with identifiers.json"
                              " and test_puzzles.json (forge data build arc SRC OUT writes one)")
        try:
            out[name] = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: not readable JSON ({exc})") from None
        if not isinstance(out[name], kind):
            raise ConfigError(f"{path}: expected a JSON {'list' if kind is list else 'object'}")
    for pid, body in out["test_puzzles.json"].items():
        tests = body.get("test") if isinstance(body, dict) else None
        if not isinstance(tests, list) or not all(isinstance(t, dict) and "input" in t and "output" in t
                                                  for t in tests):
            raise ConfigError(f"{folder / 'test_puzzles.json'}: puzzle {pid}: expected 'test' pairs with 'input' and"
                              " 'output'")
    unsolved: frozenset[str] = frozenset()
    record = folder / "arc_build.json"
    if record.is_file():
        try:
            unsolved = frozenset(json.loads(record.read_text()).get("unsolved_test_puzzles") or ())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
            raise ConfigError(f"{record}: not readable ({exc})") from None
    return ArcFolder(folder, out["identifiers.json"], out["test_puzzles.json"], unsolved)


def dataset_folder_of(task: Any) -> Path:
    """The dataset folder whose ``test/`` split a task evaluates on (the ``official`` reader's
    ``eval_source``), refused unless the split is ``test``: ``test_puzzles.json`` describes it."""
    source = task.info.get("eval_source")
    if not source:
        raise ConfigError(f"the ARC protocol reads a dataset folder (forge data build arc writes one); task"
                          f" {task.spec.name!r} was not read from one: evaluate with --data FOLDER, or train with"
                          " --set task.path=FOLDER")
    split = Path(source)
    if split.name != "test":
        raise ConfigError(f"the ARC protocol scores the test split (test_puzzles.json describes it), not {split};"
                          " use --split test")
    return split.parent


def evaluate_arc(model: Any, task: Any, ctx: Any) -> dict[str, float]:
    """Evaluator ``arc_protocol``: :func:`vote` on the split's final predictions. The per-puzzle
    scores and the submission go to ``ctx.texts["arc_protocol"]``."""
    arc = read_arc_folder(dataset_folder_of(task))
    split = getattr(task, ctx.split)
    p = ctx.predictions()
    blank = int(task.spec.info.get("blank_identifier_id", 0))
    result = vote(arc.names, split.extras["puzzle_ids"].numpy(), split.inputs.numpy(), p.final.numpy(),
                  p.q_halt_final.double().numpy(), arc.test_puzzles, blank_id=blank, unsolved=arc.unsolved)
    problems = submission_problems(result.submission, arc.test_puzzles)
    if problems:  # our own output: a bug, not a user error
        raise ValueError(f"the ARC submission is malformed: {'; '.join(problems[:5])}")
    ctx.texts["arc_protocol"] = {"per_puzzle": result.per_puzzle, "submission": result.submission,
                                 "unanswered": result.unanswered}
    return result.metrics


@hookimpl
def forge_register_evaluators(register: Callable[[EvaluatorSpec], None]) -> None:
    register(EvaluatorSpec("arc_protocol", evaluate_arc,
                           description="ARC as the paper scores it on a dataset folder: votes over augmented versions"
                                       " (inverse transforms and colour maps, ties by mean sigmoid q_halt), pass@k,"
                                       " submission.json"))
