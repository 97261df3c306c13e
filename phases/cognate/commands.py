"""Cognate's commands: ``forge variants``, ``forge eval``, ``forge ablate`` and ``forge show``.

The core CLI knows none of them: the built-in phases plugin passes the root app to
:func:`add_commands` from its ``forge_register_commands`` hook, as any third-party plugin would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from agent_forge.cli import emit_json
from agent_forge.logging import console
from agent_forge.plugin_host import get_host


def variants(as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
             counts: bool = typer.Option(True, "--counts/--no-counts",
                                         help="Build each model to count its parameters exactly.")) -> None:
    """List every variant: task, architecture, shape, effective depth and parameter count."""
    from agent_forge.phases.cognate.phase import describe_variants

    rows = describe_variants(get_host(), with_parameters=counts)
    if as_json:
        emit_json(rows)
        return
    table = Table(title="Cognate variants")
    for col in ("variant", "task", "architecture", "d_model", "layers", "n", "T", "N_sup",
                "effective depth", "parameters"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["task"], r["architecture"], str(r.get("d_model")), str(r.get("layers")),
                      str(r.get("n")), str(r.get("T")), str(r.get("n_sup")), str(r.get("effective_depth")),
                      f"{r['parameters']:,}" if r.get("parameters") is not None else "-")
    console.print(table)


def eval_cmd(
    artifact: Path = typer.Argument(..., help="Artifact manifest (.json) to evaluate."),
    data: Path = typer.Option(..., "--data", help="Data file in the task's layout (CSV for puzzles)."),
    as_json: bool = typer.Option(False, "--json"),
    batch_size: int = typer.Option(256, "--batch-size"),
    n_sup: Optional[int] = typer.Option(None, "--n-sup", min=1, help="Run this many supervision steps (more or"
                                        " fewer than trained; default: the model's n_sup); accuracy after each."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda[:i] or auto."),
) -> None:
    """Evaluate a hand-off artifact on a user file; print the metrics JSON on stdout, with exact and
    token accuracy after every supervision step and at the Q-head's halting step."""
    from agent_forge.phases.cognate.evaluate import evaluate_artifact_on_file, steps_table

    metrics = evaluate_artifact_on_file(get_host(), artifact, data, batch_size=batch_size, n_sup=n_sup,
                                        device=device)
    if as_json or not console.is_terminal:
        emit_json(metrics)
    else:
        for key, value in metrics.items():
            if key not in ("steps", "at_halt"):
                console.print(f"{key:>22}: {value}")
        console.print(steps_table(metrics))


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
    seeds: int = typer.Option(1, "--seeds", min=1),
    minutes: float = typer.Option(2.0, "--minutes", help="Wall-clock training budget per run."),
    set_: Optional[list[str]] = typer.Option(
        None, "--set", help="Override a config value: --set model.d_model=128 (repeatable). Applies to every arm."),
    out: Optional[Path] = typer.Option(None, "--out"),
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
                           overrides=overrides, out=out)
    emit_json(summary)


def show(
    artifact: Path = typer.Argument(..., help="Artifact manifest (.json) to watch."),
    data: Path = typer.Option(..., "--data", help="Data file in the task's layout (CSV question,answer for puzzles)."),
    index: int = typer.Option(0, "--index", help="Which puzzle: 0 is the file's first data row (CSV row 2)."),
    n_sup: Optional[int] = typer.Option(None, "--n-sup", min=1,
                                        help="Run this many supervision steps (default: the model's n_sup)."),
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
