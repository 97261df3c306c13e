"""Sudoku tasks ``sudoku4``, ``sudoku6``, ``sudoku9`` (and ``sudoku`` with a ``size`` field).

Tokens: 0 is a blank, 1..size are digits; vocab ``size + 1``; one token per cell, row-major.
Targets are the full solution (every cell is scored by the loss; the metrics also report
accuracy on the blank cells alone).

Data is generated (see :mod:`sudoku_core`) and cached on disk as ``.npz`` (no pickle) by
(size, count, blanks, seed), or read from user files in the Sudoku-Extreme CSV layout.
Training batches are augmented on the fly with validity-preserving transforms applied
identically to puzzle and solution: digit relabelling, band and stack permutations, row
permutations within bands, column permutations within stacks, and transposition where the box
is square.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import torch
from pydantic import Field, field_validator, model_validator

from agent_forge import hookimpl
from agent_forge.config import StrictModel
from agent_forge.contracts import TaskSpec
from agent_forge.data import Split, TaskData
from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets import sudoku_core as core
from agent_forge.plugins.datasets.csv_grids import grid_text, read_grid_csv
from agent_forge.plugins.datasets.grids import TokenPermutation, cache_dir, cached_arrays
from agent_forge.specs import DatasetSpec


BlankRange = tuple[int, int]


class SudokuConfig(StrictModel):
    name: str = "sudoku"
    size: int = Field(6, description="Grid side: 4, 6 or 9.")
    train_count: int = Field(4000, ge=1, description="Distinct generated training puzzles.")
    eval_count: int = Field(500, ge=1, description="Distinct generated evaluation puzzles.")
    blanks: BlankRange = Field((20, 20), description="Blanks per training puzzle: [min, max].")
    eval_blanks: BlankRange | None = Field(None, description="Blanks per eval puzzle (default: blanks).")
    augment: bool = True
    hard: bool = Field(False, description="Generate only puzzles that need search: dug to minimal (or to the"
                       " most blanks), kept when naked and hidden singles cannot finish them.")
    train_file: Path | None = Field(None, description="Train on this CSV instead of generating.")
    eval_file: Path | None = Field(None, description="Evaluate on this CSV instead of generating.")
    train_rows: int | None = Field(None, ge=1, description="Use a seeded random subset of this many train_file"
                                   " rows (the paper: 1000 of Sudoku-Extreme's train.csv).")
    eval_rows: int | None = Field(None, ge=1, description="Use a seeded random subset of this many eval_file rows.")
    cache: bool = True

    @field_validator("blanks", "eval_blanks", mode="before")
    @classmethod
    def _range(cls, v: Any) -> Any:
        return (v, v) if isinstance(v, int) else v

    @model_validator(mode="after")
    def _check(self) -> "SudokuConfig":
        core.box_shape(self.size)
        for rows, file in (("train_rows", "train_file"), ("eval_rows", "eval_file")):
            if getattr(self, rows) is not None and getattr(self, file) is None:
                raise ValueError(f"{rows} takes a subset of {file}'s rows, but {file} is not set")
        cells = self.size * self.size
        for field in ("blanks", "eval_blanks"):
            lo_hi = getattr(self, field)
            if lo_hi is None:
                continue
            lo, hi = lo_hi
            if not 0 <= lo <= hi < cells:
                raise ValueError(f"{field} [{lo}, {hi}] must satisfy 0 <= min <= max < {cells}")
        return self

    def task_spec(self) -> TaskSpec:
        return task_spec(self.size, self.name)


class Sudoku4Config(SudokuConfig):
    name: str = "sudoku4"
    size: Literal[4] = 4
    blanks: BlankRange = (8, 10)


class Sudoku6Config(SudokuConfig):
    name: str = "sudoku6"
    size: Literal[6] = 6
    blanks: BlankRange = (20, 20)


class Sudoku9Config(SudokuConfig):
    name: str = "sudoku9"
    size: Literal[9] = 9
    blanks: BlankRange = (45, 50)


class Sudoku9HardConfig(Sudoku9Config):
    """9x9 puzzles that need search: digging goes on while the solution stays unique (a minimal
    puzzle, 21-27 givens in our measurements), up to ``blanks[1]`` blanks, and a puzzle is kept
    only with at least ``blanks[0]`` blanks and when naked + hidden singles cannot finish it."""

    name: str = "sudoku9_hard"
    hard: bool = True
    blanks: BlankRange = (54, 64)





def generate(size: int, count: int, blanks: BlankRange, seed: int, *, cache: bool = True,
             exclude: set[bytes] | None = None, hard: bool = False,
             progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``count`` distinct (puzzle, solution) pairs as uint8 arrays of shape (count, size*size);
    ``progress(made)`` is called as they are made.

    ``hard``: every puzzle needs search (:func:`sudoku_core.make_hard_puzzle`) and has between
    ``blanks[0]`` and ``blanks[1]`` blanks, as many as uniqueness allows; otherwise the number of
    blanks is drawn from ``blanks``.
    """
    kind = "-hard" if hard else ""
    path = cache_dir() / "sudoku" / f"s{size}-n{count}-b{blanks[0]}_{blanks[1]}{kind}-seed{seed}.npz"

    def make() -> dict[str, np.ndarray]:
        rng = random.Random(f"sudoku-{size}{kind}-{seed}")
        seen: set[bytes] = set()
        puzzles, solutions = [], []
        attempts = 0
        while len(puzzles) < count:
            attempts += 1
            if attempts > 20 * count + 100:
                raise ConfigError(f"could only make {len(puzzles)} distinct {size}x{size} puzzles of {count}"
                                  f" with {blanks[0]}-{blanks[1]} blanks: ask for fewer (count/train_count/"
                                  "eval_count) or widen blanks")
            try:
                puzzle, solution = (core.make_hard_puzzle(size, blanks, rng) if hard
                                    else core.make_puzzle(size, rng.randint(*blanks), rng))
            except ValueError as exc:  # the pure generator's "cannot": a config the user can change
                # Name the settings that were used: hard=true only when it was on.
                given = f"hard=true, blanks=[{blanks[0]}, {blanks[1]}]" if hard else f"blanks=[{blanks[0]}, {blanks[1]}]"
                raise ConfigError(f"{given}: {exc}") from None
            key = bytes(puzzle)
            if key in seen or key in (exclude or ()):
                continue
            seen.add(key)
            puzzles.append(puzzle)
            solutions.append(solution)
            if progress is not None:
                progress(len(puzzles))
        return {"puzzles": np.asarray(puzzles, dtype=np.uint8), "solutions": np.asarray(solutions, dtype=np.uint8)}

    arrays = cached_arrays(path if cache and not exclude else None, make)
    return arrays["puzzles"], arrays["solutions"]


