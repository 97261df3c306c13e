"""``forge eval``: a verified hand-off artifact evaluated on a user's data file."""

from __future__ import annotations

from pathlib import Path
from typing import Any


from agent_forge.config import validate
from agent_forge.contracts import ModelArtifact
from agent_forge.data import TaskData
from agent_forge.errors import ConfigError
from agent_forge.phases.common.evaluation import EvalContext, run_evaluators, step_curve
from agent_forge.phases.common.loading import load_model

FILE_EVALUATORS = ("exact", "token", "halting")


def check_data_file(data: Path, flag: str = "--data") -> None:
    """Refuse a data file that is missing, a folder, or not text (a NUL byte or not UTF-8 in its
    first 64 KiB): every task's ``eval_file`` reader reads text."""
    data = Path(data)
    if data.is_dir():
        raise ConfigError(f"{flag} {data}: is a folder; name a data file (a question,answer CSV for puzzles:"
                          " forge data generate TASK --out FILE writes one)")
    if not data.exists():
        raise ConfigError(f"{flag} {data}: no such file")
    with open(data, "rb") as f:
        head = f.read(1 << 16)
    problem = None
    if bytes(1) in head:
        problem = f"a NUL byte at offset {head.index(bytes(1))}"
    else:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.start < len(head) - 3 or len(head) < (1 << 16):  # not just a character cut at the end
                problem = f"byte {head[exc.start]:#04x} at offset {exc.start} is not UTF-8"
    if problem:
        raise ConfigError(f"{flag} {data}: is not a text file ({problem}); pass a UTF-8 data file in the"
                          " task's layout (a question,answer CSV for puzzles)")


def task_from_file(host: Any, artifact: ModelArtifact, data: Path) -> TaskData:
    """The artifact's task rebuilt on a user's file, read by the dataset's ``eval_file`` reader.

    The task spec records the dataset and its config (``task.info["dataset"]``); the file becomes
    both splits, so nothing is generated and the eval split is exactly the file, in its order.
    """
    dataset = artifact.task.info.get("dataset") or {"name": artifact.task.name, "config": {}}
    reg = host.get("dataset", dataset["name"])
    if "eval_file" not in reg.config.model_fields:
        raise ConfigError(f"task {dataset['name']!r} cannot read a data file (its config has no eval_file)")
    # Row subsets the training run read (train_rows, eval_rows) do not apply: the split is the file.
    subsets = {k: None for k in ("train_rows", "eval_rows") if k in reg.config.model_fields}
    cfg = validate(reg.config, {**dataset["config"], **subsets, "train_file": str(data), "eval_file": str(data)},
                   "task")
    return reg.obj(cfg, int(artifact.task.info.get("data_seed", 0)))


def evaluate_artifact_on_file(host: Any, manifest: Path, data: Path, *, batch_size: int = 256,
                              n_sup: int | None = None, device: str = "cpu") -> dict[str, Any]:
    """Load a verified artifact, read ``data`` with its task's ``eval_file`` reader, return metrics.

    ``n_sup``: supervision steps to run (default: the model's own); the metrics are those after
    the last step, and ``steps`` holds exact and token accuracy after every step up to it, with
    ``at_halt`` at the Q-head's halting step (:func:`~agent_forge.phases.common.evaluation.step_curve`).
    ``device``: ``cpu``, ``cuda[:i]`` or ``auto``; on CUDA the forward runs in bf16, as training does.
    """
    from agent_forge.phases.cognate.training_config import resolve_device, resolve_precision

    where = resolve_device(device, "--device")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size!r}: must be an integer >= 1")
    check_data_file(data)
    artifact, model = load_model(host, manifest)
    model.to(where)
    task = task_from_file(host, artifact, data)
    ctx = EvalContext(model, task, where, batch_size=batch_size, n_sup=n_sup,
                      precision=resolve_precision("auto", where) if where.type == "cuda" else "fp32")
    metrics: dict[str, Any] = run_evaluators(host, list(FILE_EVALUATORS), ctx)
    curve = step_curve(ctx)
    return {"artifact": artifact.id, "data": str(data), "examples": len(task.eval), "device": str(where), **metrics,
            "n_sup": curve["n_sup"], "trained_n_sup": int(getattr(model, "n_sup", 1)),
            "steps": curve["steps"], "at_halt": curve["at_halt"]}


def steps_table(metrics: dict[str, Any]) -> str:
    """The ``steps`` and ``at_halt`` of :func:`evaluate_artifact_on_file` as a plain-text table."""
    from agent_forge.formatting import format_number

    trained = metrics.get("trained_n_sup")
    rows = [("step", "exact", "token", "")]
    for s in metrics.get("steps") or []:
        note = "trained n_sup" if s["step"] == trained else ""
        rows.append((str(s["step"]), format_number(s["exact_accuracy"], "fraction"),
                     format_number(s["token_accuracy"], "fraction"), note))
    halt = metrics.get("at_halt")
    if halt:
        rows.append(("halt", format_number(halt["exact_accuracy"], "fraction"),
                     format_number(halt["token_accuracy"], "fraction"),
                     f"at the Q-head's halting step (mean {format_number(halt['mean_halt_step'], 'float')})"))
    else:
        rows.append(("halt", "n/a", "n/a", "no halting head: every sample runs all steps"))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r[:3], widths)) + (f"  {r[3]}" if r[3] else "")
                     for r in rows)
