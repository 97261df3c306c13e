"""Running phases: one (:func:`run_phase`) or a chain (:class:`Pipeline`).

A phase is a class registered through ``forge_register_phases``. The runner resolves its config
(variant + file + overrides), makes the run directory ``runs/<run-id>/``, writes the resolved
``config.json``, calls the phase, writes ``result.json`` and hands the :class:`PhaseResult` to
the next phase.

Fail before work: everything that can refuse a run is checked before the run directory is made
or a byte is written (:meth:`PhaseRunner.check`): the config (:meth:`Phase.validate`), the run
directory (not a file, not a finished run, not an unfinished run without ``--resume``), a
``--resume`` against the run's ``config.json``, and the phase's own
:meth:`Phase.check_ready` (devices, checkpoints, how the ranks split the work).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, ValidationError

from agent_forge import distributed
from agent_forge.checkpoint import atomic_write_json
from agent_forge.config import SEED_MAX, StrictModel, apply_overrides, deep_merge, load_config_file
from agent_forge.contracts import PhaseResult
from agent_forge.errors import ArgumentTypeError, ConfigError, ForgeError, RunInterrupted
from agent_forge.logging import get_logger
from agent_forge.plugin_host import PluginHost, get_host


class RunOptions(StrictModel):
    """What a user chooses for one phase run (the CLI flags of ``forge run phase``).

    The runner itself reads only ``variant``, ``config_file``, ``overrides``, ``out``,
    ``runs_root`` and ``resume``. The rest (``task``, ``seed``, ``max_steps``, ``minutes``,
    ``checkpoint_every``, ``models``) mean whatever a phase makes of them in
    :meth:`Phase.apply_run_options`; ``None`` means "not given" (keep the phase's own value), and
    a phase that has no use for one ignores it, so one set of flags can reach every phase of a
    pipeline. ``progress`` is for the phase to read from ``ctx.options``.
    """

    variant: str | None = None
    task: str | None = None
    overrides: tuple[str, ...] = ()
    config_file: Path | None = None
    max_steps: int | None = Field(default=None, ge=1)
    minutes: float | None = Field(default=None, gt=0)
    seed: int | None = Field(default=None, ge=0, le=SEED_MAX)
    out: Path | None = None
    runs_root: Path = Path("runs")
    checkpoint_every: int | None = Field(default=None, ge=1)
    resume: bool = False
    models: int | None = Field(default=None, ge=1)
    progress: bool = True
    #: Metrics loggers by name (``--logger tensorboard,jsonl``); None keeps the config's.
    loggers: tuple[str, ...] | None = None

    @classmethod
    def checked(cls, **values: Any) -> "RunOptions":
        """``RunOptions(**values)``, with a bad value raised as a :class:`ConfigError` that names
        the flag, the value and the rule (``--max-steps 0: input should be greater than ...``)."""
        try:
            return cls(**values)
        except ValidationError as exc:
            problems = []
            for err in exc.errors():
                name = str(err["loc"][0]) if err["loc"] else ""
                if err["type"] == "extra_forbidden":
                    problems.append(f"run option {name!r} is unknown; the options are {', '.join(cls.model_fields)}")
                    continue
                flag = _FLAGS.get(name, name)
                problems.append(f"{flag} {err.get('input')!r}: {err['msg'][:1].lower()}{err['msg'][1:]}")
            raise ConfigError("; ".join(problems)) from None


#: The ``forge run`` flag of each RunOptions field (for error messages).
_FLAGS = {"overrides": "--set", "config_file": "--config", "runs_root": "runs_root",
          **{f: "--" + f.replace("_", "-") for f in ("variant", "task", "max_steps", "minutes", "seed", "out",
                                                     "checkpoint_every", "resume", "models", "progress")}}


@dataclass
class PhaseContext:
    """What a phase's :meth:`Phase.run` receives."""

    host: PluginHost
    phase: str
    options: RunOptions
    raw_config: dict[str, Any]
    #: What :meth:`Phase.validate` returned for ``raw_config``.
    config: Any
    #: The variant the config was resolved from (None for phases without variants).
    variant: str | None
    run_dir: Path
    previous: PhaseResult | None = None
    log: Any = None


class Phase:
    """Base class for phases. Subclasses set ``name`` and implement :meth:`run`.

    ``default_variant`` is used when the user names none; phases without variants leave it None
    and read ``ctx.raw_config`` (from ``--config``/``--set``) themselves.
    """

    name: ClassVar[str] = ""
    default_variant: ClassVar[str | None] = None

    def __init__(self, host: PluginHost) -> None:
        self.host = host

    def apply_run_options(self, raw: dict[str, Any], options: RunOptions) -> dict[str, Any]:
        """Turn the generic run options into this phase's own config; return the new ``raw``.

        ``raw`` is the variant merged with ``--config``; the ``--set`` overrides are applied to
        what this returns, so they win over a flag. Read ``options.task``, ``options.seed``,
        ``options.max_steps``, ``options.minutes``, ``options.checkpoint_every`` and
        ``options.models`` (each ``None`` when not given) and write them where your config keeps
        such things. The base implementation returns ``raw`` unchanged: a phase that does not
        train ignores budget flags, as it must in a pipeline, where every phase gets the same.
        """
        return raw

    def validate(self, raw: dict[str, Any]) -> Any:
        """Check ``raw`` before any work; return the validated config. Errors are ConfigError."""
        return raw

    def resume_view(self, resolved: dict[str, Any]) -> dict[str, Any]:
        """The part of the resolved config that a ``--resume`` must not change."""
        return resolved

    def check_ready(self, config: Any, *, options: RunOptions, run_dir: Path, world_size: int) -> None:
        """Refuse a run that cannot start, before its run directory is made or anything is written.

        Called after :meth:`validate` (``config`` is what it returned) by the runner, and by
        ``forge run ... --nproc K`` in the launching process before any rank starts; ``world_size``
        is the number of processes that will train (K there). Check what the config alone cannot
        say: a device that is not present, a ``--resume`` with no checkpoint in ``run_dir``, a
        batch the ranks cannot split. Raise a :class:`ForgeError` (usually ConfigError) naming
        the field or flag, the value and the fix. The base implementation checks nothing.
        """

    def run(self, ctx: PhaseContext) -> PhaseResult:  # pragma: no cover - abstract
        raise NotImplementedError


def new_run_id(phase: str, variant: str | None) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{phase}{'-' + variant if variant else ''}-{secrets.token_hex(2)}"


def resolve_raw_config(host: PluginHost, phase: Phase, options: RunOptions) -> dict[str, Any]:
    """The variant spec, then the config file, then the phase's reading of the run options
    (:meth:`Phase.apply_run_options`), then the ``--set`` overrides."""
    raw: dict[str, Any] = {}
    variant = options.variant or type(phase).default_variant
    if variant is not None:
        raw = deep_merge({}, host.get("variant", variant).obj)
    if options.config_file is not None:
        raw = deep_merge(raw, load_config_file(options.config_file))
    raw = phase.apply_run_options(raw, options)
    return apply_overrides(raw, options.overrides)


class PhaseRunner:
    def __init__(self, host: PluginHost | None = None) -> None:
        self.host = host or get_host()

    def phase_class(self, name: str) -> type[Phase]:
        return self.host.get("phase", name).obj

    def prepare(self, name: str, options: RunOptions) -> tuple[Phase, dict[str, Any], Any]:
        phase = self.phase_class(name)(self.host)
        raw = resolve_raw_config(self.host, phase, options)
        return phase, raw, phase.validate(raw)

    def check(self, name: str, options: RunOptions, *, world_size: int | None = None,
              run_dir: Path | None = None) -> tuple[Phase, dict[str, Any], Any, Path]:
        """Everything :meth:`run` checks before it makes the run directory, without making it:
        the config, the run directory, a ``--resume``, and :meth:`Phase.check_ready` for
        ``world_size`` processes (default: this process's world). Returns the prepared phase,
        raw and validated config, and the run directory."""
        phase, raw, validated = self.prepare(name, options)
        run_dir = run_dir or self.run_dir_for(name, options)
        self._check_before_work(phase, validated, raw, options, run_dir,
                                distributed.world_size() if world_size is None else world_size)
        return phase, raw, validated, run_dir

    def _check_before_work(self, phase: Phase, validated: Any, raw: dict[str, Any], options: RunOptions,
                           run_dir: Path, world_size: int) -> None:
        check_run_dir(run_dir, options)
        if options.resume and (run_dir / "config.json").is_file():
            resolved = _resolved(validated, raw)
            try:
                before = json.loads((run_dir / "config.json").read_text()).get("config")
            except (ValueError, OSError, AttributeError) as exc:
                raise ConfigError(f"--resume: cannot read {run_dir / 'config.json'} ({exc});"
                                  " start a new run with another --out") from None
            if before is not None and phase.resume_view(before) != phase.resume_view(resolved):
                diff = _diff_paths(phase.resume_view(before), phase.resume_view(resolved))
                raise ConfigError(
                    f"--resume: the config differs from the run's config.json at {', '.join(diff[:8])}."
                    " Resume with the same flags, or start a new run.")
        phase.check_ready(validated, options=options, run_dir=run_dir, world_size=world_size)

    def run_dir_for(self, name: str, options: RunOptions) -> Path:
        """Where a run of ``name`` with ``options`` lives: ``--out``, or a new ``runs/<run-id>``
        (with ``--resume``, the newest run of that phase and variant that has checkpoints)."""
        variant = options.variant or self.phase_class(name).default_variant
        return options.out or _pick_run_dir(options, name, variant)

    def run(self, name: str, options: RunOptions | None = None, *,
            previous: PhaseResult | None = None, run_dir: Path | None = None) -> PhaseResult:
        options = options or RunOptions()
        phase, raw, validated = self.prepare(name, options)  # all config errors surface here
        variant = options.variant or type(phase).default_variant
        run_dir = run_dir or self.run_dir_for(name, options)
        # In a distributed run every rank works in rank 0's run directory; only rank 0 writes.
        distributed.init_from_env()
        run_dir = distributed.broadcast_object(run_dir)
        main = distributed.is_main()
        # Every rank checks (the same answer everywhere) before rank 0 makes the folder.
        self._check_before_work(phase, validated, raw, options, run_dir, distributed.world_size())
        if main:
            run_dir.mkdir(parents=True, exist_ok=True)
        distributed.barrier()
        resolved = _resolved(validated, raw)
        config_path = run_dir / "config.json"
        if main:
            atomic_write_json(config_path, {"phase": name, "variant": variant, "world_size": distributed.world_size(),
                                            "options": options.model_dump(mode="json"), "config": resolved})
        log = get_logger(phase=name, run=run_dir.name)
        ctx = PhaseContext(self.host, name, options, raw, validated, variant, run_dir, previous, log)
        self.host.hook.forge_phase_start(phase=name, config=resolved)
        start = time.monotonic()
        log.info("phase.start", run_dir=str(run_dir), variant=variant)
        try:
            result = phase.run(ctx)
        except RunInterrupted as exc:
            exc.run_dir = run_dir  # the folder a --resume continues (a phase may train in sub-folders)
            log.warning("phase.interrupted", signal=exc.signal_name, step=exc.step)
            raise
        if result.duration_s == 0:
            result = result.model_copy(update={"duration_s": time.monotonic() - start})
        if main:
            atomic_write_json(run_dir / "result.json", result.model_dump(mode="json"))
        self.host.hook.forge_phase_end(phase=name, result=result)
        log.info("phase.end", status=result.status, duration_s=round(result.duration_s, 1))
        return result


def _resolved(validated: Any, raw: dict[str, Any]) -> dict[str, Any]:
    return validated.model_dump(mode="json") if hasattr(validated, "model_dump") else raw


def check_run_dir(run_dir: Path, options: RunOptions) -> None:
    """Refuse a run directory that is a file, holds a finished run (``result.json``), or holds
    an unfinished one (``config.json`` or checkpoints, no ``result.json``) without ``--resume``:
    a new run would overwrite it."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ForgeError(f"--out {run_dir}: is a file, not a folder; name a folder for the run (new, or a run"
                         " to --resume)")
    if options.resume or not run_dir.is_dir():
        return
    if (run_dir / "result.json").exists():
        raise ForgeError(f"{run_dir} already holds a finished run; choose another --out or pass --resume")
    started = [p.name for p in (run_dir / "config.json", run_dir / "checkpoints") if p.exists()]
    started += [f"{p.parent.name}/checkpoints" for p in sorted(run_dir.glob("*/checkpoints"))]
    if started:
        raise ForgeError(f"--out {run_dir}: holds an unfinished run ({', '.join(started[:3])}, no result.json);"
                         " continue it with --resume, or start a new run with another --out")


def _pick_run_dir(options: RunOptions, phase: str, variant: str | None) -> Path:
    root = options.runs_root
    if options.resume:
        candidates = sorted((p for p in root.glob(f"*-{phase}{'-' + variant if variant else ''}-*")
                             if (p / "checkpoints").exists()), key=lambda p: p.stat().st_mtime)
        if not candidates:
            raise ForgeError(f"--resume: no run of {phase}/{variant} with checkpoints under {root};"
                             " pass --out RUN_DIR to name one")
        return candidates[-1]
    return root / new_run_id(phase, variant)


def _diff_paths(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for key in sorted(set(a) | set(b)):
            out += _diff_paths(a.get(key), b.get(key), f"{prefix}.{key}" if prefix else key)
        return out
    return [] if a == b else [f"{prefix} ({a!r} -> {b!r})"]


def run_phase(name: str, *, host: PluginHost | None = None, previous: PhaseResult | None = None,
              **options: Any) -> PhaseResult:
    """Run one phase from Python: ``run_phase("cognate", variant="trm_small", max_steps=50)``.

    Keyword arguments are :class:`RunOptions` fields; ``overrides`` takes ``["a.b=c", ...]``.
    """
    if not isinstance(name, str):
        raise ArgumentTypeError(f"run_phase(name={name!r}): expected a phase name (str), e.g. run_phase('cognate')")
    return PhaseRunner(host).run(name, RunOptions.checked(**options), previous=previous)


class Pipeline:
    """Phases in order, each receiving the previous one's :class:`PhaseResult`.

    ``Pipeline(["cognate", "evomerge"]).run(variant="trm_small", models=3)`` — options given to
    ``run`` apply to every phase; ``per_phase={"evomerge": {...}}`` overrides them per phase.
    Every phase's config is validated (and :meth:`PhaseRunner.check`-ed) before the first phase
    starts; an error names the phase. What depends on the previous phase's result (its
    artifacts) can only be checked when that phase runs.
    """

    def __init__(self, phases: list[str], host: PluginHost | None = None) -> None:
        # A string is iterable too: Pipeline("cognate") would be the phases 'c', 'o', 'g', ...
        if isinstance(phases, (str, bytes)) or not isinstance(phases, (list, tuple)) or not all(
                isinstance(p, str) for p in phases):
            raise ArgumentTypeError(f"Pipeline(phases={phases!r}): expected a list of phase names, e.g."
                                    f" Pipeline([{phases!r}]) or Pipeline(['cognate', 'evomerge'])"
                                    if isinstance(phases, str) else
                                    f"Pipeline(phases={phases!r}): expected a list of phase names (str), e.g."
                                    " Pipeline(['cognate', 'evomerge'])")
        if not phases:
            raise ConfigError("Pipeline needs at least one phase")
        self.phases = list(phases)
        self.runner = PhaseRunner(host)
        for name in self.phases:  # unknown phase names fail before anything runs
            self.runner.phase_class(name)

    def run(self, per_phase: dict[str, dict[str, Any]] | None = None, **options: Any) -> list[PhaseResult]:
        per_phase = per_phase or {}
        root = Path(options.pop("out", None) or Path(options.get("runs_root", "runs")) /
                    new_run_id("pipeline", options.get("variant")))
        planned: list[tuple[str, RunOptions]] = []
        for name in self.phases:  # every phase is checked before the first one starts
            try:
                opts = RunOptions.checked(**{**options, **per_phase.get(name, {})})
                if name != self.phases[0] and "variant" not in per_phase.get(name, {}):
                    # Only phases that have variants take the pipeline's variant.
                    if self.runner.phase_class(name).default_variant is None:
                        opts = opts.model_copy(update={"variant": None})
                self.runner.check(name, opts, run_dir=root / name)
            except ForgeError as exc:
                exc.args = (f"pipeline phase {name!r}: {exc}", *exc.args[1:])
                raise
            planned.append((name, opts))
        results: list[PhaseResult] = []
        previous: PhaseResult | None = None
        for name, opts in planned:
            previous = self.runner.run(name, opts, previous=previous, run_dir=root / name)
            results.append(previous)
            if previous.status == "failed":
                break
        return results
