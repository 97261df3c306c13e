"""EvoMergePhase: evolve a population of merged models and hand on the fittest.

Input: the previous :class:`PhaseResult`'s artifacts (each verified by sha256 on load), or
``inputs`` (manifest paths) in this phase's config. Inputs must share one architecture and one
task (the dataset config and ``data_seed`` the artifacts record) and have tensors of the same
shapes; they may differ in architecture config where that changes no shape (TRM recursion
counts), except that a frankenmerge needs parents of one config.

Generation 0 is the inputs plus seed merges of them; each later generation keeps the ``elite``
fittest and breeds the rest (``population.py``). Fitness is measured on a selection split
drawn from the inputs' training data (their held-out validation rows where they have them);
the task's eval split is only reported (``scoring.py``). The population is
checkpointed after every generation (``checkpoints.py``), so ``--resume`` continues a killed run
and reaches the same hand-off bit for bit. The fittest candidate of the last generation is
written as this phase's artifact, whose ``parents`` are the inputs; ``report.md`` and
``fitness.png`` show each generation's best and mean fitness.
"""

from __future__ import annotations

import json
import shlex
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from agent_forge.artifacts import read_manifest, write_artifact
from agent_forge.config import validate
from agent_forge.contracts import ArtifactRef, ModelArtifact, PhaseResult, VersionInfo
from agent_forge.errors import ConfigError
from agent_forge.files import atomic_write_bytes, sha256_json
from agent_forge.phases.common.loading import load_model
from agent_forge.phases.common.validation import carve_validation
from agent_forge.phases.evomerge.checkpoints import GenerationCheckpoints, generation_folder
from agent_forge.phases.evomerge.config import RESUMABLE_FIELDS, EvoMergeConfig, fitness_for_task
from agent_forge.phases.evomerge.merges import State, linear, slerp, ties  # noqa: F401  (re-exported)
from agent_forge.phases.evomerge.population import Candidate, Evolution
from agent_forge.phases.evomerge.progress import GenerationBar
from agent_forge.phases.evomerge.report import write_report
from agent_forge.phases.evomerge.scoring import Scorer
from agent_forge.runner import Phase, PhaseContext, RunOptions, SavedCheckpoint, Upstream
from agent_forge.specs import DatasetSpec, EvaluatorSpec


def _task_key(a: ModelArtifact) -> dict[str, Any]:
    spec = a.task
    return {"name": spec.name, "kind": spec.kind, "vocab_size": spec.vocab_size, "seq_len": spec.seq_len,
            "causal": spec.causal, "ignore_index": spec.ignore_index, "dataset": spec.info.get("dataset"),
            "data_seed": spec.info.get("data_seed"), "validation_samples": spec.info.get("validation_samples", 0)}


