"""``forge data generate``: write a task's generated examples to a CSV a user can read and edit.

A dataset opts in by giving its build function an attribute
``generate_examples(config, count, seed) -> (questions, answers)``: two lists of strings, one
``question,answer`` row each, in the layout its ``eval_file`` reader accepts.

This module is a built-in plugin: its ``forge_register_commands`` adds the command to the
``data`` group (made here if no plugin made it first).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from agent_forge import hookimpl
from agent_forge.config import apply_overrides, validate
from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets.grids import write_question_answer


def generate_file(host, task: str, count: int, overrides: list[str], out: Path, seed: int) -> tuple[Path, float]:
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"--out {out}: is a folder; name the CSV file to write, e.g. {out / (task + '.csv')}")
    if out.parent.exists() and not out.parent.is_dir():
        raise ConfigError(f"--out {out}: {out.parent} is a file, not a folder; name a CSV file in a folder")
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


def data_generate(
    task: str = typer.Argument(..., help="Task name, e.g. sudoku6 or maze."),
    count: int = typer.Option(1000, "--count", min=1, help="How many examples to write."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Task config value: --set blanks=20."),
    out: Path = typer.Option(..., "--out", help="CSV file to write."),
    seed: int = typer.Option(0, "--seed", help="Generation seed (the same seed writes the same file)."),
) -> None:
    """Generate COUNT examples of TASK into a CSV file (question,answer columns)."""
    from agent_forge.cli import emit_json
    from agent_forge.plugin_host import get_host

    path, seconds = generate_file(get_host(), task, count, list(set_ or ()), out, seed)
    emit_json({"task": task, "count": count, "path": str(path), "seconds": round(seconds, 3)})


@hookimpl
def forge_register_commands(cli):
    from agent_forge.cli import command_group

    command_group(cli, "data", help="Generate task data files.").command("generate")(data_generate)
