"""Cognate's commands: ``forge variants``, ``forge eval``, ``forge ablate`` and ``forge show``.

The core CLI knows none of them: the built-in phases plugin passes the root app to
:func:`add_commands` from its ``forge_register_commands`` hook, as any third-party plugin would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich import box
from rich.table import Table

from agent_forge.cli import emit_json
from agent_forge.formatting import format_number
from agent_forge.logging import stdout_console
from agent_forge.plugin_host import get_host

#: The most supervision steps ``forge eval``/``forge show --n-sup`` run: far past any trained
#: n_sup (16 in the presets), and each step is a full forward pass over the data.
MAX_N_SUP = 1024


def variants(as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
             counts: bool = typer.Option(True, "--counts/--no-counts",
                                         help="Build each model to count its parameters exactly.")) -> None:
    """List every variant: task, architecture, shape, effective depth and parameter count."""
    from agent_forge.phases.cognate.phase import describe_variants

    rows = describe_variants(get_host(), with_parameters=counts)
    if as_json:
        emit_json(rows)
        return
    # Short headers and no box so the table reads at 80 columns: d = d_model, L = layers,
    # depth = effective depth L*(n+1)*T*N_sup; --json has every field, exact counts included.
    table = Table(title="Cognate variants", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
                  show_edge=False, title_justify="left")
    for col, right in (("variant", False), ("task", False), ("arch", False), ("d", True), ("L", True),
                       ("n", True), ("T", True), ("N_sup", True), ("depth", True), ("params", True)):
        table.add_column(col, no_wrap=True, justify="right" if right else "left")

    def cell(value: object) -> str:
        return "-" if value is None else str(value)

    for r in rows:
        if "error" in r:
            table.add_row(r["name"], f"[red]{r['error']}[/red]", *["" for _ in range(8)])
            continue
        table.add_row(r["name"], r["task"], r["architecture"], cell(r.get("d_model")), cell(r.get("layers")),
                      cell(r.get("n")), cell(r.get("T")), cell(r.get("n_sup")), cell(r.get("effective_depth")),
                      _short_count(r.get("parameters")))
    stdout_console().print(table)


def _short_count(value: int | None) -> str:
    """134,337 -> 134k; 152,764,416 -> 152.8M (the exact count is in --json)."""
    if value is None:
        return "-"
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= size:
            return f"{value / size:.1f}{unit}" if value < 100 * size else f"{value / size:.0f}{unit}"
    return str(value)


def eval_cmd(
    artifact: Path = typer.Argument(..., help="Artifact manifest (.json) to evaluate."),
    data: Path = typer.Option(..., "--data", help="Data file in the task's layout (CSV for puzzles)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Examples per inference batch."),
    n_sup: Optional[int] = typer.Option(None, "--n-sup", min=1, max=MAX_N_SUP, help="Run this many supervision"
                                        " steps (more or fewer than trained, at most 1024; default: the model's"
                                        " n_sup); accuracy after each."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda[:i] or auto."),
) -> None:
    """Evaluate a hand-off artifact on a user file; print the metrics JSON on stdout, with exact and
    token accuracy after every supervision step and at the Q-head's halting step."""
    from agent_forge.phases.cognate.evaluate import evaluate_artifact_on_file, steps_table

    metrics = evaluate_artifact_on_file(get_host(), artifact, data, batch_size=batch_size, n_sup=n_sup,
                                        device=device)
    if as_json:
        emit_json(metrics)
        return
    out = stdout_console()
    for key, value in metrics.items():
        if key not in ("steps", "at_halt"):
            shown = format_number(value, "auto", key=key) if isinstance(value, (int, float)) else value
            out.print(f"{key:>22}: {shown}", soft_wrap=True)
    out.print(steps_table(metrics))


