"""Task ``maze``: find the shortest path from ``S`` to ``G`` in an n×n grid maze.

Tokens (one per cell, row-major): 1 wall ``#``, 2 open ``.``, 3 start ``S``, 4 goal ``G``,
5 path ``*``; 0 is unused. The question has walls, open cells, ``S`` and ``G``; the answer is the
same grid with the cells of the shortest path marked ``*``. Every generated maze has a *unique*
shortest path (see :mod:`maze_core`), so the target is well defined. Difficulty: ``size``,
``min_path_length`` and ``loops`` (the share of inner walls knocked out; more loops = more
competing routes). Training batches get a random dihedral transform (rotations and
reflections keep shortest paths shortest and unique). Files use the ``question,answer`` CSV
layout with the characters above, or the public Maze-Hard characters (``#`` wall, space open,
``S``, ``G``, ``o`` path); the side is inferred from the length.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from pydantic import Field, model_validator

from agent_forge import hookimpl
from agent_forge.config import StrictModel
from agent_forge.contracts import TaskSpec
from agent_forge.data import Split, TaskData
from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets import maze_core as core
from agent_forge.plugins.datasets.grids import (cache_dir, cached_arrays, dihedral_batch, dihedral_symmetries,
                                                iter_question_answer, sample_rows)
from agent_forge.specs import DatasetSpec

VOCAB = 6


class MazeConfig(StrictModel):
    name: str = "maze"
    size: int = Field(11, ge=5, le=64, description="Grid side (odd sizes use every row; even ones leave a wall).")
    train_count: int = Field(4000, ge=1, description="Distinct generated training mazes.")
    eval_count: int = Field(500, ge=1, description="Distinct generated evaluation mazes.")
    min_path_length: int | None = Field(None, ge=2, description="Fewest steps from S to G (default: size).")
    loops: float = Field(0.1, ge=0, le=1, description="Share of inner walls removed after carving.")
    augment: bool = True
    train_file: Path | None = Field(None, description="Train on this CSV (ours or Maze-Hard) instead of generating.")
    eval_file: Path | None = Field(None, description="Evaluate on this CSV (ours or Maze-Hard) instead of generating.")
    train_rows: int | None = Field(None, ge=1, description="Use a seeded random subset of this many train_file rows.")
    eval_rows: int | None = Field(None, ge=1, description="Use a seeded random subset of this many eval_file rows.")
    cache: bool = True

    @model_validator(mode="after")
    def _check(self) -> "MazeConfig":
        lattice = ((self.size - 1) // 2) ** 2
        for rows, file in (("train_rows", "train_file"), ("eval_rows", "eval_file")):
            if getattr(self, rows) is not None and getattr(self, file) is None:
                raise ValueError(f"{rows} takes a subset of {file}'s rows, but {file} is not set")
        if self.min_path_length is not None and self.min_path_length > 2 * lattice:
            raise ValueError(f"min_path_length {self.min_path_length} cannot fit in a {self.size}x{self.size} maze")
        return self

    @property
    def min_path(self) -> int:
        return self.min_path_length or self.size

    def task_spec(self) -> TaskSpec:
        return task_spec(self.size, self.name)


def task_spec(size: int, name: str = "maze") -> TaskSpec:
    return TaskSpec(name=name, kind="puzzle", vocab_size=VOCAB, seq_len=size * size, causal=False,
                    info={"size": size, "blank_token": core.OPEN, "chars": {str(k): v for k, v in core.CHARS.items()}})


def generate(cfg: MazeConfig, count: int, seed: int, *, cache: bool = True,
             exclude: set[bytes] | None = None,
             progress: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``count`` distinct (question, answer) uint8 arrays of shape (count, size*size);
    ``progress(made)`` is called as they are made."""
    name = f"n{cfg.size}-c{count}-p{cfg.min_path}-l{cfg.loops:g}-seed{seed}.npz"

    def make() -> dict[str, np.ndarray]:
        rng = random.Random(f"maze-{cfg.size}-{seed}")
        seen: set[bytes] = set(exclude or ())
        questions, answers = [], []
        for _ in range(20 * count + 100):
            q, a = core.make_maze(cfg.size, cfg.min_path, cfg.loops, rng)
            if bytes(q) in seen:
                continue
            seen.add(bytes(q))
            questions.append(q)
            answers.append(a)
            if progress is not None:
                progress(len(questions))
            if len(questions) == count:
                return {"questions": np.asarray(questions, np.uint8), "answers": np.asarray(answers, np.uint8)}
        raise ConfigError(f"could only make {len(questions)} distinct mazes of {count}; raise size or loops")

    arrays = cached_arrays(cache_dir() / "maze" / name if cache and not exclude else None, make)
    return arrays["questions"], arrays["answers"]


