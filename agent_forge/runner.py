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
from agent_forge.config import SEED_MAX, StrictModel, apply_overrides, deep_merge, load_config_file
from agent_forge.contracts import PhaseResult
from agent_forge.errors import ArgumentTypeError, ConfigError, ForgeError, RunInterrupted
from agent_forge.files import atomic_write_json
from agent_forge.logging import get_logger
from agent_forge.plugin_host import PluginHost, get_host
from agent_forge.specs import PhaseSpec
from agent_forge.progress import PROGRESS_LINE_EVERY_S


def _flag(flag: str, help: str, **cli: Any) -> dict[str, Any]:
    """The command-line side of a :class:`RunOptions` field: its flag, help text and any extra
    typer.Option settings (``"short"``, ``"min"``, ``"kind"``)."""
    return {"flag": flag, "help": help, **cli}


class RunOptions(StrictModel):
    """What a user chooses for one phase run: the flags of ``forge run phase`` (and, the ones a
    pipeline shares, of ``forge run pipeline``), declared here once. Each field's ``flag`` metadata
    is its command-line spelling: the CLI builds both commands' options from it, and an error
    names the flag (:meth:`checked`, :func:`flag_of`).

    The runner itself reads only ``variant``, ``config_file``, ``overrides``, ``out``,
    ``runs_root`` and ``resume``. The rest (``task``, ``seed``, ``max_steps``, ``minutes``,
    ``checkpoint_every``, ``models``) mean whatever a phase makes of them in
    :meth:`Phase.apply_run_options`; ``None`` means "not given" (keep the phase's own value), and
    a phase that has no use for one ignores it, so one set of flags can reach every phase of a
    pipeline. ``progress`` is for the phase to read from ``ctx.options``.
    """

    variant: str | None = Field(None, json_schema_extra=_flag(
        "--variant", "A registered variant (forge variants), for the phases that have variants.", short="-v"))
    task: str | None = Field(None, json_schema_extra=_flag("--task", "Replace the variant's task, e.g. sudoku4."))
    overrides: tuple[str, ...] = Field((), json_schema_extra=_flag(
        "--set", "Override a config value: --set model.d_model=128 (repeatable). In a pipeline, PHASE.key=value"
        " sets a field of that phase (--set evomerge.selection_samples=8); any other key is the first phase's.",
        kind="repeated"))
    config_file: Path | None = Field(None, json_schema_extra=_flag("--config", "TOML/YAML/JSON config file."))
    max_steps: int | None = Field(None, ge=1, json_schema_extra=_flag(
        "--max-steps", "Stop after this many optimizer steps (the phases that train)."))
    minutes: float | None = Field(None, gt=0, json_schema_extra=_flag(
        "--minutes", "Wall-clock training budget (the phases that train)."))
    seed: int | None = Field(None, ge=0, le=SEED_MAX, json_schema_extra=_flag(
        "--seed", "Training seed (init, data order, augmentation)."))
    out: Path | None = Field(None, json_schema_extra=_flag(
        "--out", "Run directory (default runs/<run-id>); for a pipeline, its folder, one sub-folder per phase."))
    runs_root: Path = Path("runs")  # not a flag: where runs without --out go
    checkpoint_every: int | None = Field(None, ge=1, json_schema_extra=_flag(
        "--checkpoint-every", "Save training state every N steps."))
    resume: bool = Field(False, json_schema_extra=_flag(
        "--resume", "Continue the run in --out (or the latest one)."))
    models: int | None = Field(None, ge=1, json_schema_extra=_flag(
        "--models", "Train N base models (Cognate: seeds seed, seed+1, ...).", min=1))
    progress: bool = Field(True, json_schema_extra=_flag(
        "--progress", "A progress bar on a terminal; elsewhere (a log file, CI) a plain progress line when training"
        f" and the final evaluation start, then every {PROGRESS_LINE_EVERY_S:g} s. --no-progress: neither.",
        kind="switch"))
    #: Metrics loggers by name (``--logger tensorboard,jsonl``); None keeps the config's.
    loggers: tuple[str, ...] | None = Field(None, json_schema_extra=_flag(
        "--logger", "Metrics loggers, comma-separated: jsonl (metrics.jsonl, the default), csv, tensorboard,"
        " wandb, mlflow, or a plugin's (forge plugins).", kind="comma_list"))

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
                problems.append(f"{flag_of(name)} {err.get('input')!r}: {err['msg'][:1].lower()}{err['msg'][1:]}")
            raise ConfigError("; ".join(problems)) from None


