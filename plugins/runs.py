"""``forge runs``: the runs in a folder as a table; ``forge runs compare``: runs side by side.

A built-in plugin (its ``forge_register_commands`` adds the group ``forge runs``); what it shows
is read by :mod:`agent_forge.phases.common.runs`, which knows no CLI. Tables and results go to
stdout, logs to stderr. Tables are fitted to the console's width (``COLUMNS`` when stdout is not
a terminal, else 80): columns are shortened or dropped, least useful first, until the table fits.

``forge runs [DIR]`` is ``forge runs list [DIR]``: a first word that is not a sub-command is the
folder (a folder literally named ``compare`` is ``forge runs list compare``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import typer
from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from typer.core import TyperGroup

from agent_forge import hookimpl
from agent_forge.logging import stdout_console
from agent_forge.formatting import format_duration
from agent_forge.phases.common.runs import (MISSING, RunInfo, config_diff, format_value, list_runs, metric_rows,
                                            open_runs, plot_curves)


def _table(headers: list[str], rows: list[list[str]], *, title: str | None = None,
           wrap: tuple[str, ...] = (), max_widths: dict[str, int] | None = None,
           min_widths: dict[str, int] | None = None, tight: bool = False) -> Table:
    """Two spaces between columns (one when ``tight``); columns in ``wrap`` may wrap."""
    table = Table(title=title, box=box.SIMPLE_HEAD, pad_edge=False, padding=(0, 0) if tight else (0, 1),
                  collapse_padding=True, title_justify="left", show_edge=False)
    for h in headers:
        table.add_column(h, overflow="fold", no_wrap=h not in wrap, max_width=(max_widths or {}).get(h),
                         min_width=(min_widths or {}).get(h))
    for row in rows:
        table.add_row(*row)
    return table


def _fitted(console: Console, candidates: list[Callable[[], Table]]) -> Table:
    """The first table that fits the console's width, else the last (rich then wraps it)."""
    table = None
    for make in candidates:
        table = make()
        wide = console.options.update(width=100_000, max_width=100_000)
        if Measurement.get(console, wide, table).maximum <= console.width:
            return table
    assert table is not None
    return table


# -- forge runs [DIR] ------------------------------------------------------------------------
#: (header, narrow header, cell) of each column; dropped right to left from _DROP when narrow.
_COLUMNS: dict[str, tuple[str, str, Callable[[RunInfo], str]]] = {
    "id": ("id", "id", lambda r: r.id),
    "phase": ("phase", "phase", lambda r: r.phase or MISSING),
    "variant": ("variant", "variant", lambda r: r.variant or MISSING),
    "task": ("task", "task", lambda r: r.task or MISSING),
    "status": ("status", "status", lambda r: r.status),
    "accuracy": ("exact acc", "acc", lambda r: format_value("exact_accuracy", r.exact_accuracy)),
    "steps": ("steps", "steps", lambda r: format_value("steps", r.steps)),
    "time": ("train time", "time", lambda r: format_duration(r.train_seconds) if r.train_seconds is not None
             else MISSING),
    "started": ("started", "started", lambda r: r.started.astimezone().strftime("%Y-%m-%d %H:%M")
                if r.started else MISSING),
}
_DROP = ("phase", "variant", "task")
#: An unreadable run's reason wraps within this width instead of widening the table.
_STATUS_WIDTH = 22


def runs_table(runs: list[RunInfo], console: Console) -> Table:
    """The listing, fitted to ``console.width``: first shorter headers and start times, then
    without the start time when every id carries it (``runs/<stamp>-<phase>-<variant>-...``),
    then without phase, variant and task, in that order."""
    def make(drop: tuple[str, ...], narrow: bool, tight: bool = False) -> Callable[[], Table]:
        def build() -> Table:
            cols = [c for c in _COLUMNS if c not in drop]
            rows = []
            for r in runs:
                row = [_COLUMNS[c][2](r) for c in cols]
                if narrow and "started" in cols and r.started:
                    row[cols.index("started")] = r.started.astimezone().strftime("%m-%d %H:%M")
                rows.append(row)
            # Squeezed to the last layout, the id wraps rather than the status (whose words stay whole).
            return _table([_COLUMNS[c][1 if narrow else 0] for c in cols], rows,
                          wrap=("status", "id") if tight else ("status",), max_widths={"status": _STATUS_WIDTH},
                          min_widths={"status": status_width} if tight else None, tight=tight)
        return build

    status_width = min(_STATUS_WIDTH, max([len(w) for r in runs for w in r.status.split()] or [6]))
    first = ("started",) if runs and all(r.started_from == "run id" for r in runs) else ()
    candidates = [make((), False), make((), True)]
    candidates += [make(first + _DROP[:i], True) for i in range(0 if first else 1, len(_DROP) + 1)]
    candidates.append(make(first + _DROP, True, tight=True))
    return _fitted(console, candidates)


