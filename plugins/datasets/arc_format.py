"""The official TRM code's ARC conventions, shared by ``forge data build arc`` and the ARC
evaluation protocol: the 8 dihedral transforms in its numbering, colour maps, the names of
augmented puzzles, the 30x30 encoding with a translation, and how a predicted grid is read back.

These are data formats, not choices: a folder written by the official builder
(``dataset/build_arc_dataset.py``) and one written by ``forge data build arc`` name and encode
their puzzles the same way, so either is voted on by either evaluator.

* **Transforms** (:func:`dihedral`): 0 identity, 1-3 rotations by 90/180/270 degrees
  counter-clockwise (``np.rot90``), 4 left-right mirror, 5 up-down mirror, 6 transpose, 7 the
  anti-diagonal reflection (mirror of rotation 1). :data:`INVERSE` gives each one's inverse.
* **Augmented puzzle** (:func:`augment_grid`): colours recoloured by a map (10 entries, entry 0 is
  0: black stays black, 1-9 permuted), then transformed. Its name (:func:`version_name`) is
  ``<puzzle>|||t<transform>|||<the map's 10 digits>``; the original keeps its plain name.
* **Encoding** (:func:`encode_at`): a grid (colours 0-9 as tokens 2-11) placed at a row/column
  offset on a 30x30 canvas of padding (0), an end-of-grid marker (1) on the row below it and the
  column right of it, as far as the grid spans.
* **Reading a prediction** (:func:`crop`): the largest rectangle anchored at the top-left corner
  whose every token is a colour, scanning rows downward as the official evaluator does; it can
  be empty (0x0) when the corner is not a colour.
"""

from __future__ import annotations

import numpy as np

GRID = 30
PAD, EOS, COLOUR0 = 0, 1, 2
VOCAB = COLOUR0 + 10
#: Between a puzzle's name and its augmentation in an augmented puzzle's name.
SEPARATOR = "|||"
#: INVERSE[t] undoes transform t.
INVERSE = (0, 3, 2, 1, 4, 5, 6, 7)
IDENTITY_MAP = np.arange(10, dtype=np.uint8)


def dihedral(grid: np.ndarray, transform: int) -> np.ndarray:
    """One of the 8 symmetries of the square, in the official numbering (module docstring)."""
    if transform == 0:
        return grid
    if 1 <= transform <= 3:
        return np.rot90(grid, k=transform)
    if transform == 4:
        return np.fliplr(grid)
    if transform == 5:
        return np.flipud(grid)
    if transform == 6:
        return grid.T
    if transform == 7:
        return np.fliplr(np.rot90(grid, k=1))
    raise ValueError(f"dihedral transform {transform!r}: must be 0..7")


def augment_grid(grid: np.ndarray, transform: int, colour_map: np.ndarray) -> np.ndarray:
    """Recolour ``grid`` with ``colour_map`` (``colour_map[c]`` is colour c's new colour), then
    apply :func:`dihedral` ``transform``. A contiguous uint8 copy."""
    return np.ascontiguousarray(dihedral(colour_map[grid], transform), dtype=np.uint8)


def restore_grid(grid: np.ndarray, transform: int, colour_map: np.ndarray) -> np.ndarray:
    """The inverse of :func:`augment_grid`: undo the transform, then the recolouring."""
    inverse_map = np.argsort(colour_map).astype(np.uint8)
    return np.ascontiguousarray(inverse_map[dihedral(grid, INVERSE[transform])], dtype=np.uint8)


def version_name(puzzle: str, transform: int, colour_map: np.ndarray) -> str:
    """``puzzle|||t<transform>|||<map digits>``: the name of one augmented version."""
    return f"{puzzle}{SEPARATOR}t{transform}{SEPARATOR}{''.join(str(int(c)) for c in colour_map)}"


def parse_name(name: str) -> tuple[str, int, np.ndarray]:
    """``(puzzle, transform, colour_map)`` of a name written by :func:`version_name`; a plain
    name is the original (transform 0, the identity map). Raises ``ValueError`` on a malformed one."""
    if SEPARATOR not in name:
        return name, 0, IDENTITY_MAP
    parts = name.split(SEPARATOR)
    puzzle, t, digits = SEPARATOR.join(parts[:-2]), parts[-2], parts[-1]
    if len(t) != 2 or t[0] != "t" or t[1] not in "01234567":
        raise ValueError(f"{name!r}: the transform part {t!r} is not t0..t7")
    if len(digits) != 10 or sorted(digits) != list("0123456789"):
        raise ValueError(f"{name!r}: the colour map {digits!r} is not a permutation of the digits 0-9")
    return puzzle, int(t[1]), np.array([int(c) for c in digits], dtype=np.uint8)


def encode_at(grid: np.ndarray, row: int = 0, col: int = 0) -> np.ndarray:
    """(h, w) colours -> (30, 30) uint8 tokens with the grid's top-left corner at (row, col)."""
    h, w = grid.shape
    if row < 0 or col < 0 or row + h > GRID or col + w > GRID:
        raise ValueError(f"a {h}x{w} grid at ({row}, {col}) does not fit the {GRID}x{GRID} canvas")
    canvas = np.zeros((GRID, GRID), dtype=np.uint8)
    canvas[row:row + h, col:col + w] = grid + COLOUR0
    if row + h < GRID:
        canvas[row + h, col:col + w] = EOS
    if col + w < GRID:
        canvas[row:row + h, col + w] = EOS
    return canvas


def crop(tokens: np.ndarray) -> np.ndarray:
    """The grid a 900-token prediction (or input) states, read as the official evaluator reads it.

    Row by row from the top, the width is the run of colour tokens from column 0, never wider
    than the rows above allow; the answer is the first of these top-left rectangles with the
    largest area. (0, 0) when the corner token is not a colour.
    """
    g = np.asarray(tokens).reshape(GRID, GRID)
    colour = (g >= COLOUR0) & (g < VOCAB)
    # run[r]: colour tokens from column 0 in row r; the usable width is its running minimum.
    run = np.where(colour.all(1), GRID, np.argmin(colour, axis=1))
    width = np.minimum.accumulate(run)
    area = width * np.arange(1, GRID + 1)
    best = int(np.argmax(area))
    if area[best] == 0:
        return np.zeros((0, 0), dtype=np.uint8)
    return (g[:best + 1, :width[best]] - COLOUR0).astype(np.uint8)


def grid_key(grid: np.ndarray) -> bytes:
    """Equal for two grids exactly when they have the same shape and colours."""
    h, w = grid.shape
    return h.to_bytes(2, "big") + w.to_bytes(2, "big") + np.ascontiguousarray(grid, dtype=np.uint8).tobytes()
