"""``forge data generate``: write a task's generated examples to a CSV a user can read and edit."""

from __future__ import annotations

import time
from pathlib import Path

from agent_forge.config import apply_overrides, validate
from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets.csv_grids import write_grid_csv


def generate_file(host, task: str, count: int, overrides: list[str], out: Path, seed: int) -> tuple[Path, float]:
    reg = host.get("dataset", task)
    generate = getattr(reg.obj, "generate_examples", None)
    if generate is None:
        raise ConfigError(f"task {task!r} cannot write example files")
    raw = apply_overrides({}, overrides)
    cfg = validate(reg.config, raw, "task")
    start = time.monotonic()
    puzzles, solutions = generate(cfg, count, seed)
    write_grid_csv(out, puzzles, solutions)
    return out, time.monotonic() - start
