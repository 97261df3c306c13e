"""``forge eval --samples/--augment``, ``forge solve`` and ``agent_forge.solve``: test-time
exploration (:mod:`agent_forge.phases.common.exploration`) on a hand-off artifact.

The options are the same everywhere (:class:`ExploreOptions`); ``noise=None`` means the
documented default :data:`~agent_forge.phases.common.exploration.DEFAULT_NOISE` when
``samples > 1``.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from agent_forge.data import TaskData
from agent_forge.errors import ConfigError
from agent_forge.phases.common import exploration as ex
from agent_forge.phases.common.loading import load_model
from agent_forge.specs import DatasetSpec


@dataclass(frozen=True)
class ExploreOptions:
    """What ``--samples``, ``--noise``, ``--select``, ``--augment``, ``--seed`` and
    ``--early-exit`` ask for."""

    samples: int = 1
    noise: float | None = None
    select: str = "q"
    augment: int = 1
    seed: int = 0
    early_exit: bool = False

    @property
    def noise_used(self) -> float:
        """``noise``, or the default where it is None and there is more than one sample."""
        if self.noise is not None:
            return float(self.noise)
        return ex.DEFAULT_NOISE if self.samples > 1 else 0.0

    def check(self, task: TaskData) -> None:
        """Refuse options this task cannot honour, naming the flag and the fix."""
        if self.select not in ex.SELECTIONS:
            raise ConfigError(f"--select {self.select!r}: choose one of {', '.join(ex.SELECTIONS)}")
        if self.select == "verify" and task.check is None:
            raise ConfigError(f"--select verify: task {task.spec.name!r} has no answer checker (Sudoku and maze"
                              " have one); use --select q or --select vote")
        if self.augment > 1 and task.symmetries is None:
            raise ConfigError(f"--augment {self.augment}: task {task.spec.name!r} defines no symmetries to vote"
                              " over (Sudoku and maze do); use --augment 1")
        if self.augment < 1 or self.samples < 1:
            raise ConfigError(f"--samples {self.samples} --augment {self.augment}: both must be >= 1")

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "noise": self.noise_used}


def wants_exploration(samples: int, augment: int, early_exit: bool, plot: Path | None) -> bool:
    """Whether ``forge eval`` takes the exploration path (else its plain one, unchanged)."""
    return samples > 1 or augment > 1 or early_exit or plot is not None


def run_exploration(model: torch.nn.Module, task: TaskData, options: ExploreOptions, *, n_sup: int | None,
                    batch_size: int, device: torch.device, precision: str = "fp32",
                    compile_step: bool = False, on_batch: Callable[[int], None] | None = None) -> ex.Candidates:
    """The candidates of every question of ``task.eval`` under ``options``; ``compile_step``: the
    supervision step through ``torch.compile`` (:func:`~agent_forge.phases.common.exploration.compiled_forward`);
    ``on_batch(questions)`` after each batch (a progress bar)."""
    options.check(task)
    split = task.eval
    syms = task.symmetries(options.augment, options.seed) if options.augment > 1 else None
    return ex.explore(model, split.inputs, samples=options.samples, noise=options.noise_used, n_sup=n_sup,
                      batch_size=batch_size, device=device, seed=options.seed, symmetries=syms,
                      augment=options.augment, extras=split.extras, early_exit=options.early_exit,
                      precision=precision, compile=compile_step, on_batch=on_batch)


def explore_artifact_on_file(host: Any, manifest: Path, data: Path, options: ExploreOptions, *,
                             batch_size: int = 256, n_sup: int | None = None, device: str = "cpu",
                             split: str | None = None, predictions_path: Path | None = None,
                             overwrite: bool = False, compile_step: bool = False,
                             progress: bool = False) -> dict[str, Any]:
    """``forge eval`` with exploration: the metrics JSON (the chosen rule's exact accuracy, every
    rule's score, how often selection did worse than the noiseless answer, the accuracy-against-
    compute curve, wall time and examples·steps/s). ``data`` is a file or a dataset folder
    (``split``); ``predictions_path`` also writes the chosen answers, as plain ``forge eval`` does.
    ``compile_step``: ``forge eval --compile`` (the compile's seconds are reported apart from
    ``wall_s``, which is the evaluation's own). ``progress``: a bar over the questions on a
    terminal, an ``eval.progress`` line every 30 s off one (K x N trajectories can take minutes)."""
    from agent_forge.phases.cognate.evaluate import (check_data_and_split, check_predictions_path, eval_task,
                                                     save_predictions)
    from agent_forge.phases.cognate.training_config import resolve_device, resolve_precision
    from agent_forge.phases.cognate.weights import EvalBar

    where = resolve_device(device)
    split_name = check_data_and_split(data, split)
    if predictions_path is not None:
        check_predictions_path(predictions_path, overwrite)
    artifact, model = load_model(host, manifest)
    model.to(where)
    task = eval_task(host, artifact, data, split_name, manifest)
    precision = resolve_precision("auto", where) if where.type == "cuda" else "fp32"
    with EvalBar(progress, len(task.eval), field="data") as bar:
        bar.label(Path(data).name)
        cands = run_exploration(model, task, options, n_sup=n_sup, batch_size=batch_size, device=where,
                                precision=precision, compile_step=compile_step, on_batch=bar.advance)
    split = task.eval
    ignore = task.spec.ignore_index
    scored = ex.score(cands, split.inputs, split.targets, check=task.check, ignore_index=ignore)
    chosen = scored.selections[options.select]
    steps = cands.trajectory_steps
    if predictions_path is not None:
        pick = ex.select(options.select, cands, split.inputs, task.check)
        save_predictions(predictions_path, ex.picked(cands, pick).numpy(), artifact.task.vocab_size)
    return {"artifact": artifact.id, "data": str(data), "examples": len(split), "device": str(where),
            **options.as_json(), "n_sup": cands.n_sup, "trained_n_sup": int(model.n_sup),
            "exact_accuracy": chosen.exact_accuracy, **scored.as_json(),
            "trajectory_steps": steps, "wall_s": round(cands.seconds, 3), "threads": torch.get_num_threads(),
            "load_average": round(os.getloadavg()[0], 2),
            "compiled": cands.compiled, "compile_s": cands.compile_seconds,
            **({"compile_fallback": cands.compile_fallback} if cands.compile_fallback else {}),
            "example_steps_per_s": round(steps / cands.seconds, 1) if cands.seconds > 0 else None,
            "curve": ex.compute_curve(cands, split.inputs, split.targets, check=task.check, ignore_index=ignore)}


def exploration_table(metrics: dict[str, Any]) -> str:
    """The selections and the curve of :func:`explore_artifact_on_file` as plain text."""
    from agent_forge.formatting import format_number

    def frac(v: float) -> str:
        return format_number(v, "fraction")

    lines = [f"noiseless (trajectory 0): {frac(metrics['noiseless_exact_accuracy'])}   best candidate (oracle):"
             f" {frac(metrics['oracle_exact_accuracy'])}"]
    for rule, s in metrics["selections"].items():
        note = "  (uses the task's checker)" if rule == "verify" else ""
        lines.append(f"select {rule:<6} {frac(s['exact_accuracy'])}   worse than noiseless: {s['worse_than_noiseless']}"
                     f"   better: {s['better_than_noiseless']}{note}")
    lines.append("")
    rows = [("K", "aug", "traj.steps", *[f"{r}" for r in metrics["selections"]])]
    for p in metrics.get("curve") or []:
        rows.append((str(p["samples"]), str(p["augment"]), str(p["trajectory_steps"]),
                     *[frac(p["selections"][r]["exact_accuracy"]) for r in metrics["selections"]]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in rows]
    return "\n".join(lines)


def plot_curve(metrics: dict[str, Any], path: Path) -> Path:
    """Write the accuracy-against-compute curve (one line per selection and symmetry count,
    x = trajectory steps per puzzle, log scale) as an image (PNG, SVG or PDF by suffix)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is a dependency of the dev install
        raise ConfigError(f"--plot {path}: needs matplotlib (pip install matplotlib)") from None
    path = Path(path)
    if path.suffix.lower() not in (".png", ".svg", ".pdf"):
        raise ConfigError(f"--plot {path}: name a .png, .svg or .pdf file")
    curve = metrics["curve"]
    n = max(metrics["examples"], 1)
    fig, ax = plt.subplots(figsize=(6, 4))
    for aug in sorted({p["augment"] for p in curve}):
        pts = [p for p in curve if p["augment"] == aug]
        for i, rule in enumerate(metrics["selections"]):
            ax.plot([p["trajectory_steps"] / n for p in pts], [p["selections"][rule]["exact_accuracy"] for p in pts],
                    marker="o", label=f"{rule}, {aug} symmetr{'y' if aug == 1 else 'ies'}")
            for p in pts if i == 0 else ():  # one K label per point
                ax.annotate(f"K={p['samples']}", (p["trajectory_steps"] / n, p["selections"][rule]["exact_accuracy"]),
                            fontsize=7, textcoords="offset points", xytext=(3, -9))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("supervision steps per puzzle (all trajectories)")
    ax.set_ylabel("exact accuracy")
    ax.set_title(f"{Path(metrics['data']).name}: noise {metrics['noise']}, seed {metrics['seed']}", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


# -- one puzzle ----------------------------------------------------------------------------------
def task_for_solving(host: Any, artifact: Any) -> TaskData:
    """The artifact's task, built small (one generated example per split, no files, no cache):
    only its question parser, decoder, symmetries and checker are used."""
    from agent_forge.config import validate

    dataset = artifact.task.info.get("dataset") or {"name": artifact.task.name, "config": {}}
    reg = host.get(DatasetSpec, dataset["name"])
    fields = reg.config.model_fields
    small = {k: v for k, v in (("train_count", 1), ("eval_count", 1), ("cache", False), ("train_file", None),
                               ("eval_file", None), ("train_rows", None), ("eval_rows", None)) if k in fields}
    cfg = validate(reg.config, {**dataset["config"], **small}, "task")
    task = reg.build(cfg, int(artifact.task.info.get("data_seed", 0)))
    if task.parse_question is None:
        raise ConfigError(f"task {dataset['name']!r} cannot read a single puzzle (its TaskData has no"
                          " parse_question); use forge eval with a data file")
    return task


def solve_puzzle(host: Any, manifest: Path, puzzle: str, options: ExploreOptions = ExploreOptions(), *,
                 n_sup: int | None = None, device: str = "cpu", trajectories: bool = False) -> dict[str, Any]:
    """Solve one question (a grid string as in the task's CSV files) with ``options``.

    Returns ``answer`` (the grid string), ``grid`` (rows of cells), ``q`` (the picked
    trajectory's halting margin), ``halt_prob``, ``steps``, ``picked`` (candidate index; 0 is the
    noiseless trajectory), ``valid`` (the task's checker, where it has one) and, with
    ``trajectories``, every candidate's answer, q and steps.
    """
    from agent_forge.phases.cognate.training_config import resolve_device

    where = resolve_device(device)
    artifact, model = load_model(host, manifest)
    model.to(where)
    task = task_for_solving(host, artifact)
    question = task.parse_question(puzzle).unsqueeze(0)
    return {"artifact": artifact.id, "puzzle": puzzle,
            **_solve_one(model, task, question, options, n_sup=n_sup, device=where, trajectories=trajectories)}


def _solve_one(model: torch.nn.Module, task: TaskData, question: torch.Tensor, options: ExploreOptions, *,
               n_sup: int | None, device: torch.device, trajectories: bool,
               target: torch.Tensor | None = None) -> dict[str, Any]:
    options.check(task)
    syms = task.symmetries(options.augment, options.seed) if options.augment > 1 else None
    cands = ex.explore(model, question, samples=options.samples, noise=options.noise_used, n_sup=n_sup,
                       device=device, seed=options.seed, symmetries=syms, augment=options.augment,
                       early_exit=options.early_exit, batch_size=max(256, options.samples * options.augment))
    idx = ex.select(options.select, cands, question, task.check)
    pick = int(idx[0])
    answer = cands.answers[0, pick]
    q = float(cands.q[0, pick])
    decode = task.decode_grid or (lambda t: [[str(v) for v in t.tolist()]])

    def text(tokens: torch.Tensor) -> str:
        return "".join("".join(row) for row in decode(tokens))

    def verdict(tokens: torch.Tensor) -> bool | None:
        return None if task.check is None else bool(task.check(question, tokens.unsqueeze(0))[0])

    def right(tokens: torch.Tensor) -> bool | None:
        return None if target is None else bool(ex.correct(tokens.view(1, 1, -1), target.view(1, -1),
                                                            task.spec.ignore_index)[0, 0])

    out: dict[str, Any] = {
        **options.as_json(), "answer": text(answer), "grid": decode(answer),
        "q": None if math.isnan(q) else q, "halt_prob": None if math.isnan(q) else 1 / (1 + math.exp(-q)),
        "steps": int(cands.steps[0, pick]), "picked": pick, "valid": verdict(answer)}
    if target is not None:
        out["correct"] = right(answer)
    if trajectories:
        out["trajectories"] = []
        for c in range(cands.answers.shape[1]):
            qc = float(cands.q[0, c])
            item = {"index": c, "symmetry": c // cands.samples, "sample": c % cands.samples,
                    "noise": 0.0 if c % cands.samples == 0 else cands.noise, "q": None if math.isnan(qc) else qc,
                    "steps": int(cands.steps[0, c]), "answer": text(cands.answers[0, c]),
                    "valid": verdict(cands.answers[0, c])}
            if target is not None:
                item["correct"] = right(cands.answers[0, c])
            out["trajectories"].append(item)
    return out


def trajectories_of(host: Any, manifest: Path, data: Path, index: int, options: ExploreOptions, *,
                    n_sup: int | None = None) -> dict[str, Any]:
    """``forge show --samples K``: every candidate of puzzle ``index`` of ``data`` (its answer, q,
    steps, whether the checker accepts it and whether it is right), which one ``--select`` picks."""
    from agent_forge.phases.cognate.evaluate import task_from_file

    artifact, model = load_model(host, manifest)
    task = task_from_file(host, artifact, data)
    if not 0 <= index < len(task.eval):
        raise ConfigError(f"--index {index}: {data} holds {len(task.eval)} puzzle(s); pass 0 to {len(task.eval) - 1}")
    question = task.eval.inputs[index:index + 1].long()
    return {"artifact": artifact.id, "data": str(data), "index": index,
            **_solve_one(model, task, question, options, n_sup=n_sup, device=torch.device("cpu"), trajectories=True,
                         target=task.eval.targets[index].long())}
