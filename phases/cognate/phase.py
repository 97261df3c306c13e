"""CognatePhase: variant -> task, model, trainer, callbacks -> train -> evaluate -> hand off.

The config and its sections are :mod:`~agent_forge.phases.cognate.config`; building the task spec
and the model from it, and the memory check, :mod:`~agent_forge.phases.cognate.building`; the
variant table (``forge variants``), :mod:`~agent_forge.phases.cognate.variants`. This module is the
orchestration: the run options become config fields (:meth:`CognatePhase.apply_run_options`),
everything that can refuse a run is checked before the run folder exists
(:meth:`CognatePhase.check_ready`), then each model is trained, evaluated (raw and EMA weights)
and written as an artifact, and the report is written.
"""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path
from typing import Any, ClassVar

from agent_forge import distributed, parallel
from agent_forge.artifacts import verify_artifact, write_artifact
from agent_forge.contracts import ArtifactRef, PhaseResult, VersionInfo
from agent_forge.errors import ConfigError, RunInterrupted
from agent_forge.files import atomic_write_json, sha256_json
from agent_forge.loggers import LoggerSet, check_loggers_available
from agent_forge.phases.cognate.building import build_model, check_memory, count_parameters, out_of_memory_as_one_line
from agent_forge.phases.cognate.checkpointing import checkpoint_folder
from agent_forge.phases.cognate.config import CognateConfig, fingerprint_config, validate_cognate, without_budget
from agent_forge.phases.cognate.fit import FitContext, Trainer
from agent_forge.phases.cognate.interrupts import Interrupts
from agent_forge.phases.cognate.report import last_at_halt, write_report
from agent_forge.phases.cognate.training_config import check_batch_split, resolve_device
from agent_forge.phases.cognate.weights import evaluate_weights
from agent_forge.phases.common.validation import carve_validation
from agent_forge.plugin_host import PluginHost
from agent_forge.runner import Phase, PhaseContext, RunOptions, SavedCheckpoint
from agent_forge.phases.cognate.hookspecs import CallbackSpec, TrainerSpec, VariantSpec
from agent_forge.specs import DatasetSpec, LoggerSpec