def flag_of(field: str) -> str:
    """The ``forge run`` flag of a :class:`RunOptions` field (the field's own name if it has none)."""
    info = RunOptions.model_fields.get(field)
    extra = info.json_schema_extra if info is not None else None
    return str(extra["flag"]) if isinstance(extra, dict) and "flag" in extra else field


@dataclass(frozen=True)
class SavedCheckpoint:
    """What a phase says it has saved (:meth:`Phase.newest_checkpoint`): the checkpoint folder and
    where the run was when it was written, ``unit`` ``position`` ("step 12", "generation 3")."""

    folder: Path
    unit: str
    position: int

    def __str__(self) -> str:
        return f"{self.unit} {self.position} ({self.folder})"


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

    def variant_config(self, name: str) -> dict[str, Any]:
        """The variant ``name`` as plain config data (a phase with variants looks them up among
        the plugins, which register them through a hook the phase declares). The base has none."""
        raise ConfigError(f"--variant {name}: phase {self.name!r} has no variants; leave --variant out and set"
                          f" its fields with --set KEY=VALUE (or --config FILE)")

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

    def newest_checkpoint(self, run_dir: Path, config: Any = None) -> SavedCheckpoint | None:
        """The newest checkpoint this phase has saved under ``run_dir`` (what is on disk, not what
        was asked for), or None when there is none. ``config`` is what :meth:`validate` returned,
        when the caller has it.

        The core never reads a phase's checkpoint files: an interrupted or failed multi-process
        run (``forge run ... --nproc K``) and a run stopped at once by Ctrl-C name what this
        returns, and say "no checkpoint was saved" when it is None. The base implementation
        returns None: a phase that checkpoints says what it saved.
        """
        return None

    def check_inputs(self, config: Any, *, upstream: "tuple[Upstream, ...]", options: RunOptions) -> None:
        """Refuse a run whose inputs cannot work, before any phase of a pipeline runs.

        ``upstream`` holds the phases that run before this one and hand it their result, nearest
        last: in a pipeline, the planned phases (each with its validated config and
        :meth:`plan_output`); in ``PhaseRunner.run(..., previous=result)``, the finished one
        (``result`` set). Empty for a phase run on its own. A phase that consumes models says
        here that it has none to consume, or that what the earlier phase will hand on cannot
        suit it (too few evaluation rows), naming the field or flag to change. The base
        implementation checks nothing.
        """

    def plan_output(self, config: Any) -> dict[str, Any]:
        """What this phase will hand on, as far as its config says before it runs, for a later
        phase's :meth:`check_inputs`: e.g. ``{"models": 3, "eval_examples": 500}``. Keys it
        cannot know are left out. The base implementation knows nothing."""
        return {}

    def run(self, ctx: PhaseContext) -> PhaseResult:  # pragma: no cover - abstract
        raise NotImplementedError

    def solve(self, manifest: Path, puzzle: str, **options: Any) -> dict[str, Any]:
        """Answer one question with a model this phase made (``agent_forge.solve``, ``forge solve``).

        ``manifest`` is a verified artifact of this phase; ``puzzle`` the question as the task's
        data files write it; ``options`` are the phase's own (Cognate: samples, noise, select,
        augment, seed, early_exit, n_sup, device, trajectories). The base implementation refuses.
        """
        raise ConfigError(f"phase {self.name!r} makes no models that solve puzzles (agent_forge.solve); use the"
                          " artifact of a phase that does, e.g. cognate")


@dataclass(frozen=True)
class Upstream:
    """A phase that runs before another and hands it its result (see :meth:`Phase.check_inputs`)."""

    name: str
    #: :meth:`Phase.plan_output` of its config (empty when it has already run).
    plan: dict[str, Any]
    #: Its result, when it has already run.
    result: PhaseResult | None = None


def new_run_id(phase: str, variant: str | None) -> str:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{phase}{'-' + variant if variant else ''}-{secrets.token_hex(2)}"


def resolve_raw_config(host: PluginHost, phase: Phase, options: RunOptions) -> dict[str, Any]:
    """The variant spec, then the config file, then the phase's reading of the run options
    (:meth:`Phase.apply_run_options`), then the ``--set`` overrides."""
    raw: dict[str, Any] = {}
    if options.variant is not None and type(phase).default_variant is None:
        raise ConfigError(f"--variant {options.variant}: phase {type(phase).name!r} has no variants; leave --variant"
                          f" out and set its fields with --set KEY=VALUE (or --config FILE)")
    variant = options.variant or type(phase).default_variant
    if variant is not None:
        raw = deep_merge({}, phase.variant_config(variant))
    if options.config_file is not None:
        raw = deep_merge(raw, load_config_file(options.config_file))
    raw = phase.apply_run_options(raw, options)
    return apply_overrides(raw, options.overrides)


