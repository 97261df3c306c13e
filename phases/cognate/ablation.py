"""``forge ablate``: every arm trained on the same task, data, optimizer and wall-clock budget.

Fairness rules, enforced here rather than trusted to the variants:

* one task section for every arm (``--task`` or the first arm's), and one ``data_seed``, so every
  arm trains and is evaluated on the same generated puzzles;
* one optimizer setting (lr, batch, weight decay, warm-up) for every arm, taken from the first
  arm's trainer section; only the architecture and its callbacks differ;
* the same ``--minutes`` budget per run, with no step limit, so faster arms get more steps;
* seeds 0..K-1 for every arm; results are mean ± std over seeds.

Nothing here is expected to win: ``ablation.md`` says which arm scored highest, by how much, and
whether the gap is larger than the seed-to-seed spread.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from agent_forge.checkpoint import atomic_write_bytes, atomic_write_json
from agent_forge.plugin_host import PluginHost
from agent_forge.runner import PhaseRunner, RunOptions

SHARED_TRAINER_KEYS = ("batch_size", "lr", "weight_decay", "betas", "warmup_steps", "schedule", "grad_clip",
                       "precision", "eval_every", "eval_samples")
REPORTED = ("exact_accuracy", "token_accuracy", "raw/exact_accuracy", "ema/exact_accuracy", "raw/token_accuracy",
            "ema/token_accuracy", "parameters", "steps", "train_seconds", "mean_sup_steps", "early_stop_rate",
            "final_loss", "effective_depth")


def run_ablation(host: PluginHost, arms: list[str], *, task: str | None, seeds: int, minutes: float,
                 overrides: list[str], out: Path | None, progress: bool = True) -> dict[str, Any]:
    if not arms:
        from agent_forge.errors import ConfigError

        raise ConfigError("--variants: name at least one variant")
    for arm in arms:
        host.get("variant", arm)
    out = out or Path("runs") / f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-ablation"
    first = host.get("variant", arms[0]).obj
    task_section = {"name": task} if task else dict(first["task"])
    shared = {k: v for k, v in first.get("trainer", {}).items() if k in SHARED_TRAINER_KEYS}
    common = [f"task={_flow(task_section)}", "trainer.max_steps=null", f"trainer.minutes={minutes}"]
    common += [f"trainer.{k}={_flow(v)}" for k, v in shared.items()]
    runner = PhaseRunner(host)
    rows: dict[str, list[dict[str, float]]] = {}
    for arm in arms:
        for seed in range(seeds):
            result = runner.run("cognate", RunOptions(variant=arm, seed=seed, overrides=tuple(common + overrides),
                                                      progress=progress), run_dir=out / arm / f"seed-{seed}")
            m = dict(result.metrics)
            history = result.details["models"][0]["history"]
            m["final_loss"] = history[-1]["loss"] if history else float("nan")
            m["effective_depth"] = _effective_depth(host, result.run_dir)
            rows.setdefault(arm, []).append(m)
    summary = {arm: {k: _mean_std([r[k] for r in runs if k in r]) for k in REPORTED} for arm, runs in rows.items()}
    verdict = _verdict(summary)
    data = {"arms": arms, "task": task_section, "seeds": seeds, "minutes": minutes, "shared_trainer": shared,
            "overrides": overrides, "summary": summary, "runs": rows, "verdict": verdict, "out": str(out)}
    atomic_write_json(out / "ablation.json", data)
    _plot(out / "ablation.png", out, arms, seeds)
    atomic_write_bytes(out / "ablation.md", _markdown(data).encode())
    return data


def _effective_depth(host: PluginHost, run_dir: Path) -> float:
    """From the run's resolved config, through the architecture's own config model."""
    import json

    model = dict(json.loads((run_dir / "config.json").read_text())["config"]["model"])
    reg = host.get("architecture", model.pop("architecture"))
    cfg = reg.config(**model) if reg.config is not None else None
    depth = getattr(cfg, "effective_depth", None)
    return float(depth()) if callable(depth) else float("nan")


def _flow(value: Any) -> str:
    import json

    return json.dumps(value)


def _mean_std(values: list[float]) -> dict[str, float] | None:
    if not values:
        return None
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "n": float(len(values))}


def _verdict(summary: dict[str, dict[str, Any]]) -> str:
    scored = [(arm, s["exact_accuracy"]) for arm, s in summary.items() if s.get("exact_accuracy")]
    if len(scored) < 2:
        return "only one arm: nothing to compare"
    scored.sort(key=lambda x: -x[1]["mean"])
    (best, b), (second, c) = scored[0], scored[1]
    gap = b["mean"] - c["mean"]
    spread = max(b["std"], c["std"])
    if gap == 0:
        return f"{best} and {second} tie on exact accuracy ({b['mean']:.4f})"
    judged = "larger" if gap > 2 * spread else "not larger"
    return (f"{best} has the highest exact accuracy ({b['mean']:.4f} ± {b['std']:.4f}), {gap:.4f} above {second};"
            f" the gap is {judged} than twice the seed-to-seed spread ({spread:.4f})")


def _markdown(data: dict[str, Any]) -> str:
    cols = ("exact_accuracy", "raw/exact_accuracy", "ema/exact_accuracy", "token_accuracy", "final_loss",
            "parameters", "effective_depth", "steps", "train_seconds", "mean_sup_steps", "early_stop_rate")
    lines = [f"# Ablation: {', '.join(data['arms'])}", "",
             f"Task `{data['task']}`, {data['seeds']} seed(s) per arm, {data['minutes']} min per run, shared"
             f" optimizer settings `{data['shared_trainer']}`. Values are mean ± std over seeds.", "",
             "| arm | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for arm, s in data["summary"].items():
        cells = [f"{s[c]['mean']:.4g} ± {s[c]['std']:.2g}" if s.get(c) else "-" for c in cols]
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    lines += ["", f"**Verdict:** {data['verdict']}.", "", "![eval accuracy over time](ablation.png)", ""]
    return "\n".join(lines)


def _plot(path: Path, out: Path, arms: list[str], seeds: int) -> None:
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for arm in arms:
        for seed in range(seeds):
            metrics = out / arm / f"seed-{seed}" / "metrics.jsonl"
            if not metrics.exists():
                continue
            evals = [json.loads(line) for line in metrics.read_text().splitlines() if '"eval"' in line]
            evals = [e for e in evals if e.get("kind") == "eval"]
            if evals:
                key = "ema/exact_accuracy" if "ema/exact_accuracy" in evals[0] else "raw/exact_accuracy"
                ax.plot([e["elapsed_s"] / 60 for e in evals], [e[key] for e in evals],
                        label=f"{arm} s{seed} ({key.split('/')[0]})")
    ax.set_xlabel("minutes")
    ax.set_ylabel("eval exact accuracy")
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=7)
    else:
        ax.set_title("no evaluations during training (trainer.eval_every is off)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