def _differing(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    from agent_forge.config import differences

    return [f"{key} ({x!r} vs {y!r})" for key, x, y in differences(a, b)]


def check_inputs(artifacts: list[ModelArtifact], states: list[State], operators: list[str]) -> list[int]:
    """Refuse inputs that cannot be merged; return each input's index into the distinct configs."""
    first = artifacts[0]
    for a in artifacts[1:]:
        if a.architecture != first.architecture:
            raise ConfigError(f"evomerge: inputs of different architectures cannot be merged: {first.id} is"
                              f" {first.architecture!r}, {a.id} is {a.architecture!r}. Give EvoMerge models of"
                              " one architecture")
        if _task_key(a) != _task_key(first):
            raise ConfigError(f"evomerge: inputs trained on different tasks cannot be merged: {first.id} and {a.id}"
                              f" differ at {'; '.join(_differing(_task_key(first), _task_key(a)))}")
    for a, s in zip(artifacts[1:], states[1:]):
        if set(s) != set(states[0]):
            extra = sorted(set(s) ^ set(states[0]))[:3]
            raise ConfigError(f"evomerge: {a.id} and {first.id} have different tensors ({', '.join(extra)}, ...);"
                              f" their architecture configs differ at"
                              f" {'; '.join(_differing(first.architecture_config, a.architecture_config))}")
        for k, t in s.items():
            if t.shape != states[0][k].shape:
                raise ConfigError(
                    f"evomerge: {a.id} and {first.id} have tensors of different shapes ({k}: {tuple(t.shape)} vs"
                    f" {tuple(states[0][k].shape)}); only models of one shape can be merged. Their architecture"
                    f" configs differ at {'; '.join(_differing(first.architecture_config, a.architecture_config))}")
    configs: list[dict[str, Any]] = []
    index = []
    for a in artifacts:
        if a.architecture_config not in configs:
            configs.append(a.architecture_config)
        index.append(configs.index(a.architecture_config))
    if len(configs) > 1 and list(operators) == ["frankenmerge"]:
        raise ConfigError("evomerge.operators=['frankenmerge'] needs inputs of one architecture config, and"
                          f" {artifacts[index.index(1)].id} differs from {first.id} at"
                          f" {'; '.join(_differing(first.architecture_config, artifacts[index.index(1)].architecture_config))}."
                          " Add another operator (linear, slerp, ties, dare) or give inputs of one config")
    return index


class EvoMergePhase(Phase):
    """Reads none of the generic run flags (``--seed``, ``--minutes``, ``--max-steps`` belong to
    the training phases; in a pipeline every phase gets them): its seed and budget are
    ``seed``, ``generations`` and ``minutes`` in its own config (``--set generations=10``)."""

    name: ClassVar[str] = "evomerge"
    default_variant: ClassVar[str | None] = None

    def validate(self, raw: dict[str, Any]) -> EvoMergeConfig:
        section = raw.get("evomerge", raw) if isinstance(raw, dict) else raw
        cfg = validate(EvoMergeConfig, section, "evomerge")
        for name in cfg.evaluators:
            self.host.get(EvaluatorSpec, name)
        return cfg

    def resume_view(self, resolved: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in resolved.items() if k not in RESUMABLE_FIELDS}

    def newest_checkpoint(self, run_dir: Path, config: EvoMergeConfig | None = None) -> SavedCheckpoint | None:
        """The newest population checkpoint on disk, in generations."""
        return generation_folder(run_dir / "checkpoints").newest()

    def check_inputs(self, config: EvoMergeConfig, *, upstream: tuple[Upstream, ...], options: RunOptions) -> None:
        """Before any phase runs: there are input models (``inputs``, an earlier phase, or the
        checkpoint of a run to resume), each named manifest exists, and the earlier phase's
        evaluation split is large enough for ``selection_samples`` plus held-out rows."""
        if not config.inputs and not upstream and not options.resume:
            raise ConfigError("evomerge needs input models from an earlier phase: run it after a phase that hands"
                              " on models (forge run pipeline cognate,evomerge), or name them with --set"
                              " evomerge.inputs=[path/to/model-0.json,...]")
        for path in config.inputs:
            path = Path(path)
            if not path.exists():
                raise ConfigError(f"evomerge.inputs: {path} does not exist; name artifact manifests"
                                  " (runs/<run>/artifacts/model-0.json)")
            read_manifest(path)  # a folder, a file that is not a manifest, an edited one: refused here
        eval_rows = upstream[-1].plan.get("eval_examples") if upstream and not config.inputs else None
        if isinstance(eval_rows, int) and config.selection_samples >= eval_rows:
            raise ConfigError(f"evomerge.selection_samples={config.selection_samples} leaves no held-out rows:"
                              f" {upstream[-1].name}'s eval split will have {eval_rows} rows. Lower it, e.g."
                              f" --set evomerge.selection_samples={max(1, eval_rows // 2)}"
                              f" --set evomerge.heldout_samples={max(1, eval_rows - eval_rows // 2)}")

    def run(self, ctx: PhaseContext) -> PhaseResult:
        cfg: EvoMergeConfig = ctx.config
        start = time.monotonic()
        store = GenerationCheckpoints(ctx.run_dir / "checkpoints", ctx.log)
        saved = store.load() if ctx.options.resume else None
        if ctx.options.resume and saved is None:
            ctx.log.info("evomerge.resume", note="no readable checkpoint; starting from generation 0")
        manifests = ([Path(m) for m in cfg.inputs]
                     or [a.manifest_path for a in (ctx.previous.artifacts if ctx.previous else ())]
                     or ([Path(p) for p in saved["input_manifests"]] if saved else []))
        if not manifests:
            raise ConfigError("evomerge: no input models; run it after cognate in a pipeline,"
                              " or set evomerge.inputs=[path/to/model-0.json, ...]")
        loaded = [load_model(self.host, m) for m in manifests]  # verifies every manifest and sha256
        artifacts = [a for a, _ in loaded]
        states = [{k: v.detach().clone() for k, v in m.state_dict().items()} for _, m in loaded]
        config_index = check_inputs(artifacts, states, cfg.operators)
        ids = [a.id for a in artifacts]
        if saved is not None and list(saved["inputs"]) != ids:
            raise ConfigError(f"--resume: the inputs ({', '.join(ids)}) are not the run's"
                              f" ({', '.join(saved['inputs'])}); resume with the same input models, or start a new run")
        templates = [loaded[config_index.index(i)][1] for i in range(max(config_index) + 1)]
        data_seed = int(artifacts[0].task.info.get("data_seed", 0))
        task = self._task(artifacts[0])
        cfg = fitness_for_task(cfg, task.spec.kind)
        scorer = Scorer(self.host, cfg, task, templates, seed=data_seed)
        if scorer.selection_from == "training":
            ctx.log.warning("evomerge.selection_on_training_rows", rows=scorer.sizes["selection"],
                            note="the inputs held out no validation rows, so fitness is measured on rows they"
                                 " trained on; train them with validation_samples=N (e.g. --set"
                                 " validation_samples=250 on cognate) for a selection split they never saw")
        inputs = [Candidate(id=f"in{i}", state=s, config=config_index[i], origin=f"input {a.id}", parents=[a.id],
                            born=0) for i, (a, s) in enumerate(zip(artifacts, states))]
        evo = Evolution(cfg, inputs, linear(states), scorer.selection)
        history: list[dict[str, Any]] = []
        inputs_summary: list[dict[str, Any]] = []
        elapsed_before = 0.0
        if saved is not None:
            evo.load_state_dict(saved["evolution"])
            history, inputs_summary = list(saved["history"]), list(saved["inputs_summary"])
            elapsed_before, scorer.counts = float(saved["elapsed_s"]), dict(saved["counts"])
            ctx.log.info("evomerge.resumed", generation=evo.generation, checkpoint=str(store.folder))

        def elapsed() -> float:
            return elapsed_before + time.monotonic() - start

        def end_generation(scored: list[Candidate], bar: GenerationBar) -> None:
            best = evo.best
            scorer.heldout(best)
            fitness = [evo.rank.fitness(c) for c in evo.population]
            row = {"generation": evo.generation, "best": fitness[0], "mean": sum(fitness) / len(fitness),
                   "heldout_best": best.heldout[cfg.metric], "best_id": best.id, "best_origin": best.origin,
                   "scored": len(scored), "elapsed_s": round(elapsed(), 3),
                   "candidates": [{"id": c.id, "origin": c.origin, "fitness": evo.rank.fitness(c)} for c in scored]}
            if cfg.tiebreak:  # what ranks candidates that the metric does not separate
                ties = [c.selection[cfg.tiebreak] for c in evo.population]
                row.update(tiebreak_best=best.selection[cfg.tiebreak], tiebreak_mean=sum(ties) / len(ties),
                           tiebreak_heldout_best=best.heldout[cfg.tiebreak])
            history.append(row)
            lines = [json.dumps({"kind": "generation", **r}) for r in history]
            atomic_write_bytes(ctx.run_dir / "metrics.jsonl", ("\n".join(lines) + "\n").encode())
            store.save(evo.generation, {
                "inputs": ids, "input_manifests": [str(Path(m).resolve()) for m in manifests],
                "evolution": evo.state_dict(), "history": history, "inputs_summary": inputs_summary,
                "elapsed_s": elapsed(), "counts": dict(scorer.counts)})
            ctx.log.info("evomerge.generation", generation=evo.generation, best=round(row["best"], 4),
                         mean=round(row["mean"], 4), heldout_best=round(row["heldout_best"], 4),
                         best_candidate=f"{best.id}: {best.origin}", scored=len(scored),
                         seconds=round(elapsed(), 1))
            bar.update(row)

        stop_reason = "generations"
        try:
            with GenerationBar(ctx.options.progress, cfg.generations, max(evo.generation, 0)) as bar:
                if evo.generation < 0:
                    scored = evo.seed_generation()
                    for c in evo.inputs:
                        scorer.heldout(c)
                    inputs_summary = [{"id": c.id, "artifact": a.id, "selection": c.selection, "heldout": c.heldout}
                                      for c, a in zip(evo.inputs, artifacts)]
                    end_generation(scored, bar)
                while evo.generation < cfg.generations:
                    if cfg.minutes is not None and elapsed() >= cfg.minutes * 60:
                        stop_reason = f"minutes ({cfg.minutes:g})"
                        break
                    end_generation(evo.next_generation(), bar)
        except KeyboardInterrupt:
            hint = shlex.join(["forge", "run", "phase", "evomerge", "--out", str(ctx.run_dir), "--resume"])
            ctx.log.warning("evomerge.interrupted", generation=evo.generation, resume=hint,
                            note="the last finished generation is checkpointed; resume with the same --set flags")
            raise
        return self._hand_off(ctx, cfg, evo, scorer, artifacts, inputs_summary, history, stop_reason, start)

    def _hand_off(self, ctx: PhaseContext, cfg: EvoMergeConfig, evo: Evolution, scorer: Scorer,
                  artifacts: list[ModelArtifact], inputs_summary: list[dict[str, Any]],
                  history: list[dict[str, Any]], stop_reason: str, start: float) -> PhaseResult:
        best = evo.best
        heldout = scorer.heldout(best)
        # The input to beat: the one the selection split ranks first, i.e. what would be handed on
        # without merging. Picking it by its held-out score would choose on the reported split.
        best_input = max(inputs_summary, key=lambda r: evo.rank.key_of(r["selection"]))
        # The hand-off is built with its fitter parent's config: the first input of that config.
        first = next(a for a, c in zip(artifacts, evo.inputs) if c.config == best.config)
        model = scorer.templates[best.config]
        metrics: dict[str, float] = {**heldout}
        metrics.update({f"selection/{k}": v for k, v in best.selection.items()})
        metrics.update({f"heldout/{k}": v for k, v in heldout.items()})
        metrics.update({f"best_input/heldout/{cfg.metric}": best_input["heldout"][cfg.metric],
                        f"best_input/selection/{cfg.metric}": best_input["selection"][cfg.metric],
                        "generations": float(evo.generation), "scored": float(scorer.counts["selection"])})
        kinds = {a.weights_kind for a in artifacts}
        manifest = ctx.run_dir / "artifacts" / "merged.json"
        artifact = write_artifact(manifest, dict(
            id=f"evomerge-{ctx.run_dir.name}-{uuid.uuid4().hex[:8]}", phase=self.name, variant=first.variant,
            architecture=first.architecture, architecture_config=first.architecture_config, task=first.task,
            parameters=sum(p.numel() for p in model.parameters()), metrics=metrics, step=evo.generation,
            seed=cfg.seed, weights_kind=kinds.pop() if len(kinds) == 1 else "raw",
            config_sha256=sha256_json(cfg.model_dump(mode="json")), versions=VersionInfo.current(),
            parents=tuple(a.id for a in artifacts)), best.state)
        self.host.hook.forge_artifact_saved(artifact=artifact)
        handoff = {**best.summary(cfg.metric), "is_input": best.id.startswith("in"), "input_id": best.id,
                   "selection_samples": scorer.sizes["selection"], "selection_from": scorer.selection_from}
        population = [c.summary(cfg.metric) for c in evo.population]
        report = write_report(ctx.run_dir, cfg=cfg, history=history, inputs=inputs_summary, population=population,
                              handoff=handoff, best_input=best_input, sizes=scorer.sizes, stop_reason=stop_reason,
                              evaluations=scorer.counts)
        ctx.log.info("evomerge.hand_off", candidate=f"{best.id}: {best.origin}",
                     selection=round(best.selection[cfg.metric], 4), heldout=round(heldout[cfg.metric], 4),
                     best_input_heldout=round(best_input["heldout"][cfg.metric], 4))
        return PhaseResult(phase=self.name, status="completed",
                           artifacts=(ArtifactRef(manifest_path=manifest.resolve(), artifact=artifact),),
                           metrics=metrics, run_dir=ctx.run_dir.resolve(), duration_s=time.monotonic() - start,
                           report_path=report.resolve(), message=f"best: {best.origin}; stopped: {stop_reason}",
                           details={"best": handoff, "inputs": inputs_summary, "best_input": best_input["id"],
                                    "population": population, "history": history, "stop_reason": stop_reason,
                                    "splits": scorer.sizes, "selection_from": scorer.selection_from})

    def _task(self, artifact: ModelArtifact) -> Any:
        dataset = artifact.task.info.get("dataset")
        if not dataset:
            raise ConfigError(f"evomerge: artifact {artifact.id} does not record its dataset config")
        reg = self.host.get(DatasetSpec, dataset["name"])
        task_cfg = validate(reg.config, dataset["config"], "task")
        data_seed = int(artifact.task.info.get("data_seed", 0))
        # The rows the inputs' run held out of training, carved again from the same seed.
        return carve_validation(reg.build(task_cfg, data_seed), int(artifact.task.info.get("validation_samples", 0)),
                                data_seed)
