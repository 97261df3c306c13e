"""Helpers shared by the grid tasks (Sudoku, maze, ARC): dihedral transforms, the on-disk
``.npz`` cache, and the ``question,answer`` CSV layout.

The eight dihedral transforms are numbered ``k = 0..7``: rotate by ``k % 4`` quarter turns
(counter-clockwise, as :func:`torch.rot90`), then transpose when ``k >= 4``. Rotations invert
with ``(4 - k) % 4``; the four ``k >= 4`` are reflections, which are their own inverse.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from agent_forge.errors import ConfigError

from agent_forge.cache import CACHE_ENV, cache_dir  # noqa: F401  (re-exported for the dataset plugins)


def cached_arrays(path: Path | None, make: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Load ``path`` (no pickle) or build with ``make()`` and save it atomically; ``None`` = no cache."""
    if path is not None and path.exists():
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    arrays = make()
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    return arrays


def dihedral(grid: torch.Tensor, k: int) -> torch.Tensor:
    """Transform ``k`` (0..7) of the last two dimensions of ``grid``."""
    out = torch.rot90(grid, k % 4, dims=(-2, -1))
    return out.transpose(-2, -1) if k >= 4 else out


def dihedral_batch(grids: torch.Tensor, ks: torch.Tensor) -> torch.Tensor:
    """Apply transform ``ks[i]`` to square grid ``grids[i]`` for a (B, n, n) batch."""
    out = grids.clone()
    for k in range(1, 8):
        rows = (ks == k).nonzero().flatten()
        if len(rows):
            out[rows] = dihedral(grids[rows], k)
    return out


class TokenPermutation:
    """A :class:`~agent_forge.data.Symmetry` that moves cells and renames tokens:
    ``apply(x)[..., i] = values[x[..., positions[i]]]``. ``values`` None: tokens keep their names.
    Both are permutations, so :meth:`invert` undoes :meth:`apply` exactly."""

    def __init__(self, positions: torch.Tensor, values: torch.Tensor | None = None, name: str = "") -> None:
        self.positions = positions.long()
        self.values = None if values is None else values.long()
        self._inv_positions = torch.argsort(self.positions)
        self._inv_values = None if values is None else torch.argsort(self.values)
        self.name = name

    def apply(self, tokens: torch.Tensor) -> torch.Tensor:
        """(..., seq_len) -> the transformed frame."""
        out = tokens[..., self.positions.to(tokens.device)]
        return out if self.values is None else self.values.to(tokens.device)[out.long()].to(tokens.dtype)

    def invert(self, tokens: torch.Tensor) -> torch.Tensor:
        """(..., seq_len) in the transformed frame -> the original frame."""
        if self._inv_values is not None:
            tokens = self._inv_values.to(tokens.device)[tokens.long()].to(tokens.dtype)
        return tokens[..., self._inv_positions.to(tokens.device)]

    def __repr__(self) -> str:
        return f"TokenPermutation({self.name or 'custom'})"


def dihedral_symmetries(side: int, count: int, seed: int) -> list[TokenPermutation]:
    """``count`` (1..8) dihedral transforms of a ``side`` x ``side`` grid as token permutations:
    the identity first, then the other seven in an order drawn with ``seed``."""
    if not 1 <= count <= 8:
        raise ConfigError(f"--augment {count}: a square grid has 8 dihedral transforms; choose 1 to 8")
    cells = torch.arange(side * side).view(side, side)
    order = [0] + [1 + int(i) for i in torch.randperm(7, generator=torch.Generator().manual_seed(seed))]
    return [TokenPermutation(dihedral(cells, k).reshape(-1), None, f"dihedral {k}") for k in order[:count]]


def iter_question_answer(path: str | Path, *, strip: bool = True) -> Iterator[tuple[str, str, str]]:
    """Yield ``(where, question, answer)`` per data row; ``where`` names the file and row
    (the header is row 1). Columns other than ``question`` and ``answer`` are ignored.
    ``strip=False`` keeps leading and trailing spaces (cells of a Maze-Hard grid)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a folder; name a question,answer CSV file")
    if not path.exists():
        raise ConfigError(f"{path}: no such file")
    rows = 0
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        try:
            if reader.fieldnames is None:
                raise ConfigError(f"{path}: the file is empty; expected a header 'question,answer' and a row per"
                                  " puzzle (forge data generate writes one)")
            missing = {"question", "answer"} - set(reader.fieldnames)
            if missing:
                raise ConfigError(f"{path}: row 1 (header) lacks column(s) {sorted(missing)};"
                                  f" found {reader.fieldnames}. Expected 'question,answer'.")
            width = len(reader.fieldnames)
            for row_no, row in enumerate(reader, start=2):
                rows += 1
                # DictReader files surplus cells under None and fills missing ones with None: a row
                # of another width is a cell with an unquoted comma, or a lost one; never guess.
                missing = sum(1 for k, v in row.items() if k is not None and v is None)
                fields = width + len(row.get(None) or ()) - missing  # type: ignore[call-overload]
                if fields != width:
                    raise ConfigError(f"{path}: row {row_no} has {fields} field{'s' if fields != 1 else ''}, the"
                                      f" header (row 1) has {width} ({','.join(reader.fieldnames)}); quote a cell"
                                      " that holds a comma, or fix the row")
                q, a = row.get("question") or "", row.get("answer") or ""
                yield f"{path}: row {row_no}", (q.strip() if strip else q), (a.strip() if strip else a)
        except (UnicodeDecodeError, csv.Error) as exc:
            raise ConfigError(f"{path}: row {rows + 2} is not UTF-8 CSV text ({exc});"
                              " pass a question,answer CSV") from None
    if not rows:
        raise ConfigError(f"{path}: no data rows")


def sample_rows(rows: Iterator[tuple[str, str, str]], count: int | None, seed: int,
                salt: str = "rows") -> Iterator[tuple[str, str, str]]:
    """Every row when ``count`` is None; otherwise a uniform random subset of ``count`` rows
    (all of them if there are fewer), drawn in one pass (reservoir sampling, seeded by ``seed``
    and ``salt``) and yielded in file order. Only the chosen rows reach the caller's checks, so a
    1,000-row subset of a multi-million-row file is parsed, not the whole file."""
    if count is None:
        yield from rows
        return
    import random

    rng = random.Random(f"{salt}-{seed}")
    kept: list[tuple[int, tuple[str, str, str]]] = []
    for i, row in enumerate(rows):
        if i < count:
            kept.append((i, row))
        else:
            j = rng.randrange(i + 1)
            if j < count:
                kept[j] = (i, row)
    for _, row in sorted(kept, key=lambda item: item[0]):
        yield row


def write_question_answer(path: str | Path, questions: list[str], answers: list[str]) -> Path:
    """Write a ``question,answer`` CSV atomically (quoted where a cell needs it)."""
    import io

    from agent_forge.files import atomic_write_bytes

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["question", "answer"])
    writer.writerows(zip(questions, answers))
    atomic_write_bytes(path, buf.getvalue().encode())
    return Path(path)
