"""The Cognate phase's config: its sections, each checked against its plugin's own model.

A variant supplies every section; ``--set``/``--config`` change any field:

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
* ``loggers``: ``{name: {its fields}}`` of metrics loggers (default: jsonl).

:class:`CognateConfig` holds them: one field per section (its description is the section's),
the plugin sections as their plugins' validated models, and the plugin names beside them.
:func:`validate_cognate` builds it from the sections a user writes; ``model_dump()`` writes the
same sections back (the run's ``config.json``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_serializer, model_validator

from agent_forge.config import SEED_MAX, StrictModel, check_sections, validate
from agent_forge.errors import ConfigError
from agent_forge.plugin_host import PluginHost
from agent_forge.phases.cognate.hookspecs import CallbackSpec, TrainerSpec
from agent_forge.specs import ArchitectureSpec, DatasetSpec, EvaluatorSpec, LoggerSpec

#: Trainer fields a ``--resume`` may change: the budget and the logging cadence.
RESUMABLE_TRAINER_FIELDS = ("max_steps", "minutes", "epochs", "checkpoint_every", "log_every", "eval_every",
                            "keep_checkpoints")


class CognateConfig(StrictModel):
    """The validated config: every section checked against its plugin's own model."""

    model_config = ConfigDict(frozen=True)

    #: The fields that name a section's plugin; they are written inside their section.
    PLUGIN_NAMES: ClassVar[dict[str, tuple[str, str]]] = {
        "architecture": ("model", "architecture"), "task_name": ("task", "name"), "trainer_name": ("trainer", "name")}

    architecture: str = Field(description="the architecture plugin (model.architecture)")
    model: BaseModel = Field(description="architecture + its fields")
    task_name: str = Field(description="the dataset plugin (task.name)")
    task: BaseModel = Field(description="dataset name + its fields")
    trainer_name: str = Field("deep_supervision", description="the trainer plugin (trainer.name)")
    trainer: BaseModel = Field(description="trainer name + its fields")
    callbacks: dict[str, BaseModel | None] = Field(
        default_factory=dict, description="{name: fields} of enabled callbacks")
    evaluators: list[str] = Field(default_factory=lambda: ["exact", "token"], description="list of evaluator names")
    seed: int = Field(0, description="training seed")
    data_seed: int = Field(0, description="data generation seed")
    models: int = Field(1, description="how many base models to train")
    validation_samples: int = Field(
        0, description="training rows held out for choices (early stop, EvoMerge); 0: none")
    loggers: dict[str, BaseModel | None] = Field(
        default_factory=lambda: {"jsonl": None}, description="{name: fields} of metrics loggers (default: jsonl)")

    @classmethod
    def sections(cls) -> dict[str, str]:
        """``{section: description}``: the top-level keys a Cognate config may have."""
        return {name: info.description or "" for name, info in cls.model_fields.items()
                if name not in cls.PLUGIN_NAMES}

    @field_validator("seed", "data_seed", "models", "validation_samples", mode="before")
    @classmethod
    def _whole_number(cls, value: Any, info: ValidationInfo) -> Any:
        # The rule in words, as a ConfigError (pydantic passes it through untouched). One place
        # for the bounds of the four counts: seeds 0..SEED_MAX, models >= 1, validation rows >= 0.
        key = info.field_name
        if key in ("seed", "data_seed"):
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"{key}: expected an integer, got {value!r}")
            if not 0 <= value <= SEED_MAX:
                raise ConfigError(f"{key}={value}: out of range; a seed is an integer from 0 to {SEED_MAX}")
        elif key == "models" and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ConfigError(f"models: expected an integer >= 1 (how many base models to train), got {value!r}")
        elif key == "validation_samples" and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise ConfigError(f"validation_samples: expected an integer >= 0 (training rows held out for choices;"
                              f" 0: none), got {value!r}")
        return value

    @model_validator(mode="after")
    def _check(self) -> "CognateConfig":
        # ConfigError, not ValueError: pydantic passes it through with its message as written.
        for name, cb_cfg in self.callbacks.items():
            reads = getattr(cb_cfg, "reads_validation", None)
            if self.validation_samples == 0 and callable(reads) and reads():
                raise ConfigError(f"callbacks.{name} decides on the validation split, but there is none: set"
                                  " validation_samples=N (training rows held out for it, e.g. 200); the eval split"
                                  " is only reported, never decided on")
        if self.seed + self.models - 1 > SEED_MAX:  # --models N trains seeds seed .. seed+N-1
            raise ConfigError(f"seed={self.seed} with models={self.models}: the last model's seed"
                              f" {self.seed + self.models - 1} is above {SEED_MAX}; choose a seed of at most"
                              f" {SEED_MAX - self.models + 1}")
        return self

    @model_serializer(mode="plain")
    def _sections(self) -> dict[str, Any]:
        # The sections as a user writes them, in JSON form whatever mode is asked: config.json,
        # the resume check and the checkpoint fingerprint all read this one layout.
        def section(plugins: dict[str, BaseModel | None]) -> dict[str, Any]:
            return {k: v.model_dump(mode="json") if v is not None else {} for k, v in plugins.items()}

        return {
            "model": {"architecture": self.architecture, **self.model.model_dump(mode="json")},
            "task": {**self.task.model_dump(mode="json"), "name": self.task_name},
            "trainer": {**self.trainer.model_dump(mode="json"), "name": self.trainer_name},
            "callbacks": section(self.callbacks),
            "evaluators": list(self.evaluators),
            "seed": self.seed,
            "data_seed": self.data_seed,
            "models": self.models,
            "validation_samples": self.validation_samples,
            "loggers": section(self.loggers),
        }


