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
from agent_forge.errors import ConfigError
from agent_forge.formatting import format_number
from agent_forge.logging import stdout_console
from agent_forge.plugin_host import get_host
from agent_forge.progress import PROGRESS_LINE_EVERY_S

#: The most supervision steps ``forge eval``/``forge show --n-sup`` run: far past any trained
#: n_sup (16 in the presets), and each step is a full forward pass over the data.
MAX_N_SUP = 1024


def variants(as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
             counts: bool = typer.Option(True, "--counts/--no-counts",
                                         help="Build each model to count its parameters exactly.")) -> None:
    """List every variant: task, architecture, shape, effective depth and parameter count."""
    from agent_forge.phases.cognate.variants import describe_variants

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
    data: Path = typer.Option(..., "--data", help="Data file in the task's layout (CSV for puzzles), or a dataset"
                              " folder in the official TRM layout (train/ and test/, each a dataset.json)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
    batch_size: int = typer.Option(256, "--batch-size", min=1, help="Examples per inference batch."),
    n_sup: Optional[int] = typer.Option(None, "--n-sup", min=1, max=MAX_N_SUP, help="Run this many supervision"
                                        " steps (more or fewer than trained, at most 1024; default: the model's"
                                        " n_sup); accuracy after each."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda[:i] or auto."),
    split: Optional[str] = typer.Option(None, "--split", help="Which split of a dataset folder: test (default)"
                                        " or train."),
    save_predictions: Optional[Path] = typer.Option(
        None, "--save-predictions", help="Also write the predicted token ids after the last step to this .npy"
                                         " file: (examples, seq_len), in the data's order."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Let --save-predictions or --submission replace an"
                                   " existing file."),
    protocol: Optional[str] = typer.Option(None, "--protocol", help="Also score a dataset folder by a benchmark's"
                                           " rules: arc (votes over augmented versions, pass@k per puzzle)."),
    submission: Optional[Path] = typer.Option(None, "--submission", help="With --protocol arc: write the ARC Prize"
                                              " submission.json (two attempts per test input) to this file."),
    # -- test-time exploration (phases/cognate/explore.py; docs/cognate.md, "Thinking harder") --
    samples: int = typer.Option(1, "--samples", min=1, help="K trajectories per puzzle in one batched forward;"
                                " trajectory 0 is noiseless, the others add latent noise."),
    noise: Optional[float] = typer.Option(None, "--noise", min=0.0, help="Latent noise scale, relative to the"
                                          " latent's RMS (default with --samples > 1: 0.4, chosen on validation data)."),
    select: str = typer.Option("q", "--select", help="How one answer is picked among the candidates (see above)."),
    augment: int = typer.Option(1, "--augment", min=1, help="Vote over N of the task's symmetries (the first the"
                                " identity); combines with --samples."),
    seed: int = typer.Option(0, "--seed", help="Seed of the noise and of the symmetries drawn."),
    early_exit: bool = typer.Option(False, "--early-exit", help="A trajectory stops where its Q-head halts"
                                    " (default: all steps)."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write the accuracy-against-compute curve (.png/.svg)."),
    compile_step: bool = typer.Option(False, "--compile", help="Run the supervision step through torch.compile:"
                                      " faster on large evaluations after a compile of tens of seconds; answers"
                                      " equal eager's up to float rounding. Reports like --samples."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="A bar over the examples on a terminal;"
                                  f" elsewhere a plain progress line at the start, then every"
                                  f" {PROGRESS_LINE_EVERY_S:g} s (on stderr)."),
) -> None:
    """Evaluate a hand-off artifact on a user file or dataset folder; print the metrics JSON on
    stdout, with exact and token accuracy after every supervision step and at the Q-head's halting
    step, and the official TRM code's accuracy and exact accuracy.

    \b
    With --samples/--augment, --select picks one of the K x N candidates:
      q       the highest halting logit q_halt, the Q-head's surest (default)
      vote    the answer with the largest sum of sigmoid(q) over its candidates
      verify  the highest-q candidate the task's checker accepts (task rules)
    """
    from agent_forge.phases.cognate.evaluate import evaluate_artifact_on_file, protocol_table, steps_table
    from agent_forge.phases.cognate.explore import ExploreOptions, wants_exploration

    if wants_exploration(samples, augment, early_exit, plot) or compile_step:
        if protocol is not None or submission is not None:
            raise ConfigError("--protocol/--submission with --samples/--augment/--early-exit/--plot/--compile: the"
                              " ARC protocol votes over the folder's own augmentations; run them separately")
        _eval_exploring(artifact, data, ExploreOptions(samples, noise, select, augment, seed, early_exit),
                        plot=plot, as_json=as_json, batch_size=batch_size, n_sup=n_sup, device=device,
                        split=split, predictions_path=save_predictions, overwrite=overwrite, compile_step=compile_step,
                        progress=progress)
        return
    metrics = evaluate_artifact_on_file(get_host(), artifact, data, batch_size=batch_size, n_sup=n_sup,
                                        device=device, split=split, predictions_path=save_predictions,
                                        overwrite=overwrite, protocol=protocol, submission_path=submission,
                                        progress=progress)
    if as_json:
        emit_json(metrics)
        return
    out = stdout_console()
    width = max(len(key) for key in metrics)
    for key, value in metrics.items():
        if key not in ("steps", "at_halt", "protocol"):
            shown = format_number(value, "auto", key=key) if isinstance(value, (int, float)) else value
            out.print(f"{key:>{width}}: {shown}", soft_wrap=True)
    out.print(steps_table(metrics))
    if "protocol" in metrics:
        out.print(protocol_table(metrics), soft_wrap=True)


def _eval_exploring(artifact: Path, data: Path, options, *, plot: Optional[Path], as_json: bool, batch_size: int,
                    n_sup: Optional[int], device: str, split: Optional[str], predictions_path: Optional[Path],
                    overwrite: bool, compile_step: bool = False, progress: bool = False) -> None:
    from agent_forge.phases.cognate.explore import exploration_table, explore_artifact_on_file, plot_curve

    metrics = explore_artifact_on_file(get_host(), artifact, data, options, batch_size=batch_size, n_sup=n_sup,
                                       device=device, split=split, predictions_path=predictions_path,
                                       overwrite=overwrite, compile_step=compile_step, progress=progress)
    if predictions_path is not None:
        metrics["predictions"] = str(predictions_path)
    if plot is not None:
        metrics["plot"] = str(plot_curve(metrics, plot))
    if as_json:
        emit_json(metrics)
        return
    out = stdout_console()
    for key, value in metrics.items():
        if key not in ("selections", "curve"):
            shown = format_number(value, "auto", key=key) if isinstance(value, (int, float)) else value
            out.print(f"{key:>24}: {shown}", soft_wrap=True)
    out.print(exploration_table(metrics), soft_wrap=True)


def solve(
    artifact: Path = typer.Argument(..., help="Artifact manifest (.json) or export folder."),
    puzzle: str = typer.Argument(..., help="The question as in the task's CSV files, e.g. a Sudoku row by row"
                                           " with '.' for a blank."),
    samples: int = typer.Option(1, "--samples", min=1, help="K trajectories (0 noiseless), as forge eval."),
    noise: Optional[float] = typer.Option(None, "--noise", min=0.0, help="Relative latent noise (default 0.4"
                                          " with --samples > 1)."),
    select: str = typer.Option("q", "--select", help="q (highest q_halt), vote (q-weighted) or verify (task"
                                                     " checker)."),
    augment: int = typer.Option(1, "--augment", min=1, help="Vote over N of the task's symmetries."),
    seed: int = typer.Option(0, "--seed", help="Seed of the noise and the symmetries."),
    early_exit: bool = typer.Option(False, "--early-exit", help="Stop each trajectory where its Q-head halts."),
    n_sup: Optional[int] = typer.Option(None, "--n-sup", min=1, help="Supervision steps (default: the model's)."),
    trajectories: bool = typer.Option(False, "--trajectories", help="Also list every candidate (q, steps, answer)."),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda[:i] or auto."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Solve one puzzle: print the answer grid with its q, halting probability and steps."""
    from agent_forge.phases.cognate.explore import ExploreOptions, solve_puzzle

    result = solve_puzzle(get_host(), artifact, puzzle, ExploreOptions(samples, noise, select, augment, seed,
                                                                       early_exit),
                          n_sup=n_sup, device=device, trajectories=trajectories)
    if as_json:
        emit_json(result)
        return
    out = stdout_console()
    for row in result["grid"]:
        out.print(" ".join(row), highlight=False)
    q = "n/a" if result["q"] is None else f"{result['q']:.3f} (halt prob {result['halt_prob']:.3f})"
    valid = "" if result["valid"] is None else f"  valid: {'yes' if result['valid'] else 'no'}"
    out.print(f"answer: {result['answer']}", soft_wrap=True, highlight=False)
    out.print(f"q: {q}  steps: {result['steps']}  picked: trajectory {result['picked']} of"
              f" {result['samples'] * result['augment']}{valid}", soft_wrap=True, highlight=False)
    for t in result.get("trajectories") or []:
        mark = "*" if t["index"] == result["picked"] else " "
        tq = "n/a" if t["q"] is None else f"{t['q']:+.3f}"
        out.print(f"{mark} #{t['index']:<3} sym {t['symmetry']} noise {t['noise']:<4} q {tq} steps {t['steps']}"
                  f" {'ok ' if t['valid'] else 'bad' if t['valid'] is not None else ''} {t['answer']}",
                  soft_wrap=True, highlight=False)


def ablate(
    variants_: Optional[str] = typer.Option(None, "--variants", help="Comma-separated variants, each an arm."),
    arm: Optional[list[str]] = typer.Option(
        None, "--arm", help="An arm as NAME=VARIANT:key=value,key=value (repeatable), e.g."
                            " --arm no_ema=trm_paper:callbacks.ema=null"),
    arms: Optional[str] = typer.Option(
        None, "--arms", help="Named arm sets against --base: ema, recursion, mixer, layers, deep-supervision,"
                             " baseline, or paper (all of them); lm-seed002 (seed 002's LM experiments, with"
                             " --base lm_baseline_70m); comma-separated"),
    base: str = typer.Option("trm_paper", "--base", help="The variant --arms sets vary (its arm is 'base')."),
    task: Optional[str] = typer.Option(None, "--task", help="One task for every arm (default: the first arm's)."),
    seeds: int = typer.Option(1, "--seeds", min=1, help="Runs per arm (seeds 0..N-1); 3 or more for a spread."),
    minutes: Optional[float] = typer.Option(
        None, "--minutes", help="Wall-clock training budget per run, on the clock (default 2; the load while"
                                " each run trains decides its steps)."),
    max_steps: Optional[int] = typer.Option(
        None, "--max-steps", min=1, help="An equal step budget per run instead of --minutes (fair when the"
                                         " machine's load varies between runs)."),
    equal_time: Optional[float] = typer.Option(
        None, "--equal-time", help="Equal wall-clock as step counts: SECONDS of training per run; every arm's"
                                   " seconds per step is timed first, interleaved in one process, and its runs"
                                   " take round(SECONDS / that) steps (recorded in ablation.json/.md)."),
    arm_steps: Optional[str] = typer.Option(
        None, "--arm-steps", help="Each arm's step budget, ARM=STEPS,ARM=STEPS (every arm): reruns an"
                                  " --equal-time ablation exactly with the counts it recorded."),
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
    from agent_forge.phases.cognate.ablation.arms import parse_arm, parse_arm_steps
    from agent_forge.phases.cognate.ablation.catalogue import expand_arm_sets
    from agent_forge.phases.cognate.ablation.runner import run_ablation

    overrides = list(set_ or ())
    chosen: list = [v.strip() for v in (variants_ or "").split(",") if v.strip()]
    if arms:
        chosen += expand_arm_sets(get_host(), [a.strip() for a in arms.split(",") if a.strip()], base, overrides)
    chosen += [parse_arm(text) for text in arm or ()]
    summary = run_ablation(get_host(), chosen, task=task, seeds=seeds, minutes=minutes,
                           overrides=overrides, out=out, jobs=jobs, max_steps=max_steps, equal_time=equal_time,
                           arm_steps=parse_arm_steps(arm_steps) if arm_steps is not None else None)
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
    split: str = typer.Option("test", "--split", help="With a dataset folder (--data DIR): its train or test"
                                                      " split."),
    samples: int = typer.Option(1, "--samples", min=1, help="Instead: K trajectories of the puzzle (forge eval"
                                " --samples), each final answer with its q, and the one --select picks."),
    noise: Optional[float] = typer.Option(None, "--noise", min=0.0, help="With --samples: relative latent noise."),
    select: str = typer.Option("q", "--select", help="With --samples: q, vote or verify (forge eval --help)."),
    seed: int = typer.Option(0, "--seed", help="With --samples: the noise seed."),
) -> None:
    """Print one puzzle's answer after every supervision step, with the halting probability
    (with --samples: the final answer of each of K trajectories instead)."""
    import sys

    from rich.console import Console

    from agent_forge.phases.cognate.show import check_gif_path, render_trace, trace_puzzle, write_gif

    if samples > 1:
        _show_trajectories(artifact, data, index, samples, noise, select, seed, n_sup, as_json)
        return
    if gif is not None:
        check_gif_path(gif)  # before the model runs
    trace = trace_puzzle(get_host(), artifact, data, index, n_sup=n_sup, split_name=split)
    written = write_gif(trace, gif) if gif is not None else None
    if as_json:
        emit_json({**trace.as_json(), "gif": str(written) if written else None})
        return
    out = Console(file=sys.stdout, highlight=False)
    for part in render_trace(trace):
        out.print(part)
    if written:
        out.print(f"gif: {written} ({len(trace.steps)} frames)", soft_wrap=True)


def _show_trajectories(artifact: Path, data: Path, index: int, samples: int, noise: Optional[float], select: str,
                       seed: int, n_sup: Optional[int], as_json: bool) -> None:
    from agent_forge.phases.cognate.explore import ExploreOptions, trajectories_of

    r = trajectories_of(get_host(), artifact, data, index, ExploreOptions(samples, noise, select, 1, seed),
                        n_sup=n_sup)
    if as_json:
        emit_json(r)
        return
    out = stdout_console()
    out.print(f"puzzle {index} of {data}: {samples} trajectories, noise {r['noise']}, --select {select}",
              soft_wrap=True, highlight=False)
    for t in r["trajectories"]:
        mark = ">" if t["index"] == r["picked"] else " "
        q = "  n/a " if t["q"] is None else f"{t['q']:+6.2f}"
        check = "" if t["valid"] is None else (" valid" if t["valid"] else " invalid")
        out.print(f"{mark} #{t['index']:<3} noise {t['noise']:<5} q {q}  {'right' if t['correct'] else 'wrong'}"
                  f"{check}  {t['answer']}", soft_wrap=True, highlight=False)
    out.print(f"picked #{r['picked']} ({'right' if r['correct'] else 'wrong'}); #0 is the noiseless trajectory",
              highlight=False)
    for row in r["grid"]:
        out.print(" ".join(row), highlight=False)


def add_commands(cli: typer.Typer) -> None:
    """Add ``variants``, ``eval``, ``ablate``, ``show`` and ``solve`` to the root app ``cli``."""
    cli.command()(variants)
    cli.command("eval")(eval_cmd)
    cli.command()(ablate)
    cli.command()(show)
    cli.command()(solve)
