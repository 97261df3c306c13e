"""Grid puzzles as CSV in the Sudoku-Extreme layout: ``question`` and ``answer`` columns.

Each cell is one character: a digit, or ``.``/``0`` for a blank (``answer`` has no blanks).
Other columns (``source``, ``rating``, ...) are ignored. The grid size is inferred from the
string length (16, 36 or 81 cells -> 4x4, 6x6, 9x9). Every malformed row is an error that names
the file, the row number (the header is row 1) and what is wrong.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets import sudoku_core as core
from agent_forge.plugins.datasets.grids import iter_question_answer, sample_rows


def _cells(text: str, size: int, *, blanks_ok: bool, where: str) -> list[int]:
    out = []
    for ch in text:
        if ch in ".0":
            if not blanks_ok:
                raise ConfigError(f"{where}: the answer has a blank ({ch!r}); answers must be complete")
            out.append(0)
        elif ch.isdigit() and 1 <= int(ch) <= size:
            out.append(int(ch))
        else:
            raise ConfigError(f"{where}: {ch!r} is not a digit 1-{size} or a blank ('.' or '0')")
    return out


def read_grid_csv(path: str | Path, expect_size: int | None = None,
                  check_solutions: bool = True, *, rows: int | None = None,
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Read (puzzles, solutions) as uint8 arrays (N, size*size); ``rows``: a seeded uniform
    subset of that many rows, in file order (the others are not parsed)."""
    puzzles, solutions = [], []
    size: int | None = expect_size
    for where, q, a in sample_rows(iter_question_answer(path), rows, seed, "grid-rows"):
        side = math.isqrt(len(q))
        if side * side != len(q) or side not in core.BOX_SHAPES:
            raise ConfigError(f"{where}: question has {len(q)} cells; expected 16, 36 or 81")
        if size is None:
            size = side
        elif side != size:
            raise ConfigError(f"{where}: a {side}x{side} grid in a file of {size}x{size} grids"
                              if expect_size is None or len(puzzles) else
                              f"{where}: a {side}x{side} grid, but this task is {size}x{size}")
        if len(a) != len(q):
            raise ConfigError(f"{where}: answer has {len(a)} cells, question has {len(q)}")
        qc = _cells(q, size, blanks_ok=True, where=f"{where} (question)")
        ac = _cells(a, size, blanks_ok=False, where=f"{where} (answer)")
        if check_solutions:
            if not core.is_valid_solution(ac, size):
                raise ConfigError(f"{where}: the answer is not a valid {size}x{size} Sudoku grid")
            clash = [i for i, (x, y) in enumerate(zip(qc, ac)) if x and x != y]
            if clash:
                r, c = divmod(clash[0], size)
                raise ConfigError(f"{where}: given at row {r + 1}, column {c + 1} ({qc[clash[0]]})"
                                  f" differs from the answer ({ac[clash[0]]})")
        puzzles.append(qc)
        solutions.append(ac)
    return np.asarray(puzzles, dtype=np.uint8), np.asarray(solutions, dtype=np.uint8)


def grid_text(cells: list[int]) -> str:
    """One grid as a CSV cell string: digits, ``.`` for a blank."""
    return "".join(str(v) if v else "." for v in cells)
