"""CognatePhase: variant -> task, model, trainer, callbacks -> train -> evaluate -> hand off.

Config sections (a variant supplies all of them; ``--set``/``--config`` change any field):

* ``model``: ``architecture`` plus that architecture's own fields.
* ``task``: ``name`` (a dataset plugin) plus its fields.
* ``trainer``: ``name`` (default ``deep_supervision``) plus its fields.
* ``callbacks``: ``{callback_name: {its fields}}``; a callback absent here is off.
* ``evaluators``: evaluator names run on the held-out split.
* ``seed`` (training: init, data order, augmentation) and ``data_seed`` (which puzzles are
  generated, shared by every model and every ablation arm).
* ``models``: how many base models to train (seeds ``seed … seed+models-1``), default 1.
* ``validation_samples``: training rows held out as a validation split (default 0: none), the
  only split anything may be chosen on; the eval split is only reported.

The run options (``--task``, ``--seed``, ``--max-steps``, ``--minutes``, ``--checkpoint-every``,
``--models``) become these fields in :meth:`CognatePhase.apply_run_options`.
"""

from __future__ import annotations

import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from pydantic import BaseModel

from agent_forge import distributed, parallel
from agent_forge.checkpoint import atomic_write_json, sha256_json, verify_artifact, write_artifact
from agent_forge.config import SEED_MAX, check_sections, validate
from agent_forge.contracts import ArtifactRef, PhaseResult, TaskSpec, VersionInfo
from agent_forge.errors import ConfigError, RunInterrupted
from agent_forge.loggers import LoggerSet, check_loggers_available
from agent_forge.phases.cognate.checkpointing import checkpoints_newest_first
from agent_forge.phases.cognate.fit import FitContext, Trainer
from agent_forge.phases.cognate.interrupts import Interrupts
from agent_forge.phases.cognate.report import last_at_halt, write_report
from agent_forge.phases.cognate.training_config import resolve_device
from agent_forge.phases.cognate.weights import evaluate_weights
from agent_forge.phases.common.validation import carve_validation
from agent_forge.plugin_host import PluginHost
from agent_forge.runner import Phase, PhaseContext, RunOptions
from agent_forge.phases.cognate.hookspecs import CallbackSpec, TrainerSpec, VariantSpec
from agent_forge.specs import ArchitectureSpec, DatasetSpec, EvaluatorSpec, LoggerSpec

SECTIONS = {
    "model": "architecture + its fields", "task": "dataset name + its fields",
    "trainer": "trainer name + its fields", "callbacks": "{name: fields} of enabled callbacks",
    "evaluators": "list of evaluator names", "seed": "training seed", "data_seed": "data generation seed",
    "models": "how many base models to train",
    "validation_samples": "training rows held out for choices (early stop, EvoMerge); 0: none",
    "loggers": "{name: fields} of metrics loggers (default: jsonl)",
}


@dataclass
class CognateConfig:
    """The validated config: every section checked against its plugin's own model."""

    architecture: str
    model: BaseModel
    task_name: str
    task: BaseModel
    trainer_name: str
    trainer: BaseModel
    callbacks: dict[str, BaseModel | None]
    evaluators: list[str]
    seed: int
    data_seed: int
    models: int = 1
    loggers: dict[str, BaseModel | None] = field(default_factory=lambda: {"jsonl": None})
    validation_samples: int = 0

    def model_dump(self, mode: str = "json") -> dict[str, Any]:
        return {
            "model": {"architecture": self.architecture, **self.model.model_dump(mode=mode)},
            "task": {**self.task.model_dump(mode=mode), "name": self.task_name},
            "trainer": {**self.trainer.model_dump(mode=mode), "name": self.trainer_name},
            "callbacks": {k: v.model_dump(mode=mode) if v is not None else {} for k, v in self.callbacks.items()},
            "evaluators": list(self.evaluators),
            "seed": self.seed,
            "data_seed": self.data_seed,
            "models": self.models,
            "validation_samples": self.validation_samples,
            "loggers": {k: v.model_dump(mode=mode) if v is not None else {} for k, v in self.loggers.items()},
        }


def _named(section: dict[str, Any] | None, key: str, where: str, default: str | None = None) -> tuple[str, dict]:
    section = dict(section or {})
    name = section.pop(key, default)
    if not name:
        raise ConfigError(f"{where}.{key}: missing; say which {where} to use")
    return str(name), section