class _RunsGroup(TyperGroup):
    """``forge runs [DIR] [--json]`` means ``forge runs list ...``; ``compare`` is the other command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if not args or (args[0] not in self.commands and args[0] not in ("--help", "-h")):
            args = ["list", *args]
        return super().parse_args(ctx, args)


def runs_list(
    folder: Path = typer.Argument(Path("runs"), help="Folder holding the runs (default runs/), or one run."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """List the runs in FOLDER, oldest first: status, exact accuracy, steps, training time, start.

    Status: completed / stopped / failed (from result.json), unfinished-resumable (a checkpoint,
    no result.json: continue it with --resume), unfinished, or unreadable: <reason>. Folders that
    are not runs are skipped; a pipeline's phase folders are listed as PIPELINE/PHASE.
    """
    from agent_forge.cli import emit_json

    runs = list_runs(folder)
    if as_json:
        emit_json([r.as_json() for r in runs])
        return
    console = stdout_console()
    if not runs:
        console.print(f"no runs in {folder}")
        return
    console.print(runs_table(runs, console))


def runs_compare(
    runs_: list[Path] = typer.Argument(..., metavar="RUN...", help="Two or more run folders."),
    plot: Path = typer.Option(Path("runs-compare.png"), "--plot",
                              help="PNG of the runs' training curves (loss, train accuracy vs step)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Show where the runs' configs differ and their final metrics side by side; plot their curves."""
    from agent_forge.cli import emit_json
    from agent_forge.errors import ConfigError

    if len(runs_) < 2:
        raise ConfigError(f"forge runs compare: got {len(runs_)} run folder; pass two or more, e.g."
                          " forge runs compare runs/A runs/B")
    runs = open_runs(runs_)
    diff, metrics = config_diff(runs), metric_rows(runs)
    path = plot_curves(plot, runs)
    if as_json:
        emit_json({"runs": [r.as_json() for r in runs],
                   "config_diff": [{"key": k, "values": v} for k, v in diff],
                   "metrics": [{"key": k, "values": v} for k, v in metrics],
                   "plot": str(path)})
        return
    console = stdout_console()
    ids = [r.id for r in runs]
    letters = [chr(ord("A") + i) if i < 26 else str(i + 1) for i in range(len(runs))]

    def side_by_side(title: str, first: str, rows: list[tuple[str, list[str]]]) -> Table:
        def make(headers: list[str]) -> Callable[[], Table]:
            return lambda: _table([first, *headers], [[k, *v] for k, v in rows], title=title,
                                  wrap=(first, *headers))
        return _fitted(console, [make(ids), make(letters)])

    # In a config, null is a value (``trainer.minutes: null``); "-" is a key the run lacks.
    diff_rows = [(k, ["null" if v is None else format_value(k, v) for v in values]) for k, values in diff]
    metric_cells = [(k, [format_value(k, v) for v in values]) for k, values in metrics]
    tables = [side_by_side("config differences", "key", diff_rows) if diff_rows else None,
              side_by_side("final metrics", "metric", metric_cells)]
    if any(t is not None and t.columns[1].header in letters for t in tables):
        for letter, run in zip(letters, runs):
            console.print(f"{letter}: {run.path}")
        console.print()
    if tables[0] is None:
        console.print("config differences: none (the configs are identical)")
    else:
        console.print(tables[0])
    console.print()
    console.print(tables[1])
    console.print()
    console.print(f"plot: {path}", soft_wrap=True)


def runs_app() -> typer.Typer:
    """The ``forge runs`` group (a new one per call: every ``build_app`` gets its own)."""
    app = typer.Typer(cls=_RunsGroup, help="List runs (forge runs [DIR]) or compare them (forge runs compare A B).")
    app.command("list")(runs_list)
    app.command("compare")(runs_compare)
    return app


@hookimpl
def forge_register_commands(cli):
    cli.add_typer(runs_app(), name="runs")
