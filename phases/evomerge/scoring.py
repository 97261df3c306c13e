"""Scoring candidates: the task's eval split cut into a selection part and a held-out part.

The first ``selection_samples`` eval rows are where fitness is measured: every choice the phase
makes (who survives, who breeds, what is handed on) reads only them. The next
``heldout_samples`` rows are measured for the inputs and for each generation's best and are only
reported, so the report can say whether what evolution found also holds on puzzles it never
chose on.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from agent_forge.data import TaskData
from agent_forge.errors import ConfigError
from agent_forge.phases.common.evaluation import EvalContext, run_evaluators
from agent_forge.phases.evomerge.config import EvoMergeConfig
from agent_forge.phases.evomerge.population import Candidate

SPLITS = ("selection", "heldout")


class Scorer:
    """Runs the configured evaluators on one split; ``templates[i]`` is a model built with the
    inputs' ``i``-th distinct architecture config, into which a candidate's weights are loaded."""

    def __init__(self, host: Any, cfg: EvoMergeConfig, task: TaskData, templates: list[nn.Module]) -> None:
        self.host, self.cfg, self.templates = host, cfg, templates
        n = len(task.eval)
        sel = cfg.selection_samples
        if sel >= n:
            raise ConfigError(f"evomerge.selection_samples={sel} leaves no held-out rows: the task's eval split has"
                              f" {n} rows. Lower selection_samples (and heldout_samples) so both fit")
        held = min(cfg.heldout_samples, n - sel)
        self.splits = {"selection": dataclasses.replace(task, eval=task.eval.subset(slice(0, sel))),
                       "heldout": dataclasses.replace(task, eval=task.eval.subset(slice(sel, sel + held)))}
        self.sizes = {"selection": sel, "heldout": held, "eval": n}
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