class PhaseRunner:
    def __init__(self, host: PluginHost | None = None) -> None:
        self.host = host or get_host()

    def phase_class(self, name: str) -> type[Phase]:
        return self.host.get(PhaseSpec, name).phase_class

    def prepare(self, name: str, options: RunOptions) -> tuple[Phase, dict[str, Any], Any]:
        phase = self.phase_class(name)(self.host)
        raw = resolve_raw_config(self.host, phase, options)
        return phase, raw, phase.validate(raw)

    def check(self, name: str, options: RunOptions, *, world_size: int | None = None,
              run_dir: Path | None = None, upstream: tuple[Upstream, ...] = ()
              ) -> tuple[Phase, dict[str, Any], Any, Path]:
        """Everything :meth:`run` checks before it makes the run directory, without making it:
        the config, the run directory, a ``--resume``, :meth:`Phase.check_inputs` against
        ``upstream`` and :meth:`Phase.check_ready` for ``world_size`` processes (default: this
        process's world). Returns the prepared phase, raw and validated config, and the run
        directory."""
        phase, raw, validated = self.prepare(name, options)
        run_dir = run_dir or self.run_dir_for(name, options)
        self._check_before_work(phase, validated, raw, options, run_dir,
                                distributed.world_size() if world_size is None else world_size, upstream)
        return phase, raw, validated, run_dir

    def _check_before_work(self, phase: Phase, validated: Any, raw: dict[str, Any], options: RunOptions,
                           run_dir: Path, world_size: int, upstream: tuple[Upstream, ...] = ()) -> None:
        check_run_dir(run_dir, options)
        phase.check_inputs(validated, upstream=upstream, options=options)
        # Only a run with something to resume has a config to hold the resume to; without a
        # checkpoint the phase's check_ready says so (start without --resume).
        if options.resume and (run_dir / "config.json").is_file() and saved_checkpoints(run_dir):
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
        if run_dir is None and options.resume and options.out is None:
            run_dir = self.run_dir_for(name, options)
            # Say which run was picked (the CLI picks and prints it itself; from Python, a log line).
            get_logger(phase=name).info("resume.picked", run_dir=str(run_dir),
                                        why="the newest unfinished run of this phase and variant with a checkpoint")
        run_dir = run_dir or self.run_dir_for(name, options)
        # In a distributed run every rank works in rank 0's run directory; only rank 0 writes.
        distributed.init_from_env()
        run_dir = distributed.broadcast_object(run_dir)
        main = distributed.is_main()
        # Every rank checks (the same answer everywhere) before rank 0 makes the folder.
        upstream = (Upstream(previous.phase, {}, previous),) if previous is not None else ()
        self._check_before_work(phase, validated, raw, options, run_dir, distributed.world_size(), upstream)
        # What was there before this run, so that a run that fails before it saved anything
        # leaves the folder as it found it (see discard_unsaved).
        before = set(run_dir.iterdir()) if run_dir.is_dir() else None
        log = get_logger(phase=name, run=run_dir.name)
        start = time.monotonic()
        try:
            if main:
                run_dir.mkdir(parents=True, exist_ok=True)
            distributed.barrier()
            resolved = _resolved(validated, raw)
            config_path = run_dir / "config.json"
            if main:
                atomic_write_json(config_path, {"phase": name, "variant": variant,
                                                "world_size": distributed.world_size(),
                                                "options": options.model_dump(mode="json"), "config": resolved})
            ctx = PhaseContext(self.host, name, options, raw, validated, variant, run_dir, previous, log)
            self.host.hook.forge_phase_start(phase=name, config=resolved)
            log.info("phase.start", run_dir=str(run_dir), variant=variant)
            result = phase.run(ctx)
        except RunInterrupted as exc:
            exc.run_dir = run_dir  # the folder a --resume continues (a phase may train in sub-folders)
            log.warning("phase.interrupted", signal=exc.signal_name, step=exc.step)
            raise
        except KeyboardInterrupt:
            # Python's own interrupt, wherever the run was: a second Ctrl-C during training, or a
            # first one in a phase that has no step to finish. Say what is on disk.
            removed = discard_unsaved(run_dir, before) if main else False
            raise interrupted_at_once(run_dir, removed, made=before is None,
                                      saved=phase.newest_checkpoint(run_dir, validated)) from None
        except BaseException as exc:
            if main and discard_unsaved(run_dir, before) and isinstance(exc, ForgeError) and exc.args:
                undone = (f"the run folder {run_dir} was removed" if before is None else
                          f"what the run added to {run_dir} was removed")
                exc.args = (f"{exc.args[0]} (nothing was saved: {undone})", *exc.args[1:])
            raise
        if result.duration_s == 0:
            result = result.model_copy(update={"duration_s": time.monotonic() - start})
        if main:
            atomic_write_json(run_dir / "result.json", result.model_dump(mode="json"))
        self.host.hook.forge_phase_end(phase=name, result=result)
        log.info("phase.end", status=result.status, duration_s=round(result.duration_s, 1))
        return result


