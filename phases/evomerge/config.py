"""EvoMergeConfig: the phase's settings, strict (an unknown or bad key is a ConfigError naming it)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from agent_forge.config import SEED_MAX, StrictModel

Operator = Literal["linear", "slerp", "ties", "dare", "frankenmerge"]
OPERATORS: tuple[Operator, ...] = ("linear", "slerp", "ties", "dare", "frankenmerge")

#: Fields a ``--resume`` may change: the budget, and where the inputs are named (their ids are
#: checked against the checkpoint instead).
RESUMABLE_FIELDS = ("generations", "minutes", "inputs")


class EvoMergeConfig(StrictModel):
    """Evolution of a population of merged models (docs/cognate.md, "EvoMerge")."""

    population: int = Field(6, ge=2, description="Candidates per generation.")
    generations: int = Field(5, ge=0, description="Generations bred after generation 0 (inputs and seed merges).")
    minutes: float | None = Field(None, gt=0, description="Wall-clock budget: no generation starts after it.")
    elite: int = Field(2, ge=1, description="The best k candidates, carried into the next generation unchanged.")
    tournament: int = Field(3, ge=1, description="Candidates drawn per parent; the fittest of them is the parent.")
    operators: list[Operator] = Field(default_factory=lambda: list(OPERATORS), min_length=1,
                                      description="Merge operators a child may be made with.")
    ties_density: float = Field(0.5, gt=0, le=1, description="Fraction of each task vector TIES keeps.")
    dare_drop: float = Field(0.5, ge=0, lt=1, description="Probability that DARE drops a task-vector entry.")
    mutation_rate: float = Field(0.5, ge=0, le=1, description="Probability that a child also gets noise.")
    noise_scale: float = Field(0.01, ge=0, description="Noise std, as a fraction of each tensor's std.")
    evaluators: list[str] = Field(default_factory=lambda: ["exact", "token"])
    metric: str = Field("exact_accuracy", description="The fitness: a metric the evaluators produce.")
    mode: Literal["max", "min"] = Field("max", description="Whether a higher or lower metric is fitter.")
    tiebreak: str | None = Field("token_accuracy", description="Second metric for equal fitness (same mode).")
    selection_samples: int = Field(250, ge=1, description="Eval rows that fitness is measured on (the first).")
    heldout_samples: int = Field(250, ge=1, description="Eval rows after those, only reported, never selected on.")
    seed: int = Field(0, ge=0, le=SEED_MAX, description="Seed of the evolution's random generator.")
    inputs: list[Path] = Field(default_factory=list, description="Artifact manifests (default: previous phase).")

    @model_validator(mode="after")
    def _check(self) -> "EvoMergeConfig":
        if self.elite >= self.population:
            raise ValueError(f"elite={self.elite} must be below population={self.population}"
                             " (otherwise no child is ever bred)")
        if len(set(self.operators)) != len(self.operators):
            raise ValueError(f"operators={self.operators} names an operator twice")
        if self.tiebreak is not None and self.tiebreak == self.metric:
            raise ValueError(f"tiebreak={self.tiebreak!r} is the metric itself; name another metric or null")
        return self


#: The fitness of a language model (a task of kind ``lm``) when the config leaves all four fitness
#: fields at their puzzle defaults: held-out bits per byte, lower is fitter; cross-entropy breaks ties.
LM_FITNESS = {"evaluators": ["loss"], "metric": "bits_per_byte", "mode": "min", "tiebreak": "eval_loss"}


def fitness_for_task(cfg: EvoMergeConfig, task_kind: str) -> EvoMergeConfig:
    """``cfg`` with :data:`LM_FITNESS` for a language model, unless any of ``evaluators``,
    ``metric``, ``mode``, ``tiebreak`` was set (then the config is taken as written)."""
    if task_kind != "lm" or cfg.model_fields_set & set(LM_FITNESS):
        return cfg
    return cfg.model_copy(update=LM_FITNESS)
