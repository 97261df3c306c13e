"""report.md for a Cognate run: a table per model and PNG plots of the training curves.

Numbers go through :func:`agent_forge.formatting.format_number` (``134,337`` parameters,
accuracies as ``0.912``, seconds rounded); a missing value prints as ``n/a``.

Windows where no sample halted: a training metrics row's ``mean_sup_steps`` and
``train_exact_at_halt`` are averages over the samples that finished in that log window, and the
metrics accumulator writes 0 for both when none did (a 0/1 guard). A finished sample always has
at least one supervision step, so ``mean_sup_steps == 0`` marks such a window; here both values
are read as missing there (:func:`at_halt`), never as "0 steps" or "0 right".
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from agent_forge.files import atomic_write_bytes
from agent_forge.formatting import format_number

#: Training-row metrics that average over the samples that halted in the log window.
AT_HALT_KEYS = ("mean_sup_steps", "train_exact_at_halt")


def halted_in_window(row: dict[str, Any]) -> bool:
    """Whether any sample finished in this metrics row's log window."""
    steps = row.get("mean_sup_steps")
    return isinstance(steps, (int, float)) and steps > 0


def at_halt(row: dict[str, Any], key: str) -> float | None:
    """``row[key]``; None for an at-halt metric in a window where no sample halted."""
    value = row.get(key)
    if value is None or (key in AT_HALT_KEYS and not halted_in_window(row)):
        return None
    return float(value)


def last_at_halt(history: list[dict[str, Any]], key: str = "mean_sup_steps") -> float | None:
    """The value of the last log window in which some sample halted; None when none did."""
    for row in reversed(history):
        value = at_halt(row, key)
        if value is not None:
            return value
    return None


def plot_history(path: Path, histories: list[list[dict[str, Any]]], labels: list[str]) -> Path | None:
    """Loss, training exact accuracy at halt and mean supervision steps against time; None without data.

    Windows where nothing halted are gaps in the last two plots (NaN), not zeros.
    """
    if not any(histories):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nan = math.nan
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6), sharex=True)  # gaps must not shrink a time axis
    halted_any = False
    for rows, label in zip(histories, labels):
        t = [r["elapsed_s"] / 60 for r in rows]
        axes[0].plot(t, [r["loss"] for r in rows], label=label)
        for ax, key in ((axes[1], "train_exact_at_halt"), (axes[2], "mean_sup_steps")):
            values = [at_halt(r, key) for r in rows]
            halted_any = halted_any or any(v is not None for v in values)
            # Markers too, so a window with halting between two without still shows as a point.
            ax.plot(t, [nan if v is None else v for v in values], marker=".", markersize=4, label=label)
    for ax, title in zip(axes, ("training loss", "train exact accuracy (at halt)", "mean supervision steps")):
        ax.set_title(title)
        ax.set_xlabel("minutes")
        ax.grid(alpha=0.3)
    if not halted_any:
        for ax in axes[1:]:
            ax.text(0.5, 0.5, "no sample halted in any log window", ha="center", va="center",
                    transform=ax.transAxes, fontsize=8)
    axes[0].set_yscale("log")
    axes[1].set_ylim(-0.02, 1.02)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_steps(path: Path, per_model: list[dict[str, Any]]) -> Path | None:
    """Final eval accuracy against supervision steps (``steps.json`` of each model): exact solid,
    token dashed, one colour per model and weights; a marker at the Q-head's mean halting step
    and its exact accuracy. None when no model has the file."""
    import json

    curves = []
    for m in per_model:
        file = m.get("steps_file")
        if file and Path(file).exists():
            for label, curve in json.loads(Path(file).read_text()).items():
                if curve.get("steps"):
                    curves.append((f"model {m['index']} {label}", curve))
    if not curves:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, curve in curves:
        steps = [s["step"] for s in curve["steps"]]
        (line,) = ax.plot(steps, [s["exact_accuracy"] for s in curve["steps"]], marker=".", label=f"{label} exact")
        ax.plot(steps, [s["token_accuracy"] for s in curve["steps"]], linestyle="--", color=line.get_color(),
                label=f"{label} token")
        halt = curve.get("at_halt")
        if halt:
            ax.plot([halt["mean_halt_step"]], [halt["exact_accuracy"]], marker="x", markersize=9, linestyle="none",
                    color=line.get_color(), label=f"{label} at halt (mean step)")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("supervision steps")
    ax.set_ylabel("eval accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title("final evaluation: accuracy after each supervision step")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


REPORT_KEYS = ("raw/exact_accuracy", "ema/exact_accuracy", "raw/token_accuracy", "ema/token_accuracy",
               "mean_halt_steps", "mean_sup_steps", "early_stop_rate", "steps", "train_seconds", "parameters")


def write_report(run_dir: Path, cfg: Any, per_model: list[dict[str, Any]], variant: str | None) -> Path:
    plot = plot_history(run_dir / "training.png", [m["history"] for m in per_model],
                        [f"model {m['index']} (seed {m['seed']})" for m in per_model])
    lines = [f"# Cognate run `{run_dir.name}`", "",
             f"Variant **{variant or '-'}**, architecture `{cfg.architecture}`, task `{cfg.task_name}`.", ""]
    keys = REPORT_KEYS
    lines.append("| model | seed | status | hand-off | " + " | ".join(keys) + " |")
    lines.append("|" + "---|" * (4 + len(keys)))
    for m in per_model:
        vals = [format_number(m["metrics"].get(k), "auto", key=k) for k in keys]
        lines.append(f"| {m['index']} | {m['seed']} | {m['status']} ({m['stop_reason']}) | {m['chosen_weights']} | "
                     + " | ".join(vals) + " |")
    lines += ["", "Exact accuracy is measured on the held-out split after all supervision steps; the hand-off"
              " is the EMA weights when EMA is on, else the raw ones, fixed by the config and never chosen by a"
              " score on this split, which is only reported. `mean_sup_steps` is the mean number"
              " of supervision steps of the samples that halted in the last log window where any did"
              " (n/a: none halted); `n/a` marks a value that was not measured.", ""]
    if plot:
        lines += [f"![training curves]({plot.name})", ""]
    steps_plot = plot_steps(run_dir / "steps.png", per_model)
    if steps_plot:
        lines += ["Accuracy after every supervision step on the whole eval split (`steps.json` beside each"
                  " model's metrics; ✕: at the Q-head's halting step, placed at the mean halting step):", "",
                  f"![accuracy against supervision steps]({steps_plot.name})", ""]
    lines += ["Config: `config.json`. Metrics over time: `metrics.jsonl`.", ""]
    path = run_dir / "report.md"
    atomic_write_bytes(path, "\n".join(lines).encode())
    return path