def saved_checkpoints(run_dir: Path) -> list[Path]:
    """The checkpoints a run has saved: what its ``checkpoints/`` folders hold (the run's own, and
    each ``model-K/``'s), minus hidden entries (a ``.tmp-`` folder is a checkpoint half-written)."""
    folders = [run_dir / "checkpoints", *(p / "checkpoints" for p in sorted(run_dir.glob("*")) if p.is_dir())]
    return [entry for folder in folders if folder.is_dir() for entry in sorted(folder.iterdir())
            if not entry.name.startswith(".") and not entry.name.endswith(".corrupt")]


def discard_unsaved(run_dir: Path, before: set[Path] | None) -> bool:
    """After a run failed: if it saved no checkpoint and no result, put ``run_dir`` back as it was
    (remove it when the run made it, else remove what the run added) and return True; a folder
    holding only a half-made run would trap the user between "unfinished run, use --resume" and
    "no checkpoint to resume". A run with a checkpoint is kept for ``--resume``; returns False."""
    if not run_dir.is_dir() or saved_checkpoints(run_dir) or (run_dir / "result.json").exists():
        return False
    import shutil

    if before is None:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        for entry in set(run_dir.iterdir()) - before:
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)
    return True


def interrupted_at_once(run_dir: Path, removed: bool, made: bool, saved: SavedCheckpoint | None) -> RunInterrupted:
    """The :class:`RunInterrupted` for a Ctrl-C that stopped a run at once (Python's
    KeyboardInterrupt: a second Ctrl-C during training, or a phase with no step to finish): one
    message saying what was saved (``saved``: the phase's newest checkpoint) or that nothing was."""
    if saved is not None and not removed:
        exc = RunInterrupted(f"interrupted by SIGINT at once: the work in flight was not saved; the newest"
                             f" checkpoint is {saved.folder.name} ({saved.folder})", signal_name="SIGINT", step=-1,
                             checkpoint=saved.folder)
        exc.run_dir = run_dir
        return exc
    undone = (f"the run folder {run_dir} was removed" if removed and made else
              f"what the run added to {run_dir} was removed" if removed else f"see {run_dir}")
    return RunInterrupted(f"interrupted by SIGINT at once, before any checkpoint was saved: nothing was saved,"
                          f" {undone}", signal_name="SIGINT", step=-1)


def _resolved(validated: Any, raw: dict[str, Any]) -> dict[str, Any]:
    return validated.model_dump(mode="json") if hasattr(validated, "model_dump") else raw


def check_run_dir(run_dir: Path, options: RunOptions) -> None:
    """Refuse a run directory that is a file; one that holds a finished run (``result.json``),
    with or without ``--resume``, since a finished run is never changed; and one that holds an
    unfinished run with a checkpoint, without ``--resume``: a new run would overwrite it.

    A folder whose run saved no checkpoint (a ``config.json`` left by a run killed in its first
    steps, or by an older version) holds nothing to resume and is taken as a fresh start."""
    if run_dir.exists() and not run_dir.is_dir():
        raise ForgeError(f"--out {run_dir}: is a file, not a folder; name a folder for the run (new, or a run"
                         " to --resume)")
    if not run_dir.is_dir():
        return
    if (run_dir / "result.json").exists():
        done = describe_finished(run_dir)
        if options.resume:
            raise ForgeError(f"--resume: {run_dir} holds a finished run ({done}); a finished run is never changed,"
                             " and extending one is not supported: start a new run with another --out (and a"
                             " larger --max-steps to train longer)")
        raise ForgeError(f"--out {run_dir}: holds a finished run ({done}); a finished run is never changed:"
                         " choose another --out")
    if options.resume:
        return
    saved = saved_checkpoints(run_dir)
    if saved:
        shown = ", ".join(str(p.relative_to(run_dir)) for p in saved[:3])
        raise ForgeError(f"--out {run_dir}: holds an unfinished run ({shown}, no result.json);"
                         " continue it with --resume, or start a new run with another --out")


