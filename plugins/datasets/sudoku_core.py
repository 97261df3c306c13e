"""Sudoku maths with no torch: box shapes, a bitmask solver, grid sampling, puzzle digging.

Grids are flat lists of ``size*size`` ints, row-major; 0 is a blank, 1..size are digits.

* :func:`random_grid` fills an empty grid by backtracking with a random digit order at every
  cell, so it can reach *every* valid grid (not only relabellings/shuffles of one pattern).
* :func:`dig` removes cells in random order, keeping a removal only while the puzzle still has
  exactly one solution (checked by :func:`count_solutions` with limit 2).
"""

from __future__ import annotations

import random

BOX_SHAPES: dict[int, tuple[int, int]] = {4: (2, 2), 6: (2, 3), 9: (3, 3)}


def box_shape(size: int) -> tuple[int, int]:
    try:
        return BOX_SHAPES[size]
    except KeyError:
        raise ValueError(f"unsupported Sudoku size {size}; supported: 4, 6, 9") from None


class Geometry:
    """Precomputed row/column/box index of each cell for one size."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.box_rows, self.box_cols = box_shape(size)
        self.full = (1 << size) - 1
        self.cells = size * size
        self.row = [i // size for i in range(self.cells)]
        self.col = [i % size for i in range(self.cells)]
        per_band = size // self.box_cols  # boxes side by side in one band
        self.box = [(self.row[i] // self.box_rows) * per_band + self.col[i] // self.box_cols
                    for i in range(self.cells)]


_GEOMETRY: dict[int, Geometry] = {}


def geometry(size: int) -> Geometry:
    if size not in _GEOMETRY:
        _GEOMETRY[size] = Geometry(size)
    return _GEOMETRY[size]


def _masks(grid: list[int], g: Geometry) -> tuple[list[int], list[int], list[int]] | None:
    rows, cols, boxes = [0] * g.size, [0] * g.size, [0] * g.size
    for i, v in enumerate(grid):
        if v:
            bit = 1 << (v - 1)
            if rows[g.row[i]] & bit or cols[g.col[i]] & bit or boxes[g.box[i]] & bit:
                return None  # a digit repeats: no solution
            rows[g.row[i]] |= bit
            cols[g.col[i]] |= bit
            boxes[g.box[i]] |= bit
    return rows, cols, boxes


def _search(grid: list[int], size: int, limit: int) -> tuple[dict[str, int], list[int] | None]:
    """The one solver: depth-first, the empty cell with the fewest candidates first, no other
    inference, until ``limit`` solutions are found or the tree ends. Returns the tree's counts
    (:func:`search_stats`) and the first solution found (None without one)."""
    g = geometry(size)
    counts = {"nodes": 0, "guesses": 0, "dead_ends": 0, "solutions": 0}
    masks = _masks(grid, g)
    if masks is None:  # a digit repeats: a dead end at the root
        return counts | {"nodes": 1, "dead_ends": 1}, None
    rows, cols, boxes = masks
    cells = list(grid)
    empties = [i for i, v in enumerate(cells) if v == 0]
    R, C, B, full = g.row, g.col, g.box, g.full
    first: list[list[int]] = []

    def search() -> None:
        counts["nodes"] += 1
        # Most-constrained cell first: keeps the search tree tiny for these sizes.
        best, best_cand, best_count = -1, 0, 99
        for i in empties:
            if cells[i]:
                continue
            cand = full & ~(rows[R[i]] | cols[C[i]] | boxes[B[i]])
            count = cand.bit_count()
            if count < best_count:
                best, best_cand, best_count = i, cand, count
                if count <= 1:
                    break
        if best < 0:
            counts["solutions"] += 1
            if not first:
                first.append(list(cells))
            return
        if best_count == 0:
            counts["dead_ends"] += 1
            return
        if best_count > 1:
            counts["guesses"] += 1
        r, c, b = R[best], C[best], B[best]
        cand = best_cand
        while cand and counts["solutions"] < limit:
            bit = cand & -cand
            cand ^= bit
            rows[r] |= bit; cols[c] |= bit; boxes[b] |= bit  # noqa: E702
            cells[best] = bit.bit_length()
            search()
            rows[r] ^= bit; cols[c] ^= bit; boxes[b] ^= bit  # noqa: E702
            cells[best] = 0

    search()
    return counts, (first[0] if first else None)


def count_solutions(grid: list[int], size: int, limit: int = 2) -> int:
    """Number of solutions of ``grid``, counting no further than ``limit``."""
    return _search(grid, size, limit)[0]["solutions"]


def solve(grid: list[int], size: int) -> list[int] | None:
    """One solution of ``grid`` (the first found), or None."""
    return _search(grid, size, 1)[1]


def random_grid(size: int, rng: random.Random) -> list[int]:
    """A complete valid grid by randomised backtracking (random digit order at every cell)."""
    g = geometry(size)
    cells = [0] * g.cells
    rows, cols, boxes = [0] * size, [0] * size, [0] * size
    digits = list(range(1, size + 1))

    def fill(i: int) -> bool:
        if i == g.cells:
            return True
        r, c, b = g.row[i], g.col[i], g.box[i]
        used = rows[r] | cols[c] | boxes[b]
        order = digits[:]
        rng.shuffle(order)
        for d in order:
            bit = 1 << (d - 1)
            if used & bit:
                continue
            rows[r] |= bit; cols[c] |= bit; boxes[b] |= bit  # noqa: E702
            cells[i] = d
            if fill(i + 1):
                return True
            rows[r] ^= bit; cols[c] ^= bit; boxes[b] ^= bit  # noqa: E702
        cells[i] = 0
        return False

    fill(0)
    return cells


def dig(solution: list[int], size: int, blanks: int, rng: random.Random) -> list[int] | None:
    """Blank ``blanks`` cells keeping a unique solution, or None if this grid can't get there."""
    puzzle = dig_hard(solution, size, blanks, rng)  # the same digging, stopped at ``blanks``
    return puzzle if puzzle.count(0) == blanks else None