LAYOUTS = {"ours": (core.CHARS, core.TOKENS), "maze_hard": (core.MAZE_HARD_CHARS, core.MAZE_HARD_TOKENS)}
_LAYOUT_NAMES = {"ours": "ours ('.' open, '*' path)", "maze_hard": "Maze-Hard (' ' open, 'o' path)"}


def _layout(text: str) -> str | None:
    """Which character set a grid string uses: by its open/path characters (None: neither)."""
    ours, hard = bool(set(text) & {".", "*"}), bool(set(text) & {" ", "o"})
    return None if ours == hard else ("ours" if ours else "maze_hard")


def read_maze_csv(path: str | Path, size: int, *, rows: int | None = None, seed: int = 0,
                  flagged: list[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(questions, answers) from a ``question,answer`` CSV in our characters (``# . S G *``) or
    the public Maze-Hard ones (``# SGo``: space open, ``o`` path; other columns such as
    ``source`` and ``rating`` ignored), told apart by the first row; every row must use the
    same set. ``rows``: a seeded uniform subset of that many rows. ``flagged``: instead of
    refusing a row whose answer is not a shortest path (:func:`maze_core.check_answer`), append
    ``"<file>: row N: why"`` to it and leave the row out (characters and shapes still raise)."""
    questions, answers = [], []
    layout: str | None = None
    for where, q, a in sample_rows(iter_question_answer(path, strip=False), rows, seed, "maze-rows"):
        side = math.isqrt(len(q))
        if side * side != len(q):
            raise ConfigError(f"{where}: question has {len(q)} cells, not a square grid")
        if side != size:
            raise ConfigError(f"{where}: a {side}x{side} maze, but this task is {size}x{size}"
                              f" (set task.size={side})")
        if len(a) != len(q):
            raise ConfigError(f"{where}: answer has {len(a)} cells, question has {len(q)}")
        row_layout = _layout(q + a)
        if row_layout is None:
            if set(q + a) & {".", "*"}:
                raise ConfigError(f"{where}: mixes the characters of {_LAYOUT_NAMES['ours']} and"
                                  f" {_LAYOUT_NAMES['maze_hard']}; one file holds one layout")
            row_layout = layout or "ours"  # no open or path cell: both layouts read it alike
        if layout is None:
            layout = row_layout
        elif row_layout != layout:
            raise ConfigError(f"{where}: uses the characters of {_LAYOUT_NAMES[row_layout]}, but the rows before"
                              f" use {_LAYOUT_NAMES[layout]}; one file holds one layout")
        chars, tokens = LAYOUTS[layout]
        cells = []
        for label, text in (("question", q), ("answer", a)):
            bad = sorted(set(text) - set(tokens))
            if bad:
                raise ConfigError(f"{where} ({label}): {bad[0]!r} is not one of {''.join(tokens)!r}")
            cells.append([tokens[ch] for ch in text])
        problem = core.check_answer(cells[0], cells[1], side, chars)
        if problem:
            if flagged is None:
                raise ConfigError(f"{where}: {problem}")
            flagged.append(f"{where}: {problem}")
            continue
        questions.append(cells[0])
        answers.append(cells[1])
    return np.asarray(questions, np.uint8), np.asarray(answers, np.uint8)


def make_augment(size: int):
    def augment(batch: dict[str, torch.Tensor], gen: torch.Generator) -> dict[str, torch.Tensor]:
        b = batch["inputs"].shape[0]
        ks = torch.randint(0, 8, (b,), generator=gen)

        def apply(x: torch.Tensor) -> torch.Tensor:
            return dihedral_batch(x.view(b, size, size), ks).reshape(b, size * size)

        return {**batch, "inputs": apply(batch["inputs"]), "targets": apply(batch["targets"])}

    return augment


def make_check(size: int):
    """``check(questions, answers)`` -> (B,) bool: the answer is the question with a shortest
    S-G path marked (:func:`maze_core.check_answer`; no answer key needed)."""
    def check(questions: torch.Tensor, answers: torch.Tensor) -> torch.Tensor:
        return torch.tensor([core.check_answer(q, a, size) is None
                             for q, a in zip(questions.tolist(), answers.tolist())], dtype=torch.bool)
    return check


def make_parse_question(size: int):
    """One maze question as a CSV cell (ours ``# . S G`` or Maze-Hard's ``# SG``) -> tokens."""
    def parse(text: str) -> torch.Tensor:
        if len(text) != size * size:
            raise ConfigError(f"PUZZLE has {len(text)} cells; this model solves {size}x{size} mazes: give"
                              f" {size * size} characters, row by row ('#' wall, '.' open, 'S', 'G')")
        chars, tokens = LAYOUTS[_layout(text) or "ours"]
        bad = sorted(set(text) - set(tokens))
        if bad:
            raise ConfigError(f"PUZZLE: {bad[0]!r} is not one of {''.join(tokens)!r}")
        return torch.tensor([tokens[ch] for ch in text], dtype=torch.long)
    return parse


def render(size: int):
    def show(tokens: torch.Tensor) -> str:
        text = core.to_text(tokens.tolist())
        return "\n".join(text[r * size:(r + 1) * size] for r in range(size))
    return show


def decode_grid(size: int):
    def cells(tokens: torch.Tensor) -> list[list[str]]:
        text = core.to_text(tokens.tolist())
        return [list(text[r * size:(r + 1) * size]) for r in range(size)]
    return cells


def _split(q: np.ndarray, a: np.ndarray) -> Split:
    return Split(torch.from_numpy(q.astype(np.int64)), torch.from_numpy(a.astype(np.int64)))


def build_maze(cfg: MazeConfig, seed: int) -> TaskData:
    if cfg.train_file is not None:
        tq, ta = read_maze_csv(cfg.train_file, cfg.size, rows=cfg.train_rows, seed=seed)
    else:
        tq, ta = generate(cfg, cfg.train_count, seed, cache=cfg.cache)
    if cfg.eval_file is not None:
        eq, ea = read_maze_csv(cfg.eval_file, cfg.size, rows=cfg.eval_rows, seed=seed + 1)
    else:
        eq, ea = generate(cfg, cfg.eval_count, seed + 1_000_003, cache=False,
                          exclude={bytes(row) for row in tq.tolist()})
    return TaskData(spec=cfg.task_spec(), train=_split(tq, ta), eval=_split(eq, ea),
                    augment=make_augment(cfg.size) if cfg.augment else None, render=render(cfg.size),
                    decode_grid=decode_grid(cfg.size), check=make_check(cfg.size),
                    symmetries=lambda n, seed: dihedral_symmetries(cfg.size, n, seed),
                    parse_question=make_parse_question(cfg.size),
                    info={"train_source": str(cfg.train_file or "generated"),
                          "eval_source": str(cfg.eval_file or "generated")})


def generate_examples(cfg: MazeConfig, count: int, seed: int, *,
                      progress: Callable[[int], None] | None = None) -> tuple[list[str], list[str]]:
    q, a = generate(cfg, count, seed, cache=False, progress=progress)
    return [core.to_text(r) for r in q.tolist()], [core.to_text(r) for r in a.tolist()]


#: How many flagged rows ``file_stats`` names (the count covers them all).
FLAGGED_SHOWN = 5


def file_stats(cfg: MazeConfig, path: Path, *, rows: int | None = None, seed: int = 0) -> dict:
    """Shortest-path length, open cells and the share with a unique shortest path, of a maze CSV
    (ours or Maze-Hard; the side is read from the file's first row), over the rows our reader
    takes; ``refused_rows``: those it refuses (the answer is not a shortest S-G path), which the
    official builder (and ``forge data build maze-hard``) keeps, with the first few named."""
    first = next(iter_question_answer(path, strip=False))[1]
    side = math.isqrt(len(first))
    flagged: list[str] = []
    questions, _ = read_maze_csv(path, side, rows=rows, seed=seed, flagged=flagged)
    refused = {"rows": len(flagged), "share": round(len(flagged) / (len(flagged) + len(questions)), 4),
               "first": flagged[:FLAGGED_SHOWN],
               "note": "rows task.train_file/eval_file refuse (the marked path is not a shortest S-G path, or no"
                       " single S and G); the official builder checks only the characters and keeps them"}
    if not len(questions):
        return {"file": str(path), "mazes": 0, "size": side, "refused_rows": refused}
    lengths, unique, open_share = [], 0, []
    for q in questions.tolist():
        start, goal = q.index(core.START), q.index(core.GOAL)
        dist = core.distances(q, side, start)
        lengths.append(dist[goal])
        unique += core.count_shortest_paths(dist, side)[goal] == 1
        open_share.append(sum(v != core.WALL for v in q) / len(q))
    arr = np.asarray(lengths, dtype=np.float64)
    return {"file": str(path), "mazes": len(lengths), "size": side,
            "path_length": {"min": float(arr.min()), "median": float(np.median(arr)),
                            "mean": round(float(arr.mean()), 3), "max": float(arr.max())},
            "unique_shortest_path": round(unique / len(lengths), 4),
            "open_cells": round(float(np.mean(open_share)), 4), "refused_rows": refused}


@hookimpl
def forge_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    register(DatasetSpec("maze", build_maze, config=MazeConfig, generate=generate_examples, file_stats=file_stats,
                         description="n x n grid maze; target: the unique shortest S-G path"))
