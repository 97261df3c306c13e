"""report.md for a Cognate run: a table per model and PNG plots of the training curves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agent_forge.checkpoint import atomic_write_bytes


def plot_history(path: Path, histories: list[list[dict[str, Any]]], labels: list[str]) -> Path | None:
    """Loss, training exact accuracy and mean supervision steps against time; None without data."""
    if not any(histories):
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for rows, label in zip(histories, labels):
        t = [r["elapsed_s"] / 60 for r in rows]
        axes[0].plot(t, [r["loss"] for r in rows], label=label)
        axes[1].plot(t, [r.get("train_exact_at_halt", 0.0) for r in rows], label=label)
        axes[2].plot(t, [r.get("mean_sup_steps", 0.0) for r in rows], label=label)
    for ax, title in zip(axes, ("training loss", "train exact accuracy (at halt)", "mean supervision steps")):
        ax.set_title(title)
        ax.set_xlabel("minutes")
        ax.grid(alpha=0.3)
    axes[0].set_yscale("log")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write_report(run_dir: Path, cfg: Any, per_model: list[dict[str, Any]], variant: str | None) -> Path:
    plot = plot_history(run_dir / "training.png", [m["history"] for m in per_model],
                        [f"model {m['index']} (seed {m['seed']})" for m in per_model])
    lines = [f"# Cognate run `{run_dir.name}`", "",
             f"Variant **{variant or '-'}**, architecture `{cfg.architecture}`, task `{cfg.task_name}`.", ""]
    keys = ["raw/exact_accuracy", "ema/exact_accuracy", "raw/token_accuracy", "ema/token_accuracy",
            "mean_halt_steps", "mean_sup_steps", "early_stop_rate", "steps", "train_seconds", "parameters"]
    lines.append("| model | seed | status | hand-off | " + " | ".join(keys) + " |")
    lines.append("|" + "---|" * (4 + len(keys)))
    for m in per_model:
        vals = [f"{m['metrics'][k]:.4g}" if k in m["metrics"] else "-" for k in keys]
        lines.append(f"| {m['index']} | {m['seed']} | {m['status']} ({m['stop_reason']}) | {m['chosen_weights']} | "
                     + " | ".join(vals) + " |")
    lines += ["", "Exact accuracy is measured on the held-out split after all supervision steps; the hand-off"
              " uses whichever of raw and EMA weights scores higher there.", ""]
    if plot:
        lines += [f"![training curves]({plot.name})", ""]
    lines += ["Config: `config.json`. Metrics over time: `metrics.jsonl`.", ""]
    path = run_dir / "report.md"
    atomic_write_bytes(path, "\n".join(lines).encode())
    return path
