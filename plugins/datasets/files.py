"""``forge data generate``: write a task's generated examples to a CSV a user can read and edit.

A dataset opts in by giving its build function an attribute
``generate_examples(config, count, seed) -> (questions, answers)``: two lists of strings, one
``question,answer`` row each, in the layout its ``eval_file`` reader accepts.
"""

from __future__ import annotations

import time
from pathlib import Path

from agent_forge.config import apply_overrides, validate
from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets.grids import write_question_answer


def generate_file(host, task: str, count: int, overrides: list[str], out: Path, seed: int) -> tuple[Path, float]:
    reg = host.get("dataset", task)
    generate = getattr(reg.obj, "generate_examples", None)
    if generate is None:
        raise ConfigError(f"task {task!r} cannot write example files")
    raw = apply_overrides({}, overrides)
    cfg = validate(reg.config, raw, "task")
    start = time.monotonic()
    questions, answers = generate(cfg, count, seed)
    write_question_answer(out, questions, answers)
    return out, time.monotonic() - start