def validate_cognate(host: PluginHost, raw: dict[str, Any]) -> CognateConfig:
    """Check the sections in ``raw`` (each plugin section against its plugin's config model) and
    build the :class:`CognateConfig`. Every problem is a ConfigError naming the field."""
    check_sections(raw, CognateConfig.sections())
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
    if "name" in getattr(task_reg.config, "model_fields", {}):
        task_raw["name"] = task_name
    task_cfg = validate(task_reg.config, task_raw, "task")
    trainer_name, trainer_raw = _named(raw.get("trainer"), "name", "trainer", "deep_supervision")
    trainer_reg = host.get(TrainerSpec, trainer_name)
    if "name" in getattr(trainer_reg.config, "model_fields", {}):
        trainer_raw["name"] = trainer_name
    trainer_cfg = validate(trainer_reg.config, trainer_raw, "trainer")
    callbacks = _plugin_section(host, raw, "callbacks", CallbackSpec, {})
    loggers = _plugin_section(host, raw, "loggers", LoggerSpec, {"jsonl": {}})
    evaluators = list(raw.get("evaluators") or ["exact", "token"])
    for name in evaluators:
        host.get(EvaluatorSpec, name)
    scalars = {key: raw[key] for key in ("seed", "data_seed", "models", "validation_samples") if key in raw}
    return validate(CognateConfig, {
        "architecture": arch, "model": model_cfg, "task_name": task_name, "task": task_cfg,
        "trainer_name": trainer_name, "trainer": trainer_cfg, "callbacks": callbacks, "evaluators": evaluators,
        "loggers": loggers, **scalars})


def _named(section: dict[str, Any] | None, key: str, where: str, default: str | None = None) -> tuple[str, dict]:
    section = dict(section or {})
    name = section.pop(key, default)
    if not name:
        raise ConfigError(f"{where}.{key}: missing; say which {where} to use")
    return str(name), section


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


def without_budget(data: dict[str, Any]) -> dict[str, Any]:
    """The config (sections) minus the fields a resume may change (budgets, logging cadence, loggers)."""
    data = {**data, "trainer": dict(data.get("trainer") or {})}
    data.pop("loggers", None)
    for key in RESUMABLE_TRAINER_FIELDS:
        data["trainer"].pop(key, None)
    return data


def fingerprint_config(cfg: CognateConfig) -> dict[str, Any]:
    """What one model's training state depends on (how many models the run trains is not)."""
    data = without_budget(cfg.model_dump())
    data.pop("models", None)
    if not data.get("validation_samples"):
        data.pop("validation_samples", None)  # as before the key existed: older checkpoints still resume
    return data