def make_puzzle(size: int, blanks: int, rng: random.Random, max_tries: int = 50) -> tuple[list[int], list[int]]:
    """A (puzzle, solution) pair with exactly ``blanks`` blanks and a unique solution."""
    for _ in range(max_tries):
        solution = random_grid(size, rng)
        puzzle = dig(solution, size, blanks, rng)
        if puzzle is not None:
            return puzzle, solution
    raise ValueError(f"could not make a {size}x{size} puzzle with {blanks} blanks and a unique solution"
                     f" in {max_tries} tries; use fewer blanks")


def is_valid_solution(grid: list[int], size: int) -> bool:
    g = geometry(size)
    return all(v != 0 for v in grid) and _masks(grid, g) is not None


# -- difficulty: propagation without guessing, and the size of a plain search ----------------
def units(size: int) -> list[list[int]]:
    """The rows, columns and boxes of ``size``, each a list of cell indices."""
    g = geometry(size)
    return [[i for i in range(g.cells) if key[i] == k] for key in (g.row, g.col, g.box) for k in range(size)]


_PEERS: dict[int, list[list[int]]] = {}


def peers(size: int) -> list[list[int]]:
    """For every cell, the other cells of its row, column and box."""
    if size not in _PEERS:
        g = geometry(size)
        _PEERS[size] = [[j for j in range(g.cells) if j != i and
                         (g.row[j] == g.row[i] or g.col[j] == g.col[i] or g.box[j] == g.box[i])]
                        for i in range(g.cells)]
    return _PEERS[size]


