"""``forge data generate``: write a task's generated examples to a CSV a user can read and edit;
``forge data stats``: describe a CSV's examples (for Sudoku: how hard they are).

A dataset opts in with the ``generate`` field of its ``DatasetSpec``:
``generate(config, count, seed) -> (questions, answers)``, two lists of strings, one
``question,answer`` row each, in the layout its ``eval_file`` reader accepts. With its
``file_stats(config, path, *, rows, seed) -> dict`` field set, ``forge data generate`` also
prints the statistics of the file it wrote, and ``forge data stats`` computes the same on any
file of that layout (a downloaded public set included).

This module is a built-in plugin: its ``forge_register_commands`` adds the command to the
``data`` group (made here if no plugin made it first).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Optional

import typer

from agent_forge import hookimpl
from agent_forge.config import SEED_MAX, apply_overrides, validate
from agent_forge.errors import ConfigError
from agent_forge.plugins.datasets.grids import write_question_answer
from agent_forge.specs import DatasetSpec


#: The most examples one ``forge data generate`` writes: 9x9 Sudoku comes at about 100 a second
#: on one core, so even this takes hours (a progress line says how far it got).
MAX_COUNT = 10_000_000


def generate_file(host, task: str, count: int, overrides: list[str], out: Path, seed: int, *,
                  overwrite: bool = False, progress: bool = True) -> tuple[Path, float]:
    out = Path(out)
    if out.is_dir():
        raise ConfigError(f"--out {out}: is a folder; name the CSV file to write, e.g. {out / (task + '.csv')}")
    refuse_existing(out, overwrite)
    if not 1 <= count <= MAX_COUNT:
        raise ConfigError(f"--count {count}: give 1 to {MAX_COUNT:,} (write more as several files, each with its"
                          " own --seed)")
    if out.parent.exists() and not out.parent.is_dir():
        raise ConfigError(f"--out {out}: {out.parent} is a file, not a folder; name a CSV file in a folder")
    reg = host.get(DatasetSpec, task)
    generate = reg.generate
    if generate is None:
        raise ConfigError(f"task {task!r} cannot write example files")
    raw = apply_overrides({}, overrides)
    cfg = validate(reg.config, raw, "task")
    start = time.monotonic()
    questions, answers = generate(cfg, count, seed, **generation_progress(generate, task, count, progress))
    write_question_answer(out, questions, answers)
    return out, time.monotonic() - start


def refuse_existing(out: Path, overwrite: bool) -> None:
    """A file at ``out`` is the user's data: replaced only with ``--overwrite``, as export does."""
    if out.is_file() and not overwrite:
        try:
            with open(out, "rb") as f:
                lines = sum(1 for _ in f)
        except OSError:
            lines = 0
        held = f" ({lines:,} line{'s' if lines != 1 else ''})" if lines else ""
        raise ConfigError(f"--out {out}: the file exists{held}; pass --overwrite to replace it, or choose another"
                          " --out")


def generation_progress(generate: Any, task: str, count: int, enabled: bool) -> dict[str, Any]:
    """``progress=`` for a dataset's ``generate_examples`` that takes one: a bar on a terminal,
    else a ``data.progress`` line on stderr every 30 s (a file made in less says nothing)."""
    import inspect

    from agent_forge.progress import PlainLines, TerminalBar

    if "progress" not in inspect.signature(generate).parameters:
        return {}
    bar = TerminalBar(enabled, lambda rp: [rp.TextColumn(f"[bold]{task}"), rp.BarColumn(bar_width=24),
                                           rp.MofNCompleteColumn(), rp.TimeElapsedColumn(),
                                           rp.TimeRemainingColumn()], total=count, transient=True)
    lines = PlainLines(enabled, "data.progress", at_start=False)

    def progress(made: int) -> None:
        if made == 1:
            bar.__enter__()
        bar.set(completed=made)
        lines.tick(task=task, made=made, count=count)
        if made >= count:
            bar.__exit__(None, None, None)

    return {"progress": progress}


def file_stats(host, task: str, path: Path, overrides: list[str], *, rows: int | None = None,
               seed: int = 0) -> dict[str, Any] | None:
    """The dataset's ``file_stats`` of ``path``; None when the dataset has none."""
    reg = host.get(DatasetSpec, task)
    stats = reg.file_stats
    if stats is None:
        return None
    cfg = validate(reg.config, apply_overrides({}, overrides), "task")
    start = time.monotonic()
    out = stats(cfg, Path(path), rows=rows, seed=seed)
    return {**out, "stats_seconds": round(time.monotonic() - start, 3)}


def data_generate(
    task: str = typer.Argument(..., help="Task name, e.g. sudoku6 or maze."),
    count: int = typer.Option(1000, "--count", min=1, max=MAX_COUNT, help="How many examples to write"
                              f" (at most {MAX_COUNT:,})."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace --out if it exists."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Task config value: --set blanks=20."),
    out: Path = typer.Option(..., "--out", help="CSV file to write."),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX,
                             help="Generation seed (the same seed writes the same file)."),
) -> None:
    """Generate COUNT examples of TASK into a CSV file (question,answer columns)."""
    from agent_forge.cli import emit_json
    from agent_forge.plugin_host import get_host

    host = get_host()
    path, seconds = generate_file(host, task, count, list(set_ or ()), out, seed, overwrite=overwrite)
    result: dict[str, Any] = {"task": task, "count": count, "path": str(path), "seconds": round(seconds, 3)}
    stats = file_stats(host, task, path, list(set_ or ()))
    if stats is not None:
        result["stats"] = stats
    emit_json(result)


def data_stats(
    path: Path = typer.Argument(..., help="A question,answer CSV (ours, or a public set such as Sudoku-Extreme)."),
    task: str = typer.Option("sudoku", "--task", help="Whose reader and statistics: sudoku (any size) or maze."),
    rows: Optional[int] = typer.Option(None, "--rows", min=1,
                                       help="A seeded uniform subset of this many rows (default: every row)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Task config value: --set size=30 (maze)."),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX, help="Seed of the --rows subset."),
) -> None:
    """Statistics of the examples in PATH as JSON (Sudoku: givens, share needing search, search size)."""
    from agent_forge.cli import emit_json
    from agent_forge.plugin_host import get_host

    stats = file_stats(get_host(), task, path, list(set_ or ()), rows=rows, seed=seed)
    if stats is None:
        raise ConfigError(f"--task {task}: this task has no file statistics; use --task sudoku or --task maze")
    emit_json(stats)


@hookimpl
def forge_register_commands(cli):
    from agent_forge.cli import command_group

    group = command_group(cli, "data", help="Generate task data files, describe them, fetch and build public sets.")
    group.command("generate")(data_generate)
    group.command("stats")(data_stats)