def describe_finished(run_dir: Path) -> str:
    """``result.json: completed at step 3`` for a finished run (what it says, as far as it says it)."""
    try:
        result = json.loads((run_dir / "result.json").read_text())
        status = result.get("status", "?")
        steps = (result.get("metrics") or {}).get("steps")
    except (OSError, ValueError, AttributeError):
        return "result.json"
    return f"result.json: {status}" + (f" at step {int(steps)}" if isinstance(steps, (int, float)) else "")


def _pick_run_dir(options: RunOptions, phase: str, variant: str | None) -> Path:
    root = options.runs_root
    if options.resume:
        runs = sorted((p for p in root.glob(f"*-{phase}{'-' + variant if variant else ''}-*")
                       if saved_checkpoints(p)), key=lambda p: p.stat().st_mtime)
        unfinished = [p for p in runs if not (p / "result.json").exists()]
        if not unfinished:
            finished = (f"; the newest, {runs[-1]}, is finished ({describe_finished(runs[-1])}) and a finished run"
                        " is never changed" if runs else "")
            raise ForgeError(f"--resume: no unfinished run of {phase}/{variant} with checkpoints under {root}"
                             f"{finished}; start a new run without --resume, or pass --out RUN_DIR to name one")
        return unfinished[-1]
    return root / new_run_id(phase, variant)


def _diff_paths(a: Any, b: Any) -> list[str]:
    from agent_forge.config import differences

    return [f"{key} ({x!r} -> {y!r})" for key, x, y in differences(a, b)]


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
        out = options.pop("out", None)
        root = Path(out or Path(options.get("runs_root", "runs")) / new_run_id("pipeline", options.get("variant")))
        planned: list[tuple[str, RunOptions]] = []
        upstream: list[Upstream] = []
        for name in self.phases:  # every phase is checked before the first one starts
            try:
                opts = RunOptions.checked(**{**options, **per_phase.get(name, {})})
                if "variant" not in per_phase.get(name, {}) and self.runner.phase_class(name).default_variant is None:
                    # Only phases that have variants take the pipeline's variant.
                    opts = opts.model_copy(update={"variant": None})
                phase, _, validated, _ = self.runner.check(name, opts, run_dir=root / name, upstream=tuple(upstream))
            except ForgeError as exc:
                exc.args = (f"pipeline phase {name!r}: {exc}", *exc.args[1:])
                raise
            planned.append((name, opts))
            upstream.append(Upstream(name, phase.plan_output(validated)))
        root_existed = root.exists()
        results: list[PhaseResult] = []
        previous: PhaseResult | None = None
        for name, opts in planned:
            try:
                previous = self.runner.run(name, opts, previous=previous, run_dir=root / name)
            except ForgeError as exc:
                if not root_existed and root.is_dir() and not any(root.iterdir()):
                    root.rmdir()  # the first phase left nothing: neither does the pipeline
                if results:
                    raise PipelineError(f"pipeline phase {name!r}: {exc}", completed=results) from exc
                exc.args = (f"pipeline phase {name!r}: {exc}", *exc.args[1:])
                raise
            except BaseException:
                if not root_existed and root.is_dir() and not any(root.iterdir()):
                    root.rmdir()
                raise
            results.append(previous)
            if previous.status == "failed":
                break
        return results


class PipelineError(ForgeError):
    """A later phase of a pipeline failed after earlier ones completed; ``completed`` holds their
    results (their run folders and artifacts are kept), so a caller can show what was done."""

    def __init__(self, message: str, *, completed: list[PhaseResult]) -> None:
        done = ", ".join(f"{r.phase} ({r.run_dir})" for r in completed)
        super().__init__(f"{message} [completed before it: {done}]")
        self.completed = list(completed)


def route_overrides(phases: list[str], overrides: list[str] | tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    """``--set`` values of a pipeline, per phase: ``PHASE.key=value`` (the key starts with the name
    of one of ``phases``) goes to that phase without the prefix; any other goes to the first phase.

    ``forge run pipeline cognate,evomerge --set trainer.lr=0.01 --set evomerge.selection_samples=8``
    gives cognate ``trainer.lr=0.01`` and evomerge ``selection_samples=8``."""
    routed: dict[str, list[str]] = {name: [] for name in phases}
    for text in overrides:
        head, dot, rest = text.partition(".")
        if dot and head in routed and "=" not in head:
            routed[head].append(rest)
        elif phases:
            routed[phases[0]].append(text)
    return {name: tuple(values) for name, values in routed.items() if values}
