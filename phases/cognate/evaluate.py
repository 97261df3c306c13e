"""``forge eval``: a verified hand-off artifact evaluated on a user's data file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from agent_forge.config import validate
from agent_forge.contracts import ModelArtifact
from agent_forge.data import TaskData
from agent_forge.errors import ConfigError
from agent_forge.phases.common.evaluation import EvalContext, run_evaluators
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
    cfg = validate(reg.config, {**dataset["config"], "train_file": str(data), "eval_file": str(data)}, "task")
    return reg.obj(cfg, int(artifact.task.info.get("data_seed", 0)))


def evaluate_artifact_on_file(host: Any, manifest: Path, data: Path, *, batch_size: int = 256) -> dict[str, Any]:
    """Load a verified artifact, read ``data`` with its task's ``eval_file`` reader, return metrics."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ConfigError(f"--batch-size {batch_size!r}: must be an integer >= 1")
    check_data_file(data)
    artifact, model = load_model(host, manifest)
    task = task_from_file(host, artifact, data)
    ctx = EvalContext(model, task, torch.device("cpu"), batch_size=batch_size)
    metrics: dict[str, Any] = run_evaluators(host, list(FILE_EVALUATORS), ctx)
    return {"artifact": artifact.id, "data": str(data), "examples": len(task.eval), **metrics}
