"""EvoMergePhase: merge the previous phase's models into candidates and keep the best.

Input: the previous :class:`PhaseResult`'s artifacts (each verified by sha256 on load), or
``inputs`` (manifest paths) in this phase's config. Candidates: every input model, their linear
average, SLERP between the two best inputs, and a TIES merge. Each candidate is scored with the
configured evaluator on the inputs' task (rebuilt from the dataset config the artifact records);
the best is written as this phase's artifact, whose ``parents`` are the inputs.

Merging models trained from different random initialisations rarely works (their hidden units
are not aligned); this phase reports each candidate's score so that shows, rather than assuming
a merge helps.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch
from pydantic import Field

from agent_forge.checkpoint import sha256_json, write_artifact
from agent_forge.config import StrictModel, validate
from agent_forge.contracts import ArtifactRef, ModelArtifact, PhaseResult, VersionInfo
from agent_forge.errors import ConfigError
from agent_forge.phases.common.evaluation import EvalContext, run_evaluators
from agent_forge.phases.common.loading import load_model
from agent_forge.runner import Phase, PhaseContext

State = dict[str, torch.Tensor]


class EvoMergeConfig(StrictModel):
    methods: list[Literal["linear", "slerp", "ties"]] = ["linear", "slerp", "ties"]
    ties_density: float = Field(0.5, gt=0, le=1, description="Fraction of each task vector TIES keeps.")
    slerp_t: float = Field(0.5, ge=0, le=1)
    evaluators: list[str] = ["exact", "token"]
    metric: str = Field("exact_accuracy", description="Metric that ranks candidates (higher is better).")
    eval_samples: int = Field(500, ge=1)
    inputs: list[Path] = Field(default_factory=list, description="Artifact manifests (default: previous phase).")


def linear(states: list[State]) -> State:
    return {k: torch.stack([s[k].float() for s in states]).mean(0).to(states[0][k].dtype) for k in states[0]}


def slerp(a: State, b: State, t: float) -> State:
    """Spherical interpolation per tensor; falls back to linear for (nearly) parallel tensors."""
    out: State = {}
    for k in a:
        x, y = a[k].float(), b[k].float()
        if not x.is_floating_point() or x.numel() < 2:
            out[k] = a[k].clone()
            continue
        xn, yn = x.flatten() / (x.norm() + 1e-12), y.flatten() / (y.norm() + 1e-12)
        omega = torch.arccos(torch.clamp((xn * yn).sum(), -1.0, 1.0))
        if omega.abs() < 1e-4:
            mixed = (1 - t) * x + t * y
        else:
            so = torch.sin(omega)
            mixed = (torch.sin((1 - t) * omega) / so) * x + (torch.sin(t * omega) / so) * y
        out[k] = mixed.to(a[k].dtype)
    return out


def ties(states: list[State], density: float) -> State:
    """TIES-merging (trim, elect sign, disjoint mean) of task vectors relative to the mean model."""
    base = linear(states)
    out: State = {}
    for k in base:
        if not base[k].is_floating_point():
            out[k] = states[0][k].clone()
            continue
        deltas = torch.stack([s[k].float() - base[k].float() for s in states])  # (M, ...)
        flat = deltas.reshape(len(states), -1)
        keep = max(1, int(round(density * flat.shape[1])))
        thresh = flat.abs().kthvalue(flat.shape[1] - keep + 1, dim=1, keepdim=True).values
        trimmed = torch.where(flat.abs() >= thresh, flat, torch.zeros_like(flat))
        sign = torch.sign(trimmed.sum(0))
        agree = (torch.sign(trimmed) == sign) & (trimmed != 0)
        merged = (trimmed * agree).sum(0) / agree.sum(0).clamp(min=1)
        out[k] = (base[k].float() + merged.reshape(base[k].shape)).to(base[k].dtype)
    return out


class EvoMergePhase(Phase):
    name: ClassVar[str] = "evomerge"
    default_variant: ClassVar[str | None] = None

    def validate(self, raw: dict[str, Any]) -> EvoMergeConfig:
        section = raw.get("evomerge", raw) if isinstance(raw, dict) else raw
        cfg = validate(EvoMergeConfig, section, "evomerge" if "evomerge" in raw else "")
        for name in cfg.evaluators:
            self.host.get("evaluator", name)
        return cfg

    def run(self, ctx: PhaseContext) -> PhaseResult:
        cfg: EvoMergeConfig = ctx.config
        start = time.monotonic()
        manifests = list(cfg.inputs) or [a.manifest_path for a in (ctx.previous.artifacts if ctx.previous else ())]
        if not manifests:
            raise ConfigError("evomerge: no input models; run it after cognate in a pipeline,"
                              " or set evomerge.inputs=[path/to/model-0.json, ...]")
        loaded = [load_model(self.host, m) for m in manifests]  # verifies every sha256
        artifacts = [a for a, _ in loaded]
        first = artifacts[0]
        for a in artifacts[1:]:
            if a.architecture != first.architecture or a.architecture_config != first.architecture_config:
                raise ConfigError(f"evomerge: {a.id} has a different architecture or shape than {first.id};"
                                  " only models of one shape can be merged")
        task = self._task(first, cfg)
        states = [{k: v.detach().clone() for k, v in m.state_dict().items()} for _, m in loaded]
        template = loaded[0][1]
        scored: list[tuple[str, float, dict[str, float], State]] = []

        def score(label: str, state: State) -> None:
            template.load_state_dict(state)
            metrics = run_evaluators(self.host, cfg.evaluators, EvalContext(template, task, torch.device("cpu")))
            if cfg.metric not in metrics:
                raise ConfigError(f"evomerge.metric={cfg.metric!r} is not produced; available: {sorted(metrics)}")
            scored.append((label, metrics[cfg.metric], metrics, state))
            ctx.log.info("evomerge.candidate", candidate=label, **{k: round(v, 4) for k, v in metrics.items()})

        for art, state in zip(artifacts, states):
            score(f"input:{art.id}", state)
        inputs_ranked = sorted(scored, key=lambda s: -s[1])
        if len(states) > 1:
            if "linear" in cfg.methods:
                score("linear", linear(states))
            if "slerp" in cfg.methods:
                a, b = inputs_ranked[0][3], inputs_ranked[1][3]
                score(f"slerp(t={cfg.slerp_t})", slerp(a, b, cfg.slerp_t))
            if "ties" in cfg.methods:
                score(f"ties(density={cfg.ties_density})", ties(states, cfg.ties_density))
        best = max(scored, key=lambda s: s[1])
        manifest = ctx.run_dir / "artifacts" / "merged.json"
        artifact = write_artifact(manifest, dict(
            id=f"evomerge-{ctx.run_dir.name}-{uuid.uuid4().hex[:8]}", phase=self.name, variant=first.variant,
            architecture=first.architecture, architecture_config=first.architecture_config, task=first.task,
            parameters=first.parameters, metrics=best[2], step=0, seed=first.seed, weights_kind=first.weights_kind,
            config_sha256=sha256_json(cfg.model_dump(mode="json")), versions=VersionInfo.current(),
            parents=tuple(a.id for a in artifacts)), best[3])
        self.host.hook.forge_artifact_saved(artifact=artifact)
        candidates = [{"candidate": label, cfg.metric: value, **m} for label, value, m, _ in scored]
        return PhaseResult(phase=self.name, status="completed",
                           artifacts=(ArtifactRef(manifest_path=manifest.resolve(), artifact=artifact),),
                           metrics={**best[2], "candidates": float(len(scored))}, run_dir=ctx.run_dir.resolve(),
                           duration_s=time.monotonic() - start, message=f"best: {best[0]}",
                           details={"candidates": candidates, "best": best[0]})

    def _task(self, artifact: ModelArtifact, cfg: EvoMergeConfig) -> Any:
        dataset = artifact.task.info.get("dataset")
        if not dataset:
            raise ConfigError(f"evomerge: artifact {artifact.id} does not record its dataset config")
        reg = self.host.get("dataset", dataset["name"])
        task_cfg = validate(reg.config, dataset["config"], "task")
        data = reg.obj(task_cfg, int(artifact.task.info.get("data_seed", 0)))
        n = min(cfg.eval_samples, len(data.eval))
        data.eval = type(data.eval)(data.eval.inputs[:n], data.eval.targets[:n])
        return data