# -- augmentation (torch, vectorised over the batch) ----------------------------------------
def _grouped_perm(groups: int, per: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """(batch, groups*per) permutations that shuffle the groups and the items within each."""
    group_order = torch.argsort(torch.rand(batch, groups, generator=gen), dim=1)
    within = torch.argsort(torch.rand(batch, groups, per, generator=gen), dim=2)
    # Position j of group slot g takes item within[g', j] of group g' = group_order[g].
    src_group = group_order.unsqueeze(-1).expand(batch, groups, per)
    within_sel = torch.gather(within, 1, src_group)
    return (src_group * per + within_sel).reshape(batch, groups * per)


def make_augment(size: int):
    box_r, box_c = core.box_shape(size)

    def augment(batch: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
        inputs, targets = batch["inputs"], batch["targets"]
        b = inputs.shape[0]
        # Digit relabelling: 0 (blank) stays 0.
        relabel = torch.cat([torch.zeros(b, 1, dtype=torch.long),
                             torch.argsort(torch.rand(b, size, generator=gen), dim=1) + 1], dim=1)
        row_perm = _grouped_perm(size // box_r, box_r, b, gen)  # bands of box_r rows
        col_perm = _grouped_perm(size // box_c, box_c, b, gen)  # stacks of box_c columns
        flip = (torch.rand(b, generator=gen) < 0.5) if box_r == box_c else None

        def apply(x: torch.Tensor) -> torch.Tensor:
            g = torch.gather(relabel, 1, x.long()).view(b, size, size)
            g = torch.gather(g, 1, row_perm.unsqueeze(-1).expand(b, size, size))
            g = torch.gather(g, 2, col_perm.unsqueeze(1).expand(b, size, size))
            if flip is not None:
                g = torch.where(flip.view(b, 1, 1), g.transpose(1, 2), g)
            return g.reshape(b, size * size)

        return {**batch, "inputs": apply(inputs), "targets": apply(targets)}

    return augment


def make_symmetries(size: int):
    """``symmetries(n, seed)`` for :class:`TaskData` (test-time voting): the identity, then ``n-1``
    random validity-preserving transforms as in :func:`make_augment` (digit relabelling, band and
    row-within-band shuffles, stack and column-within-stack shuffles, transposition where the box
    is square), each a :class:`TokenPermutation` of cells and digits."""
    box_r, box_c = core.box_shape(size)

    def symmetries(n: int, seed: int) -> list[TokenPermutation]:
        if n < 1:
            raise ConfigError(f"--augment {n}: must be >= 1 (1: no voting over symmetries)")
        gen = torch.Generator().manual_seed(seed)
        cells = torch.arange(size * size).view(size, size)
        out = [TokenPermutation(cells.reshape(-1), None, "identity")]
        for _ in range(n - 1):
            values = torch.cat([torch.zeros(1, dtype=torch.long), torch.randperm(size, generator=gen) + 1])
            rows = _grouped_perm(size // box_r, box_r, 1, gen)[0]
            cols = _grouped_perm(size // box_c, box_c, 1, gen)[0]
            g = cells[rows][:, cols]
            if box_r == box_c and bool(torch.rand(1, generator=gen) < 0.5):
                g = g.t()
            out.append(TokenPermutation(g.reshape(-1), values, "relabel+shuffle"))
        return out

    return symmetries


def make_check(size: int):
    """``check(questions, answers)`` -> (B,) bool: every row, column and box holds each digit once,
    and the answer keeps every given of the question (no answer key needed)."""
    box_r, box_c = core.box_shape(size)
    units = torch.tensor(core.units(size), dtype=torch.long)  # (3*size, size) cell indices

    def check(questions: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
        a = answers.long()
        in_range = ((a >= 1) & (a <= size)).all(-1)
        groups = a[:, units].clamp(0, size)  # (B, units, size)
        counts = torch.zeros(*groups.shape[:2], size + 1, dtype=torch.long).scatter_add_(
            2, groups, torch.ones_like(groups))
        each_once = (counts[..., 1:] == 1).all(-1).all(-1)
        keeps_givens = ((questions == 0) | (questions == answers)).all(-1)
        return in_range & each_once & keeps_givens

    return check


def make_parse_question(size: int):
    """One question as a CSV cell (digits, ``.``/``0`` for a blank) -> (size*size,) tokens."""
    from agent_forge.plugins.datasets.csv_grids import _cells

    def parse(text: str) -> torch.Tensor:
        text = text.strip()
        if len(text) != size * size:
            raise ConfigError(f"PUZZLE has {len(text)} cells; this model solves {size}x{size} Sudoku: give"
                              f" {size * size} characters, row by row, digits 1-{size} and '.' for a blank")
        return torch.tensor(_cells(text, size, blanks_ok=True, where="PUZZLE"), dtype=torch.long)

    return parse


def render(size: int):
    def show(tokens: torch.Tensor) -> str:
        cells = tokens.tolist()
        return "\n".join(" ".join(str(v) if v else "." for v in cells[r * size:(r + 1) * size])
                         for r in range(size))
    return show


def decode_grid(size: int):
    def cells(tokens: torch.Tensor) -> list[list[str]]:
        values = tokens.tolist()
        return [[str(v) if v else "." for v in values[r * size:(r + 1) * size]] for r in range(size)]
    return cells


def task_spec(size: int, name: str | None = None) -> TaskSpec:
    box = core.box_shape(size)
    return TaskSpec(name=name or f"sudoku{size}", kind="puzzle", vocab_size=size + 1, seq_len=size * size,
                    causal=False, info={"size": size, "box": list(box), "blank_token": 0})


def _split(puzzles: np.ndarray, solutions: np.ndarray) -> Split:
    return Split(torch.from_numpy(puzzles.astype(np.int64)), torch.from_numpy(solutions.astype(np.int64)))


def build_sudoku(cfg: SudokuConfig, seed: int) -> TaskData:
    size = cfg.size
    eval_blanks = cfg.eval_blanks or cfg.blanks
    if cfg.train_file is not None:
        tp, ts = read_grid_csv(cfg.train_file, expect_size=size, rows=cfg.train_rows, seed=seed)
    else:
        tp, ts = generate(size, cfg.train_count, cfg.blanks, seed, cache=cfg.cache, hard=cfg.hard)
    if cfg.eval_file is not None:
        ep, es = read_grid_csv(cfg.eval_file, expect_size=size, rows=cfg.eval_rows, seed=seed + 1)
    else:
        # A separate stream, minus any puzzle that is also in the training set.
        ep, es = generate(size, cfg.eval_count, eval_blanks, seed + 1_000_003, cache=False,
                          exclude={bytes(row) for row in tp.tolist()}, hard=cfg.hard)
    return TaskData(spec=task_spec(size, cfg.name), train=_split(tp, ts), eval=_split(ep, es),
                    augment=make_augment(size) if cfg.augment else None, render=render(size),
                    decode_grid=decode_grid(size), symmetries=make_symmetries(size), check=make_check(size),
                    parse_question=make_parse_question(size),
                    info={"train_source": str(cfg.train_file or "generated"),
                          "eval_source": str(cfg.eval_file or "generated"), "eval_blanks": list(eval_blanks)})


def generate_examples(cfg: SudokuConfig, count: int, seed: int, *,
                      progress: Callable[[int], None] | None = None) -> tuple[list[str], list[str]]:
    """Fresh puzzles as CSV cells (``.`` = blank): blanks from ``eval_blanks`` (or ``blanks``), no cache."""
    puzzles, solutions = generate(cfg.size, count, cfg.eval_blanks or cfg.blanks, seed, cache=False, hard=cfg.hard,
                                  progress=progress)
    return ([grid_text(p) for p in puzzles.tolist()], [grid_text(s) for s in solutions.tolist()])


# -- difficulty statistics (forge data generate / forge data stats) -------------------------
#: How the search statistics are measured, written into every stats JSON.
SOLVER = ("dfs_*: the whole search tree of a depth-first solver that branches on the empty cell with the"
          " fewest candidates and does no other inference (walked to the end, so it also proves the solution"
          " unique); needs_search: naked + hidden singles, repeated, cannot finish the puzzle")


def _summary(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {"min": float(arr.min()), "median": float(np.median(arr)), "mean": round(float(arr.mean()), 3),
            "p90": round(float(np.percentile(arr, 90)), 3), "max": float(arr.max())}


def difficulty(puzzles: np.ndarray, size: int) -> dict[str, Any]:
    """Givens, the share that needs search, the share with exactly one solution, the rows that
    repeat an earlier puzzle, and the plain search's size, over (N, size*size) puzzles."""
    givens, search, nodes, guesses, dead_ends, unique = [], 0, [], [], [], 0
    seen: set[bytes] = set()
    duplicates = 0
    for row in puzzles.tolist():
        key = bytes(row)
        duplicates += key in seen  # the same question again: it counts twice in every share below
        seen.add(key)
        givens.append(sum(1 for v in row if v))
        search += not core.propagate_singles(row, size)[1]
        st = core.search_stats(row, size)
        nodes.append(st["nodes"])
        guesses.append(st["guesses"])
        dead_ends.append(st["dead_ends"])
        unique += st["solutions"] == 1
    n = len(givens)
    values, counts = np.unique(givens, return_counts=True)
    histogram = {str(int(v)): int(c) for v, c in zip(values, counts)}
    return {"puzzles": n, "size": size, "givens": {**_summary(givens), "histogram": histogram},
            "needs_search": round(search / n, 4), "unique_solution": round(unique / n, 4),
            "duplicate_puzzles": duplicates,
            "dfs_nodes": _summary(nodes), "dfs_guesses": _summary(guesses), "dfs_dead_ends": _summary(dead_ends),
            "solver": SOLVER}


def _ratings(path: Path, rows: int | None, seed: int) -> list[float] | None:
    """The file's own ``rating`` column (Sudoku-Extreme has one) for the same rows read_grid_csv takes."""
    import csv

    from agent_forge.plugins.datasets.grids import sample_rows

    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if "rating" not in (reader.fieldnames or []):
            return None
        chosen = sample_rows(((str(i), r.get("rating") or "", "") for i, r in enumerate(reader)), rows, seed,
                             "grid-rows")
        try:
            return [float(value) for _, value, _ in chosen]
        except ValueError:
            return None


def file_stats(cfg: SudokuConfig, path: Path, *, rows: int | None = None, seed: int = 0) -> dict[str, Any]:
    """:func:`difficulty` of a ``question,answer`` CSV (size from the file), plus its ``rating``
    column when it has one; ``rows``: a seeded uniform subset (the rows ``train_rows`` would take)."""
    puzzles, _ = read_grid_csv(path, rows=rows, seed=seed)
    size = math.isqrt(puzzles.shape[1])  # read_grid_csv checked it is 4, 6 or 9
    stats: dict[str, Any] = {"file": str(path), **difficulty(puzzles, size)}
    ratings = _ratings(Path(path), rows, seed)
    if ratings:
        stats["rating"] = {**_summary(ratings), "note": "the file's own rating column, as written in it"}
    return stats


@hookimpl
def forge_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    def spec(name: str, config: type[SudokuConfig], description: str) -> DatasetSpec:
        return DatasetSpec(name, build_sudoku, config=config, generate=generate_examples, file_stats=file_stats,
                           description=description)

    register(spec("sudoku", SudokuConfig, "n x n Sudoku (size 4, 6 or 9) with unique solutions"))
    for size, cfg in ((4, Sudoku4Config), (6, Sudoku6Config), (9, Sudoku9Config)):
        rows, cols = core.box_shape(size)
        register(spec(f"sudoku{size}", cfg, f"{size}x{size} Sudoku with {rows}x{cols} boxes"))
    register(spec("sudoku9_hard", Sudoku9HardConfig,
                  "9x9 Sudoku that needs search: minimal puzzles that singles cannot finish"))