class CognatePhase(Phase):
    name: ClassVar[str] = "cognate"
    default_variant: ClassVar[str | None] = "trm_small"

    def __init__(self, host: PluginHost) -> None:
        super().__init__(host)
        #: The trainer budget fields (``minutes``, ``epochs``) that ``--max-steps`` took out of the
        #: config, with their values (set by :meth:`apply_run_options`).
        self.replaced_budget: dict[str, Any] = {}

    def variant_config(self, name: str) -> dict[str, Any]:
        return dict(self.host.get(VariantSpec, name).config)

    def solve(self, manifest: Path, puzzle: str, **options: Any) -> dict[str, Any]:
        """One puzzle with test-time exploration (:func:`agent_forge.phases.cognate.explore.solve_puzzle`)."""
        from agent_forge.phases.cognate.explore import ExploreOptions, solve_puzzle

        run = {k: options.pop(k) for k in ("n_sup", "device", "trajectories") if k in options}
        return solve_puzzle(self.host, manifest, puzzle, ExploreOptions(**options), **run)

    def apply_run_options(self, raw: dict[str, Any], options: RunOptions) -> dict[str, Any]:
        """``--task T`` -> ``task: {name: T}``, ``--seed`` -> ``seed``, ``--models`` -> ``models``,
        ``--max-steps``/``--minutes``/``--checkpoint-every`` -> ``trainer.*``. An explicit
        ``--max-steps`` replaces the variant's epoch budget (both count steps) and, without
        ``--minutes``, its time budget; what it replaced is kept in ``replaced_budget`` and stated
        in the run's summary (:meth:`budget_notes`), so a dropped budget is never silent."""
        raw = dict(raw)
        if options.task is not None:
            self.host.get(DatasetSpec, options.task)  # fail early, with the list of tasks
            raw["task"] = {"name": options.task}
        if options.seed is not None:
            raw["seed"] = options.seed
        if options.models is not None:
            raw["models"] = options.models
        if options.loggers is not None:
            chosen = dict(raw.get("loggers") or {})
            raw["loggers"] = {name: chosen.get(name, {}) for name in options.loggers}
        budget = {"max_steps": options.max_steps, "minutes": options.minutes,
                  "checkpoint_every": options.checkpoint_every}
        if any(v is not None for v in budget.values()):
            trainer = dict(raw.get("trainer") or {})
            if options.max_steps is not None:
                replaced = ("epochs",) if options.minutes is not None else ("epochs", "minutes")
                dropped = {key: trainer.pop(key, None) for key in replaced}
                self.replaced_budget = {k: v for k, v in dropped.items() if v is not None}
            trainer.update({k: v for k, v in budget.items() if v is not None})
            raw["trainer"] = trainer
        return raw

    def validate(self, raw: dict[str, Any]) -> CognateConfig:
        return validate_cognate(self.host, raw)

    def resume_view(self, resolved: dict[str, Any]) -> dict[str, Any]:
        # Runs from before ``models`` trained one; from before ``validation_samples``, held none out.
        return {"models": 1, "validation_samples": 0, **without_budget(resolved)}

    def check_ready(self, config: CognateConfig, *, options: RunOptions, run_dir: Path, world_size: int) -> None:
        """Before any work: the trainer's device exists, ``world_size`` processes can split the
        global batch evenly, and a ``--resume`` has a checkpoint to continue from."""
        device = getattr(config.trainer, "device", None)
        if isinstance(device, str):
            resolve_device(device)
        batch = getattr(config.trainer, "batch_size", None)
        if isinstance(batch, int):
            check_batch_split(batch, world_size)
        check_loggers_available(self.host.get(LoggerSpec, name) for name in config.loggers)
        check_memory(self.host, config, world_size)
        if options.resume:
            dirs = [run_dir] if config.models == 1 else [run_dir / f"model-{i}" for i in range(config.models)]
            if not any(checkpoint_folder(d / "checkpoints").newest_first() for d in dirs):
                raise ConfigError(
                    f"--resume: no checkpoint under {dirs[0] / 'checkpoints'}; start the run without --resume,"
                    " or pass --out with a run that saved checkpoints (--checkpoint-every N saves them)")

    def newest_checkpoint(self, run_dir: Path, config: CognateConfig | None = None) -> SavedCheckpoint | None:
        """The newest checkpoint on disk: of the model in work (``model-K/`` with ``--models N``, the
        highest K that saved one), in optimizer steps."""
        models = sorted((p for p in run_dir.glob("model-*") if p.is_dir() and p.name[6:].isdigit()),
                        key=lambda p: int(p.name[6:]), reverse=True)
        for folder in [*models, run_dir]:
            saved = checkpoint_folder(folder / "checkpoints").newest()
            if saved is not None:
                return saved
        return None

    def budget_notes(self, cfg: CognateConfig, options: RunOptions) -> list[str]:
        """What ``--max-steps`` replaced and the run did not get back from ``--set``, said plainly."""
        trainer = cfg.trainer
        gone = {k: v for k, v in self.replaced_budget.items() if getattr(trainer, k, None) is None}
        if not gone:
            return []
        was = ", ".join(f"trainer.{k}={v}" for k, v in gone.items())
        keep = " (add --minutes M to keep a time budget as well)" if "minutes" in gone else ""
        return [f"--max-steps {options.max_steps} replaced the config's {was}: the run stops after"
                f" {options.max_steps} steps{keep}"]

    def plan_output(self, config: CognateConfig) -> dict[str, Any]:
        """``models``, and ``eval_examples`` when the task generates its eval split (``eval_count``)."""
        out: dict[str, Any] = {"models": config.models}
        count = getattr(config.task, "eval_count", None)
        if isinstance(count, int) and getattr(config.task, "eval_file", None) is None:
            out["eval_examples"] = count
        return out

    def run(self, ctx: PhaseContext) -> PhaseResult:
        cfg: CognateConfig = ctx.config
        start = time.monotonic()
        notes = self.budget_notes(cfg, ctx.options)
        for note in notes:
            ctx.log.info("budget.replaced", note=note)
        task_reg = self.host.get(DatasetSpec, cfg.task_name)
        t0 = time.monotonic()
        task_data = carve_validation(task_reg.build(cfg.task, cfg.data_seed), cfg.validation_samples, cfg.data_seed)
        ctx.log.info("task.ready", task=cfg.task_name, train=len(task_data.train), eval=len(task_data.eval),
                     validation=len(task_data.validation) if task_data.validation is not None else 0,
                     seconds=round(time.monotonic() - t0, 2))
        n_models = cfg.models
        artifacts: list[ArtifactRef] = []
        per_model: list[dict[str, Any]] = []
        statuses = []
        messages = []
        model_loggers: list[LoggerSet] = []
        for i in range(n_models):
            seed = cfg.seed + i
            model_dir = ctx.run_dir if n_models == 1 else ctx.run_dir / f"model-{i}"
            loggers = LoggerSet({name: self.host.get(LoggerSpec, name).build(c, model_dir)
                                 for name, c in cfg.loggers.items()}, enabled=distributed.is_main())
            model_loggers.append(loggers)
            ref, summary, status, message = self._train_one(ctx, cfg, task_data, seed, model_dir, i, loggers)
            statuses.append(status)
            messages.append(message)
            per_model.append(summary)
            if ref is not None:
                artifacts.append(ref)
                self.host.hook.forge_artifact_saved(artifact=ref.artifact)
        status = "failed" if "failed" in statuses else ("stopped" if "stopped" in statuses else "completed")
        metrics = _mean_metrics([m["metrics"] for m in per_model])
        report = (write_report(ctx.run_dir, cfg, per_model, ctx.variant) if distributed.is_main()
                  else ctx.run_dir / "report.md")
        plot = ctx.run_dir / "training.png"
        for loggers, summary, status_i in zip(model_loggers, per_model, statuses):
            if plot.exists():
                loggers.log_image("report/training", plot, int(summary["metrics"].get("steps", 0)))
            loggers.finish(status_i)
        return PhaseResult(phase=self.name, status=status, artifacts=tuple(artifacts), metrics=metrics,
                           run_dir=ctx.run_dir.resolve(), duration_s=time.monotonic() - start,
                           report_path=report.resolve(), message="; ".join(sorted(set(messages))),
                           details={"models": per_model, "variant": ctx.variant, **({"notes": notes} if notes else {})})

    def _train_one(self, ctx: PhaseContext, cfg: CognateConfig, task_data: Any, seed: int, model_dir: Path,
                   index: int, loggers: LoggerSet) -> tuple[ArtifactRef | None, dict[str, Any], str, str]:
        model_dir.mkdir(parents=True, exist_ok=True)
        with out_of_memory_as_one_line("building the model"):
            model = build_model(self.host, cfg, task_data.spec, seed)
        params = count_parameters(model)
        callbacks = {name: self.host.get(CallbackSpec, name).build(c) for name, c in cfg.callbacks.items()}
        trainer: Trainer = self.host.get(TrainerSpec, cfg.trainer_name).build(cfg.trainer)
        log = ctx.log.bind(model=index, seed=seed)
        log.info("model.built", architecture=cfg.architecture, parameters=params,
                 device=str(resolve_device(cfg.trainer.device)))
        with out_of_memory_as_one_line("training"):
            fit = trainer.fit(FitContext(model=model, task=task_data, run_dir=model_dir, seed=seed,
                                         callbacks=callbacks, host=self.host, evaluators=cfg.evaluators,
                                         resume=ctx.options.resume, progress=ctx.options.progress, log=log,
                                         config_fingerprint=sha256_json(fingerprint_config(cfg)),
                                         loggers=loggers, config=cfg.model_dump()))
        state = fit.state
        # Final evaluation on the whole held-out split: raw weights, and EMA when present. It has
        # no step to finish, so a signal stops it at once, pointing at the checkpoint of the
        # finished training, from which --resume goes straight back to this evaluation.
        with Interrupts(on_first=lambda signum: _stop_final_evaluation(signum, state.step, fit.checkpoint)):
            try:
                final = evaluate_weights(trainer, state, task_data, self.host, cfg.evaluators,
                                         cfg.trainer.eval_batch_size,
                                         progress=ctx.options.progress and distributed.is_main())
            except RunInterrupted:
                loggers.finish("interrupted")
                raise
        finals, texts = final.metrics, final.texts
        steps_file = model_dir / "steps.json"
        if final.curves and distributed.is_main():
            # Accuracy against supervision steps on the whole eval split, per weights (a side file:
            # the artifact's metrics stay one number per name).
            atomic_write_json(steps_file, final.curves)
        if texts and distributed.is_main():
            atomic_write_json(model_dir / "samples.json", texts)
            for label, by_eval in texts.items():
                for sample in by_eval.get("samples", [])[:1]:
                    log.info("sample", weights=label, prompt=sample["prompt"][-80:], completion=sample["completion"][:120])
        # The hand-off is fixed by the config (EMA when it is on), not picked by a score: the eval
        # split is only reported, so nothing may be chosen on it (docs/cognate.md, "Hand-off").
        chosen = trainer.handoff_label(state)
        metrics: dict[str, float] = {}
        for label, m in finals.items():
            metrics.update({f"{label}/{k}": v for k, v in m.items()})
        metrics.update({k: v for k, v in finals[chosen].items()})
        metrics.update(parameters=float(params), steps=float(state.step), train_seconds=state.elapsed_s,
                       examples_seen=float(state.examples_started), early_stop_rate=state.early_stop_rate,
                       nan_skipped=float(state.nan_skipped))
        # From the last log window in which some sample halted; absent when none did.
        sup_steps = last_at_halt(state.history) if state.history else float(state.n_sup)
        if sup_steps is not None:
            metrics["mean_sup_steps"] = sup_steps
        loggers.log_metrics("final", state.step, metrics)
        log.info("model.evaluated", chosen=chosen, **{k: round(v, 4) for k, v in metrics.items()
                                                      if k.endswith(("exact_accuracy", "token_accuracy"))})
        summary = {"index": index, "seed": seed, "chosen_weights": chosen, "metrics": metrics, "status": fit.status,
                   "stop_reason": fit.message, "dir": str(model_dir), "history": state.history}
        if final.curves:
            summary["steps_file"] = str(steps_file)
        if fit.status == "failed":
            return None, summary, fit.status, fit.message
        with trainer.weights(state, chosen) as module:
            weights = parallel.full_state_dict(module)  # all ranks gather; rank 0 holds the result
        # The artifact records how its task data is made, so a later phase can rebuild it.
        spec = task_data.spec.model_copy(update={"info": {
            **task_data.spec.info, "data_seed": cfg.data_seed, "validation_samples": cfg.validation_samples,
            "dataset": {"name": cfg.task_name, "config": cfg.task.model_dump(mode="json")}}})
        artifact_id = f"cognate-{ctx.run_dir.name}-m{index}-{uuid.uuid4().hex[:8]}"
        manifest = ctx.run_dir / "artifacts" / f"model-{index}.json"
        parents = tuple(a.artifact.id for a in (ctx.previous.artifacts if ctx.previous else ()))
        # Every rank trained the same weights; rank 0 writes them and the others read them back.
        fields = dict(
            id=artifact_id, phase=self.name, variant=ctx.variant, architecture=cfg.architecture,
            architecture_config=cfg.model.model_dump(mode="json"), task=spec, parameters=params,
            metrics=metrics, step=state.step, seed=seed, weights_kind=chosen,
            config_sha256=sha256_json(cfg.model_dump()), versions=VersionInfo.current(), parents=parents)
        if distributed.is_main():
            artifact = write_artifact(manifest, fields, weights)
        distributed.barrier()
        if not distributed.is_main():
            artifact, _ = verify_artifact(manifest)
        summary["artifact"] = str(manifest)
        return ArtifactRef(manifest_path=manifest.resolve(), artifact=artifact), summary, fit.status, fit.message



def _stop_final_evaluation(signum: int, step: int, checkpoint: Path | None) -> None:
    name = signal.Signals(signum).name
    saved = (f"training finished at step {step} and is saved in checkpoint {checkpoint}" if checkpoint else
             f"training finished at step {step}, but the trainer saved no checkpoint of it")
    raise RunInterrupted(f"interrupted by {name} during the final evaluation; {saved}", signal_name=name,
                         step=step, checkpoint=checkpoint, exit_code=128 + signum)



def _mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    keys = set.intersection(*(set(r) for r in rows))
    return {k: sum(r[k] for r in rows) / len(rows) for k in sorted(keys)}


__all__ = ["CognatePhase"]