def propagate_singles(grid: list[int], size: int) -> tuple[list[int], bool]:
    """Fill what naked singles (a cell with one candidate) and hidden singles (a digit with one
    place left in a row, column or box) force, repeatedly, with no guessing.

    Returns the grid as far as they get and whether it is complete. A contradiction (a cell with
    no candidate, or a digit with no place) stops it incomplete.
    """
    g = geometry(size)
    cells = list(grid)
    nbrs = peers(size)
    groups = units(size)
    cand = [0] * g.cells
    for i in range(g.cells):
        if not cells[i]:
            used = 0
            for j in nbrs[i]:
                if cells[j]:
                    used |= 1 << (cells[j] - 1)
            cand[i] = g.full & ~used

    def place(i: int, digit: int) -> None:
        cells[i] = digit
        cand[i] = 0
        bit = 1 << (digit - 1)
        for j in nbrs[i]:
            cand[j] &= ~bit

    progress = True
    while progress:
        progress = False
        for i in range(g.cells):
            if not cells[i]:
                c = cand[i]
                if c == 0:
                    return cells, False
                if c & (c - 1) == 0:
                    place(i, c.bit_length())
                    progress = True
        for unit in groups:
            placed = 0
            for i in unit:
                if cells[i]:
                    placed |= 1 << (cells[i] - 1)
            for d in range(size):
                bit = 1 << d
                if placed & bit:
                    continue
                spots = [i for i in unit if cand[i] & bit]
                if not spots:
                    return cells, False
                if len(spots) == 1:
                    place(spots[0], d + 1)
                    placed |= bit
                    progress = True
    return cells, all(cells)


def search_stats(grid: list[int], size: int) -> dict[str, int]:
    """The whole search tree of a plain depth-first solver, which proves the solution unique.

    The solver is :func:`count_solutions`' own: at every node it takes the empty cell with the
    fewest candidates and tries each; no other inference. The tree is walked to the end (or to a
    second solution), so the counts do not depend on the order digits are tried in.
    ``nodes``: search calls; ``guesses``: nodes that had to choose between two or more digits;
    ``dead_ends``: nodes with a cell that has no candidate (each a backtrack); ``solutions``: 0,
    1, or 2 meaning "two or more".
    """
    return _search(grid, size, limit=2)[0]


def dig_hard(solution: list[int], size: int, max_blanks: int, rng: random.Random) -> list[int]:
    """Blank cells in random order while the solution stays unique, up to ``max_blanks``: at
    ``max_blanks`` >= what the grid allows, a *minimal* puzzle (no given can go)."""
    puzzle = list(solution)
    order = list(range(len(solution)))
    rng.shuffle(order)
    removed = 0
    for i in order:
        if removed == max_blanks:
            break
        keep = puzzle[i]
        puzzle[i] = 0
        if count_solutions(puzzle, size, limit=2) == 1:
            removed += 1
        else:
            puzzle[i] = keep
    return puzzle


def make_hard_puzzle(size: int, blanks: tuple[int, int], rng: random.Random,
                     max_tries: int = 500) -> tuple[list[int], list[int]]:
    """A unique-solution puzzle with at least ``blanks[0]`` and at most ``blanks[1]`` blanks that
    naked and hidden singles cannot finish (:func:`propagate_singles`): solving it needs search.
    Grids are dug to minimal (or to ``blanks[1]``); about 40% of minimal 9x9 puzzles qualify."""
    lo, hi = blanks
    for _ in range(max_tries):
        solution = random_grid(size, rng)
        puzzle = dig_hard(solution, size, hi, rng)
        if puzzle.count(0) < lo:
            continue
        if not propagate_singles(puzzle, size)[1]:
            return puzzle, solution
    raise ValueError(f"no {size}x{size} puzzle with {lo}-{hi} blanks that naked and hidden singles cannot solve"
                     f" in {max_tries} tries: puzzles are dug to minimal (or to {hi} blanks) and kept only when"
                     f" they need search, so widen the blanks range (a maximum too low stops digging before"
                     f" search is needed, a minimum too high is more than minimal puzzles have), or set"
                     f" hard=false (on 4x4 almost no puzzle needs search)")
