"""Maze maths with no torch: carving, breadth-first shortest paths, path counting, checking.

A maze is a flat row-major list of ``side*side`` tokens (see :data:`WALL` ... :data:`PATH`).

* :func:`carve` digs a *perfect* maze (exactly one simple path between any two open cells) with a
  randomised depth-first search on the odd-coordinate lattice, then knocks out each remaining
  inner wall between two lattice cells with probability ``loops``. Loops create alternative
  routes, so the model must find the *shortest* one rather than the only one.
* :func:`make_maze` picks a start and a goal whose shortest path is at least ``min_path`` steps
  long **and unique** (counted by :func:`count_shortest_paths`); otherwise it tries again. The
  target is therefore well defined: no tie-break is needed.
"""

from __future__ import annotations

import random
from collections import deque

WALL, OPEN, START, GOAL, PATH = 1, 2, 3, 4, 5
CHARS = {WALL: "#", OPEN: ".", START: "S", GOAL: "G", PATH: "*"}
TOKENS = {ch: tok for tok, ch in CHARS.items()}
#: The public Maze-Hard layout (``sapientinc/maze-30x30-hard-1k``; the official TRM builder's
#: ``CHARSET = "# SGo"``): a space is an open cell and ``o`` a path cell. Same tokens as ours.
MAZE_HARD_CHARS = {WALL: "#", OPEN: " ", START: "S", GOAL: "G", PATH: "o"}
MAZE_HARD_TOKENS = {ch: tok for tok, ch in MAZE_HARD_CHARS.items()}


def _neighbours(i: int, side: int):
    r, c = divmod(i, side)
    if r > 0:
        yield i - side
    if r < side - 1:
        yield i + side
    if c > 0:
        yield i - 1
    if c < side - 1:
        yield i + 1


def carve(side: int, rng: random.Random, loops: float = 0.0) -> list[int]:
    grid = [WALL] * (side * side)
    lattice = [(r, c) for r in range(1, side - 1, 2) for c in range(1, side - 1, 2)]
    start = rng.choice(lattice)
    grid[start[0] * side + start[1]] = OPEN
    stack = [start]
    while stack:
        r, c = stack[-1]
        options = [(r + dr, c + dc, r + dr // 2, c + dc // 2) for dr, dc in ((2, 0), (-2, 0), (0, 2), (0, -2))
                   if 1 <= r + dr < side - 1 and 1 <= c + dc < side - 1
                   and grid[(r + dr) * side + c + dc] == WALL]
        if not options:
            stack.pop()
            continue
        nr, nc, wr, wc = rng.choice(options)
        grid[wr * side + wc] = OPEN
        grid[nr * side + nc] = OPEN
        stack.append((nr, nc))
    if loops > 0:
        for r in range(1, side - 1):
            for c in range(1, side - 1):
                # An inner wall that separates two lattice cells horizontally or vertically.
                between = (r % 2 == 1 and c % 2 == 0 and c + 1 < side - 1) or \
                          (r % 2 == 0 and c % 2 == 1 and r + 1 < side - 1)
                if between and grid[r * side + c] == WALL and rng.random() < loops:
                    grid[r * side + c] = OPEN
    return grid


def distances(grid: list[int], side: int, source: int, passable=None) -> list[int]:
    """Breadth-first step counts from ``source`` (-1 = unreachable) through non-wall cells."""
    passable = passable or (lambda i: grid[i] != WALL)
    dist = [-1] * len(grid)
    dist[source] = 0
    queue = deque([source])
    while queue:
        i = queue.popleft()
        for j in _neighbours(i, side):
            if dist[j] < 0 and passable(j):
                dist[j] = dist[i] + 1
                queue.append(j)
    return dist


def count_shortest_paths(dist: list[int], side: int, limit: int = 2) -> list[int]:
    """Number of shortest paths from the BFS source to every cell, capped at ``limit``."""
    order = sorted((d, i) for i, d in enumerate(dist) if d >= 0)
    count = [0] * len(dist)
    for d, i in order:
        if d == 0:
            count[i] = 1
            continue
        count[i] = min(limit, sum(count[j] for j in _neighbours(i, side) if dist[j] == d - 1))
    return count


def make_maze(side: int, min_path: int, loops: float, rng: random.Random,
              max_tries: int = 200) -> tuple[list[int], list[int]]:
    """(question, answer): the question marks start and goal; the answer also marks the path."""
    for _ in range(max_tries):
        grid = carve(side, rng, loops)
        open_cells = [i for i, v in enumerate(grid) if v == OPEN]
        for _ in range(4):
            start = rng.choice(open_cells)
            dist = distances(grid, side, start)
            counts = count_shortest_paths(dist, side)
            goals = [i for i in open_cells if dist[i] >= min_path and counts[i] == 1]
            if not goals:
                continue
            goal = rng.choice(goals)
            question = list(grid)
            question[start], question[goal] = START, GOAL
            answer = list(question)
            # Walk back from the goal; uniqueness means one predecessor at each step.
            i = goal
            while dist[i] > 1:
                i = next(j for j in _neighbours(i, side) if dist[j] == dist[i] - 1 and counts[j] > 0)
                answer[i] = PATH
            return question, answer
    from agent_forge.errors import ConfigError

    raise ConfigError(f"task: no {side}x{side} maze with a unique shortest path of >= {min_path} steps in"
                      f" {max_tries} tries; lower task.min_path_length or task.loops, or raise task.size")


def check_answer(question: list[int], answer: list[int], side: int,
                 chars: dict[int, str] = CHARS) -> str | None:
    """``None`` if ``answer`` is ``question`` with a shortest start-goal path marked, else why not
    (cells named by ``chars``: ours, or :data:`MAZE_HARD_CHARS` for a Maze-Hard file)."""
    if question.count(START) != 1 or question.count(GOAL) != 1:
        return "the question needs exactly one S and one G"
    if PATH in question:
        return f"the question already marks path cells ({chars[PATH]!r})"
    for i, (q, a) in enumerate(zip(question, answer)):
        if q != a and not (q == OPEN and a == PATH):
            r, c = divmod(i, side)
            return f"cell at row {r + 1}, column {c + 1} is {chars.get(q, q)!r} in the question but " \
                   f"{chars.get(a, a)!r} in the answer (only {chars[OPEN]!r} may become {chars[PATH]!r})"
    start, goal = question.index(START), question.index(GOAL)
    shortest = distances(question, side, start)[goal]
    if shortest < 0:
        return "the goal cannot be reached from the start"
    on_path = distances(answer, side, start, passable=lambda i: answer[i] in (START, GOAL, PATH))[goal]
    marked = answer.count(PATH)
    if on_path != shortest or marked != shortest - 1:
        return f"the marked path ({marked} cells) is not a shortest path ({shortest - 1} cells between S and G)"
    return None


def to_text(tokens: list[int]) -> str:
    return "".join(CHARS.get(t, "?") for t in tokens)
