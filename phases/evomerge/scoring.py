"""Scoring candidates: fitness on a selection split, judgement on the task's eval split.

Every choice the phase makes (who survives, who breeds, what is handed on) reads only the
*selection* split, which never holds a row of the eval split: it is the validation split the
inputs' Cognate run held out of its training rows (``validation_samples``, recorded in the
artifacts and carved again here from the same seed), or, where the inputs held none out, a seeded
sample of the training rows (they trained on those, so fitness then also rewards fitting them;
the log and the report say so). The first ``heldout_samples`` rows of the eval split are the
*held-out* split: measured for the inputs and for each generation's best, only reported.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import torch
from torch import nn

from agent_forge.data import TaskData
from agent_forge.errors import ConfigError
from agent_forge.phases.common.evaluation import EvalContext, run_evaluators
from agent_forge.phases.common.validation import validation_rows
from agent_forge.phases.evomerge.config import EvoMergeConfig
from agent_forge.phases.evomerge.population import Candidate

SPLITS = ("selection", "heldout")


class Scorer:
    """Runs the configured evaluators on one split; ``templates[i]`` is a model built with the
    inputs' ``i``-th distinct architecture config, into which a candidate's weights are loaded.
    ``seed``: the inputs' data seed, which draws the training rows when there is no validation
    split."""

    def __init__(self, host: Any, cfg: EvoMergeConfig, task: TaskData, templates: list[nn.Module],
                 seed: int = 0) -> None:
        self.host, self.cfg, self.templates = host, cfg, templates
        self.selection_from: Literal["validation", "training"]
        if task.validation is not None:
            self.selection_from, pool = "validation", task.validation
        else:
            self.selection_from = "training"
            pool = task.train.subset(validation_rows(task.train, min(cfg.selection_samples, len(task.train)), seed))
        sel, held = min(cfg.selection_samples, len(pool)), min(cfg.heldout_samples, len(task.eval))
        self.splits = {"selection": dataclasses.replace(task, eval=pool.subset(slice(0, sel))),
                       "heldout": dataclasses.replace(task, eval=task.eval.subset(slice(0, held)))}
        self.sizes = {"selection": sel, "heldout": held, "eval": len(task.eval)}
        self.counts = {"selection": 0, "heldout": 0}

    def metrics(self, candidate: Candidate, split: str) -> dict[str, float]:
        model = self.templates[candidate.config]
        model.load_state_dict(candidate.state, strict=True)
        ctx = EvalContext(model, self.splits[split], torch.device("cpu"))
        metrics = run_evaluators(self.host, self.cfg.evaluators, ctx)
        self.counts[split] += 1
        for field, name in (("metric", self.cfg.metric), ("tiebreak", self.cfg.tiebreak)):
            if name is not None and name not in metrics:
                raise ConfigError(f"evomerge.{field}={name!r} is not produced by evomerge.evaluators="
                                  f"{self.cfg.evaluators}; they produce: {', '.join(sorted(metrics))}")
        return metrics

    def selection(self, candidates: list[Candidate]) -> None:
        for c in candidates:
            c.selection = self.metrics(c, "selection")

    def heldout(self, candidate: Candidate) -> dict[str, float]:
        if candidate.heldout is None:
            candidate.heldout = self.metrics(candidate, "heldout")
        return candidate.heldout