def validate_cognate(host: PluginHost, raw: dict[str, Any]) -> CognateConfig:
    check_sections(raw, SECTIONS)
    arch, model_raw = _named(raw.get("model"), "architecture", "model")
    arch_reg = host.get(ArchitectureSpec, arch)
    act = isinstance(raw.get("callbacks"), dict) and "act" in raw["callbacks"]
    model_cfg = validate(arch_reg.config, _with_halting_head(arch_reg.config, model_raw, act), "model")
    head = getattr(model_cfg, "halting_head", None)
    if act and head is False:
        raise ConfigError("callbacks.act is on but model.halting_head=false: ACT trains and reads the model's"
                          " halting head. Set model.halting_head=true, or turn ACT off with callbacks.act=null")
    if not act and head is True:
        # DDP's find_unused_parameters cannot rescue it: the head is computed, only no loss uses it.
        raise ConfigError("model.halting_head=true but callbacks.act is off: no loss trains the halting head"
                          " (a multi-process run would fail at step 2). Turn ACT on with callbacks.act={},"
                          " or leave model.halting_head unset (it follows callbacks.act)")
    task_name, task_raw = _named(raw.get("task"), "name", "task")
    task_reg = host.get(DatasetSpec, task_name)
    task_fields = task_reg.config.model_fields
    if "name" in task_fields:
        task_raw["name"] = task_name
    task_cfg = validate(task_reg.config, task_raw, "task")
    trainer_name, trainer_raw = _named(raw.get("trainer"), "name", "trainer", "deep_supervision")
    trainer_reg = host.get(TrainerSpec, trainer_name)
    if "name" in trainer_reg.config.model_fields:
        trainer_raw["name"] = trainer_name
    trainer_cfg = validate(trainer_reg.config, trainer_raw, "trainer")
    callbacks = _plugin_section(host, raw, "callbacks", CallbackSpec, {})
    loggers = _plugin_section(host, raw, "loggers", LoggerSpec, {"jsonl": {}})
    evaluators = list(raw.get("evaluators") or ["exact", "token"])
    for name in evaluators:
        host.get(EvaluatorSpec, name)
    seed, data_seed = raw.get("seed", 0), raw.get("data_seed", 0)
    for key, value in (("seed", seed), ("data_seed", data_seed)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if not 0 <= value <= SEED_MAX:
            raise ConfigError(f"{key}={value}: out of range; a seed is an integer from 0 to {SEED_MAX}")
    models = raw.get("models", 1)
    if not isinstance(models, int) or isinstance(models, bool) or models < 1:
        raise ConfigError(f"models: expected an integer >= 1 (how many base models to train), got {models!r}")
    validation_samples = raw.get("validation_samples", 0)
    if not isinstance(validation_samples, int) or isinstance(validation_samples, bool) or validation_samples < 0:
        raise ConfigError(f"validation_samples: expected an integer >= 0 (training rows held out for choices;"
                          f" 0: none), got {validation_samples!r}")
    for name, cb_cfg in callbacks.items():
        reads = getattr(cb_cfg, "reads_validation", None)
        if validation_samples == 0 and callable(reads) and reads():
            raise ConfigError(f"callbacks.{name} decides on the validation split, but there is none: set"
                              " validation_samples=N (training rows held out for it, e.g. 200); the eval split"
                              " is only reported, never decided on")
    if seed + models - 1 > SEED_MAX:  # --models N trains seeds seed .. seed+N-1
        raise ConfigError(f"seed={seed} with models={models}: the last model's seed {seed + models - 1} is above"
                          f" {SEED_MAX}; choose a seed of at most {SEED_MAX - models + 1}")
    return CognateConfig(arch, model_cfg, task_name, task_cfg, trainer_name, trainer_cfg, callbacks,
                         evaluators, seed, data_seed, models, loggers, validation_samples)


def _plugin_section(host: PluginHost, raw: dict[str, Any], section: str, kind: type[CallbackSpec] | type[LoggerSpec],
                    default: dict[str, Any]) -> dict[str, BaseModel | None]:
    """``{name: fields}`` of enabled plugins of ``kind`` (callbacks, loggers), each validated by
    its own config model; ``{}``/``true``/``null`` fields mean its defaults."""
    given = raw.get(section, default)
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(f"{section}: expected a mapping of {kind.kind} name to its fields, got {given!r}")
    out: dict[str, BaseModel | None] = {}
    for name, fields in given.items():
        reg = host.get(kind, name)
        fields = {} if fields is True or fields is None else fields
        if reg.config is None:  # a plugin without settings
            if fields:
                raise ConfigError(f"{section}.{name}: takes no settings, got {fields!r}")
            out[name] = None
        else:
            out[name] = validate(reg.config, fields, f"{section}.{name}")
    return out


def _with_halting_head(settings: Any, model_raw: dict[str, Any], act: bool) -> dict[str, Any]:
    """An architecture whose ``model`` section has a ``halting_head`` field has the head exactly
    when something trains it, the ``act`` callback: unset, the field follows ``callbacks.act``
    (and ``config.json`` records what was built); set, it must agree (checked by the caller). A
    parameter that is computed but reached by no loss stops a DDP run at its second step."""
    if "halting_head" in getattr(settings, "model_fields", {}) and "halting_head" not in model_raw:
        return {**model_raw, "halting_head": act}
    return model_raw


def task_spec_for(host: PluginHost, cfg: CognateConfig) -> TaskSpec:
    """The task's spec without generating its data, when the dataset config can say it."""
    spec = getattr(cfg.task, "task_spec", None)
    if callable(spec):
        return spec()
    return host.get(DatasetSpec, cfg.task_name).build(cfg.task, cfg.data_seed).spec


def build_model(host: PluginHost, cfg: CognateConfig, task: TaskSpec, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return host.get(ArchitectureSpec, cfg.architecture).build(cfg.model, task)


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def describe_variants(host: PluginHost, with_parameters: bool = True) -> list[dict[str, Any]]:
    rows = []
    for name, variant in sorted(host.items(VariantSpec).items()):
        row: dict[str, Any] = {"name": name, "description": variant.description,
                               "plugin": host.plugin_of(VariantSpec, name)}
        try:
            cfg = validate_cognate(host, dict(variant.config))
            m = cfg.model
            row.update(task=cfg.task_name, architecture=cfg.architecture, d_model=getattr(m, "d_model", None),
                       layers=getattr(m, "n_layers", None), n=getattr(m, "n", None), T=getattr(m, "T", None),
                       n_sup=getattr(m, "n_sup", 1), mixer=getattr(m, "mixer", None),
                       effective_depth=m.effective_depth() if hasattr(m, "effective_depth") else None,
                       callbacks=sorted(cfg.callbacks))
            if with_parameters:
                spec = task_spec_for(host, cfg)
                with torch.device("meta"):  # shapes only: no memory, no init time
                    model = host.get(ArchitectureSpec, cfg.architecture).build(cfg.model, spec)
                embed = sum(p.numel() for n_, p in model.named_parameters() if n_.startswith(("embed", "head")))
                row.update(parameters=count_parameters(model), non_embedding_parameters=count_parameters(model) - embed,
                           vocab_size=spec.vocab_size, seq_len=spec.seq_len)
        except Exception as exc:  # one broken variant must not hide the others
            row["error"] = f"{type(exc).__name__}: {exc}"
        rows.append(row)
    return rows


class CognatePhase(Phase):
    name: ClassVar[str] = "cognate"
    default_variant: ClassVar[str | None] = "trm_small"

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
        ``--minutes``, its time budget."""
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
                trainer.pop("epochs", None)
                if options.minutes is None:
                    trainer.pop("minutes", None)
            trainer.update({k: v for k, v in budget.items() if v is not None})
            raw["trainer"] = trainer
        return raw

    def validate(self, raw: dict[str, Any]) -> CognateConfig:
        return validate_cognate(self.host, raw)

    def resume_view(self, resolved: dict[str, Any]) -> dict[str, Any]:
        # Runs from before ``models`` trained one; from before ``validation_samples``, held none out.
        return {"models": 1, "validation_samples": 0, **_without_budget(resolved)}

    def check_ready(self, config: CognateConfig, *, options: RunOptions, run_dir: Path, world_size: int) -> None:
        """Before any work: the trainer's device exists, ``world_size`` processes can split the
        global batch evenly, and a ``--resume`` has a checkpoint to continue from."""
        device = getattr(config.trainer, "device", None)
        if isinstance(device, str):
            resolve_device(device)
        batch = getattr(config.trainer, "batch_size", None)
        if world_size > 1 and isinstance(batch, int) and batch % world_size:
            fit = max(world_size, batch // world_size * world_size)
            raise ConfigError(
                f"trainer.batch_size={batch} is the global batch and must split evenly among {world_size}"
                f" processes (--nproc {world_size}); use a multiple of {world_size}, e.g. --set"
                f" trainer.batch_size={fit}, or another --nproc")
        check_loggers_available(self.host.get(LoggerSpec, name) for name in config.loggers)
        check_memory(self.host, config, world_size)
        if options.resume:
            dirs = [run_dir] if config.models == 1 else [run_dir / f"model-{i}" for i in range(config.models)]
            if not any(checkpoints_newest_first(d / "checkpoints") for d in dirs):
                raise ConfigError(
                    f"--resume: no checkpoint under {dirs[0] / 'checkpoints'}; start the run without --resume,"
                    " or pass --out with a run that saved checkpoints (--checkpoint-every N saves them)")

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
                           details={"models": per_model, "variant": ctx.variant})

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
                                         config_fingerprint=sha256_json(_fingerprint_config(cfg)),
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


def check_memory(host: PluginHost, cfg: CognateConfig, world_size: int) -> None:
    """Refuse a model and batch that will not fit the device's free memory, before anything is
    allocated (:mod:`~agent_forge.phases.cognate.memory_estimate`). Skipped when the task cannot
    say its shape without building its data, or the free memory cannot be read."""
    from agent_forge.phases.cognate import memory_estimate as mem
    from agent_forge.phases.cognate.training_config import resolve_precision

    spec_of = getattr(cfg.task, "task_spec", None)
    if not callable(spec_of):
        return
    spec = spec_of()
    try:
        with torch.device("meta"):  # shapes only: no memory, no init time
            parameters = count_parameters(host.get(ArchitectureSpec, cfg.architecture).build(cfg.model, spec))
    except Exception:  # an architecture that cannot be built without memory: no estimate, as before
        return
    device = resolve_device(getattr(cfg.trainer, "device", "cpu"))
    precision = resolve_precision(getattr(cfg.trainer, "precision", "fp32"), device)
    est = mem.estimate(parameters, cfg.model, cfg.trainer, seq_len=spec.seq_len, vocab=spec.vocab_size,
                       ema="ema" in cfg.callbacks, world_size=world_size,
                       activation_bytes=2 if precision == "bf16" else 4, shared_memory=device.type == "cpu")
    available = mem.available_bytes(device)
    if available is not None and est.total_bytes > available:
        raise ConfigError(mem.refusal(est, available, cfg.model, cfg.trainer))


class out_of_memory_as_one_line:
    """An allocation that fails anyway (the estimate is a bound, not a promise) becomes one
    ConfigError naming what was being done and what to lower, instead of the allocator's traceback."""

    def __init__(self, doing: str) -> None:
        self.doing = doing

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool:
        text = str(exc) if exc is not None else ""
        if isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or (
                isinstance(exc, RuntimeError) and ("can't allocate memory" in text or "out of memory" in text)):
            first = text.strip().splitlines()[0][:200] if text.strip() else type(exc).__name__
            raise ConfigError(f"out of memory while {self.doing} ({first}); lower model.d_model or"
                              " trainer.batch_size (or trainer.eval_batch_size)") from None
        return False


RESUMABLE_TRAINER_FIELDS = ("max_steps", "minutes", "epochs", "checkpoint_every", "log_every", "eval_every",
                            "keep_checkpoints")


def _stop_final_evaluation(signum: int, step: int, checkpoint: Path | None) -> None:
    name = signal.Signals(signum).name
    saved = (f"training finished at step {step} and is saved in checkpoint {checkpoint}" if checkpoint else
             f"training finished at step {step}, but the trainer saved no checkpoint of it")
    raise RunInterrupted(f"interrupted by {name} during the final evaluation; {saved}", signal_name=name,
                         step=step, checkpoint=checkpoint, exit_code=128 + signum)


def _without_budget(data: dict[str, Any]) -> dict[str, Any]:
    """The config minus the fields a resume may change (budgets, logging cadence, loggers)."""
    data = {**data, "trainer": dict(data.get("trainer") or {})}
    data.pop("loggers", None)
    for key in RESUMABLE_TRAINER_FIELDS:
        data["trainer"].pop(key, None)
    return data


def _fingerprint_config(cfg: CognateConfig) -> dict[str, Any]:
    """What one model's training state depends on (how many models the run trains is not)."""
    data = _without_budget(cfg.model_dump())
    data.pop("models", None)
    if not data.get("validation_samples"):
        data.pop("validation_samples", None)  # as before the key existed: older checkpoints still resume
    return data


def _mean_metrics(rows: list[dict[str, float]]) -> dict[str, float]:
    if not rows:
        return {}
    keys = set.intersection(*(set(r) for r in rows))
    return {k: sum(r[k] for r in rows) / len(rows) for k in sorted(keys)}


__all__ = ["CognatePhase", "CognateConfig", "validate_cognate", "describe_variants"]
