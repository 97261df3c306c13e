"""``ablation.png``: every run's evaluation score over wall-clock minutes, one curve per arm and seed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent_forge.phases.cognate.ablation.stats import SCORES


def _plotted_metric(evals: list[dict[str, Any]]) -> str | None:
    keys = set(evals[0])
    return next((m for m, _ in SCORES if keys & {m, f"raw/{m}", f"ema/{m}"}), None)


def plot(path: Path, out: Path, arms: list[str], seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    metric: str | None = None  # one metric for every curve, the first SCORES entry the evaluations have
    for arm in arms:
        for seed in range(seeds):
            metrics = out / arm / f"seed-{seed}" / "metrics.jsonl"
            if not metrics.exists():
                continue
            evals = [json.loads(line) for line in metrics.read_text().splitlines() if '"eval"' in line]
            evals = [e for e in evals if e.get("kind") == "eval"]
            if not evals:
                continue
            metric = metric or _plotted_metric(evals)
            if metric is None:
                continue
            key = next((k for k in (f"ema/{metric}", f"raw/{metric}", metric) if k in evals[0]), None)
            points = [(e["elapsed_s"] / 60, e[key]) for e in evals if key and e.get(key) is not None]
            if points:
                ax.plot(*zip(*points), label=f"{arm} s{seed} ({key.split('/')[0] if '/' in key else 'final'})")
    ax.set_xlabel("minutes")
    ax.set_ylabel(f"eval {(metric or 'exact_accuracy').replace('_', ' ')}")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    else:
        ax.set_title("no evaluations during training (trainer.eval_every is off)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
