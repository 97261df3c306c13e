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
    artifact, model = load_model(host, manifest)
    task = task_from_file(host, artifact, data)
    ctx = EvalContext(model, task, torch.device("cpu"), batch_size=batch_size)
    metrics: dict[str, Any] = run_evaluators(host, list(FILE_EVALUATORS), ctx)
    return {"artifact": artifact.id, "data": str(data), "examples": len(task.eval), **metrics}