def ablate(
    variants_: Optional[str] = typer.Option(None, "--variants", help="Comma-separated variants, each an arm."),
    arm: Optional[list[str]] = typer.Option(
        None, "--arm", help="An arm as NAME=VARIANT:key=value,key=value (repeatable), e.g."
                            " --arm no_ema=trm_paper:callbacks.ema=null"),
    arms: Optional[str] = typer.Option(
        None, "--arms", help="Named arm sets against --base: ema, recursion, mixer, layers, deep-supervision,"
                             " baseline, or paper (all of them); comma-separated"),
    base: str = typer.Option("trm_paper", "--base", help="The variant --arms sets vary (its arm is 'base')."),
    task: Optional[str] = typer.Option(None, "--task", help="One task for every arm (default: the first arm's)."),
    seeds: int = typer.Option(1, "--seeds", min=1, help="Runs per arm (seeds 0..N-1); 3 or more for a spread."),
    minutes: float = typer.Option(2.0, "--minutes", help="Wall-clock training budget per run."),
    set_: Optional[list[str]] = typer.Option(
        None, "--set", help="Override a config value: --set model.d_model=128 (repeatable). Applies to every arm."),
    out: Optional[Path] = typer.Option(None, "--out", help="Ablation folder (default runs/<time>-ablation)."),
    jobs: int = typer.Option(1, "--jobs", min=1, help="Runs at a time, each a process with cores/JOBS threads"
                                                      " (unless --set trainer.threads=...)."),
) -> None:
    """Train every arm on the same task, data and budget; report mean ± std over seeds.

    Arms come from --variants, then --arms (expanded against --base), then each --arm, in that
    order; the first arm's task and optimizer settings are every arm's.
    """
    from agent_forge.phases.cognate.ablation import expand_arm_sets, parse_arm, run_ablation

    overrides = list(set_ or ())
    chosen: list = [v.strip() for v in (variants_ or "").split(",") if v.strip()]
    if arms:
        chosen += expand_arm_sets(get_host(), [a.strip() for a in arms.split(",") if a.strip()], base, overrides)
    chosen += [parse_arm(text) for text in arm or ()]
    summary = run_ablation(get_host(), chosen, task=task, seeds=seeds, minutes=minutes,
                           overrides=overrides, out=out, jobs=jobs)
    emit_json(summary)


def show(
    artifact: Path = typer.Argument(..., help="Artifact manifest (.json) to watch."),
    data: Path = typer.Option(..., "--data", help="Data file in the task's layout (CSV question,answer for puzzles)."),
    index: int = typer.Option(0, "--index", help="Which puzzle: 0 is the file's first data row (CSV row 2)."),
    n_sup: Optional[int] = typer.Option(None, "--n-sup", min=1, max=MAX_N_SUP,
                                        help="Run this many supervision steps (at most 1024; default: the"
                                        " model's n_sup)."),
    gif: Optional[Path] = typer.Option(None, "--gif", help="Also write the steps as an animated GIF."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Print one puzzle's answer after every supervision step, with the halting probability."""
    import sys

    from rich.console import Console

    from agent_forge.phases.cognate.show import check_gif_path, render_trace, trace_puzzle, write_gif

    if gif is not None:
        check_gif_path(gif)  # before the model runs
    trace = trace_puzzle(get_host(), artifact, data, index, n_sup=n_sup)
    written = write_gif(trace, gif) if gif is not None else None
    if as_json:
        emit_json({**trace.as_json(), "gif": str(written) if written else None})
        return
    out = Console(file=sys.stdout, highlight=False)
    for part in render_trace(trace):
        out.print(part)
    if written:
        out.print(f"gif: {written} ({len(trace.steps)} frames)", soft_wrap=True)


def add_commands(cli: typer.Typer) -> None:
    """Add ``variants``, ``eval``, ``ablate`` and ``show`` to the root app ``cli``."""
    cli.command()(variants)
    cli.command("eval")(eval_cmd)
    cli.command()(ablate)
    cli.command()(show)
