"""The ``forge`` command line. Results go to stdout (JSON); logs and progress to stderr.

The core holds only the generic commands: ``plugins``, ``inspect``, ``run phase`` and
``run pipeline``. Every other command (Cognate's ``variants``, ``eval``, ``ablate``; the dataset
plugins' ``data generate``) arrives through the hook ``forge_register_commands(cli)``, from the
plugin that owns it, exactly as a third-party plugin's commands do (:func:`build_app`).

Every error a user can fix prints ONE line on stderr, ``error: <message>``, never wrapped
whatever the terminal width or path length, and exits 2: a
:class:`agent_forge.errors.ForgeError` from a command (``--debug`` shows its traceback
instead), and a usage error the command line parser finds (a bad int for ``--max-steps``, an
unknown flag, ``--models 0``), which also names the value given and ends with
``see 'forge ... --help'``.

For command authors: :func:`command_group` finds or makes a sub-group (``forge data ...``) and
:func:`emit_json` prints a result the way every command does.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import typer
from rich.table import Table
from rich.text import Text
from typer.main import get_command_name
from typer.models import DefaultPlaceholder

from agent_forge.errors import ConfigError, ForgeError, RunInterrupted
from agent_forge.logging import configure_logging, console
from agent_forge.progress import PROGRESS_LINE_EVERY_S
from agent_forge.specs import ExportFormatSpec

_state: dict[str, Any] = {"debug": False}


def _print_version(value: bool) -> None:
    if value:
        from agent_forge import __version__

        sys.stdout.write(f"agent-forge {__version__}\n")
        raise typer.Exit()


def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
          json_logs: Optional[bool] = typer.Option(None, "--json-logs/--console-logs",
                                                   help="Log format (default: console on a TTY)."),
          version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                       help="Print the agent-forge version and exit.")) -> None:
    _state["debug"] = debug
    configure_logging(debug=debug, json_logs=json_logs)


def _host() -> Any:
    from agent_forge.plugin_host import get_host

    return get_host()


def emit_json(data: Any) -> None:
    """Write ``data`` to stdout as indented JSON (a command's machine-readable result)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


# -- plugins / inspect --------------------------------------------------------------------
def plugins(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List every plugin: name, version, origin and what it registered (broken ones too)."""
    from agent_forge.plugin_host import describe_plugins

    rows = describe_plugins(_host())
    if as_json:
        emit_json(rows)
        return
    from rich import box

    from agent_forge.logging import stdout_console

    # Built-in module names lose their common prefix; what each registered wraps in its column.
    table = Table(title="agent-forge plugins", box=box.SIMPLE_HEAD, pad_edge=False, title_justify="left")
    table.add_column("plugin", no_wrap=True)
    table.add_column("origin", no_wrap=True)
    table.add_column("status", max_width=24)
    table.add_column("registered", ratio=1)
    for r in rows:
        reg = "; ".join(f"{k}: {', '.join(v)}" for k, v in r["registered"].items()) or "-"
        status = "ok" if r["status"] == "ok" else f"[red]failed[/red]: {r['error']}"
        origin = r["origin"] + (f" {r['version']}" if r["version"] else "")
        table.add_row(r["name"].removeprefix("agent_forge.plugins."), origin, status, reg)
    stdout_console().print(table)


def inspect(path: Path = typer.Argument(..., help="An artifact manifest (.json), or a folder from forge export."),
            as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """Show an artifact's manifest after verifying it (its own digest) and its weights (size, sha256).

    An edited manifest or weights file is refused (exit 2). A schema-1 manifest, written before
    manifests carried a digest, is shown as "manifest unverified": only its weights were checked.
    ``--json`` says ``verified`` (both), ``manifest_verified`` and ``weights_verified``. An export
    folder (``forge export``) is read through its ``config.json``.
    """
    from agent_forge.checkpoint import load_artifact, manifest_file
    from agent_forge.formatting import format_number

    path = manifest_file(path)

    artifact, _ = load_artifact(path)  # size, sha256, and that the weights read back as safetensors
    weights = (path.parent / artifact.weights).resolve()
    data = artifact.model_dump(mode="json")
    sealed = artifact.manifest_sealed
    if as_json:
        emit_json({"verified": sealed, "manifest_verified": sealed, "weights_verified": True,
                   "weights_path": str(weights), **data})
        return
    from agent_forge.logging import stdout_console

    out = stdout_console()

    def line(text: str) -> None:
        out.print(text, soft_wrap=True)  # soft_wrap: a long path stays on one line

    if sealed:
        line(f"[green]verified[/green] manifest {path} (sha256 {artifact.manifest_sha256[:16]}…)")
    else:
        line(f"[yellow]manifest unverified[/yellow] {path}: schema_version {artifact.schema_version},"
             " written before manifests carried a digest; the fields below are as found, not checked")
    line(f"[green]verified[/green] weights {weights} ({format_number(artifact.size_bytes, 'count')} bytes,"
         f" sha256 {artifact.sha256[:16]}…)")
    for key in ("id", "phase", "variant", "architecture", "parameters", "weights_kind", "step", "seed", "created_at"):
        value = data[key]
        shown = format_number(value, "count") if key in ("parameters", "step", "seed") else ("-" if value is None else value)
        line(f"{key:>14}: {shown}")
    line(f"{'task':>14}: {artifact.task.name} (vocab {artifact.task.vocab_size}, seq {artifact.task.seq_len})")
    if artifact.source is not None:
        line(f"{'imported from':>14}: {artifact.source.path} ({artifact.source.format},"
             f" sha256 {artifact.source.sha256[:16]}…)")
    for key, value in artifact.metrics.items():
        line(f"{key:>14}: {format_number(value, 'auto', key=key)}")


def export(path: Path = typer.Argument(..., help="An artifact manifest (.json) to export."),
           out: Path = typer.Argument(..., help="The folder to write (new or empty)."),
           overwrite: bool = typer.Option(False, "--overwrite", help="Write into a folder that is not empty."),
           format_: str = typer.Option("hub", "--format", help="hub (default: the Hugging Face layout), or a"
                                       " registered format: official (the official TRM code's step_N and"
                                       " all_config.yaml); forge plugins lists them."),
           push_to_hub: Optional[str] = typer.Option(None, "--push-to-hub", help="Then upload the folder to this"
                                                     " Hub model repository (OWNER/NAME; created if missing),"
                                                     " through huggingface_hub and its token."),
           private: bool = typer.Option(False, "--private", help="With --push-to-hub: create the repository"
                                        " private.")) -> None:
    """Write an artifact as a shareable folder in the Hugging Face Hub's layout: model.safetensors,
    config.json (the verified manifest) and a README model card. Nothing is uploaded; load the
    folder back with load_artifact(DIR) or forge eval DIR. --format NAME writes another code's
    format instead (--format official: a checkpoint the official TRM code loads)."""
    from agent_forge.export import export_artifact
    from agent_forge.logging import stdout_console

    if push_to_hub is not None:
        from agent_forge.hub import HUB_ID

        if not HUB_ID.match(push_to_hub):  # before anything is written
            raise ConfigError(f"--push-to-hub {push_to_hub!r}: not a Hub repository id; use OWNER/NAME")
    if format_ != "hub":
        writer = _host().get(ExportFormatSpec, format_).write
        written = writer(path, out, overwrite=overwrite)
        stdout_console().print(f"exported {path} -> {out} ({format_}: {', '.join(Path(p).name for p in written)})",
                               soft_wrap=True)
    else:
        config = export_artifact(path, out, overwrite=overwrite)
        stdout_console().print(f"exported {path} -> {config.parent} (model.safetensors, config.json, README.md)",
                               soft_wrap=True)
    if push_to_hub is not None:
        from agent_forge.hub import push_folder

        url = push_folder(out, push_to_hub, private=private)
        stdout_console().print(f"pushed {out} -> {push_to_hub} ({url})", soft_wrap=True)


# -- run -------------------------------------------------------------------------------------
_SET_HELP = "Override a config value: --set model.d_model=128 (repeatable)."


def _run_options(**kw: Any) -> Any:
    from agent_forge.runner import RunOptions

    sets = kw.pop("set_")
    return RunOptions.checked(overrides=tuple(sets or ()), **{k: v for k, v in kw.items() if v is not None})


_NPROC_HELP = ("Start K local processes (ranks) through torch.distributed.run; gloo on CPU, NCCL on CUDA."
               " trainer.batch_size stays the global batch. See docs/distributed.md.")
_BACKEND_HELP = "torch.distributed backend for --nproc or torchrun: gloo or nccl (default: by device)."


def _without_flag(argv: list[str], flag: str) -> list[str]:
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == flag:
            skip = True
            continue
        if arg.startswith(flag + "="):
            continue
        out.append(arg)
    return out


def newest_checkpoint(run_dir: Path) -> tuple[int, Path | None]:
    """(step, folder) of the newest checkpoint on disk under ``run_dir`` (``checkpoints/latest.json``,
    or ``model-K/checkpoints/latest.json`` with ``--models N``: the newest is the one in work);
    ``(-1, None)`` when there is none. What is on disk, not what the ranks were asked to do."""
    pointers = [*run_dir.glob("checkpoints/latest.json"), *run_dir.glob("model-*/checkpoints/latest.json")]
    if not pointers:
        return -1, None
    latest = max(pointers, key=lambda p: p.stat().st_mtime)
    try:
        pointer = json.loads(latest.read_text())
        step, folder = int(pointer["step"]), latest.parent / pointer["checkpoint"]
    except (OSError, ValueError, KeyError, TypeError):
        return -1, None
    return (step, folder) if folder.is_dir() else (-1, None)


def _launch_ranks(nproc: int, backend: Optional[str], run_dir: Path) -> None:
    """Re-run this very command as ``nproc`` ranks under torch.distributed.run, and wait.

    Every rank gets ``--out run_dir``. A rank that dies brings the others down (torchrun's agent
    stops them) and this raises a ForgeError naming the rank and how it ended. SIGINT/SIGTERM
    reach the ranks (directly from a terminal, or forwarded by torchrun's agent); they finish the
    step in flight, save a checkpoint of it and exit 130/143, and this raises
    :class:`RunInterrupted` naming the newest checkpoint on disk.

    The agent waits ``TORCH_ELASTIC_SHUTDOWN_TIMEOUT`` seconds for ranks it forwarded a signal
    to before it SIGKILLs them; torch's default (30 s) can be shorter than one step plus a
    checkpoint of a large model, so unless set it is the collective timeout
    (``FORGE_DIST_TIMEOUT_S``, default 300 s), which bounds a stuck rank anyway. A rank that
    fails on its own is still stopped within torch's fixed 30 s.
    """

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main as torchrun

    from agent_forge.distributed import TIMEOUT_ENV

    if backend:
        os.environ["FORGE_DIST_BACKEND"] = backend
    os.environ.setdefault("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", str(int(float(os.environ.get(TIMEOUT_ENV, "300")))))
    argv = [*_without_flag(_without_flag(_without_flag(sys.argv[1:], "--nproc"), "--backend"), "--out"),
            "--out", str(run_dir)]

    def interrupted(name: str) -> RunInterrupted:
        step, folder = newest_checkpoint(run_dir)
        saved = (f"the newest checkpoint is step {step} ({folder})" if folder is not None
                 else "no checkpoint was saved")
        exc = RunInterrupted(f"interrupted by {name}; every rank stopped, {saved}", signal_name=name, step=step,
                             checkpoint=folder, exit_code=128 + int(getattr(signal, name)))
        exc.run_dir = run_dir
        return exc

    try:
        torchrun(["--standalone", f"--nproc-per-node={nproc}", "--monitor-interval=0.5",
                  "--module", "agent_forge", *argv])
    except SignalException as exc:  # this process got the signal; the agent forwarded it and waited for the ranks
        raise interrupted(signal.Signals(exc.sigval).name) from None
    except ChildFailedError as exc:
        codes = {f.exitcode for f in exc.failures.values()}
        if codes <= {130, 143}:  # every rank stopped on an interrupt, after its checkpoint
            raise interrupted("SIGINT" if 130 in codes else "SIGTERM") from None
        def how(failure: Any) -> str:
            return (f"killed by signal {failure.signal_name()}" if failure.exitcode < 0
                    else f"exit code {failure.exitcode}")

        # The first rank to fail is the cause; the agent then stopped the others (SIGTERM).
        ordered = sorted(exc.failures.items(), key=lambda kv: kv[1].timestamp)
        first_rank, first = ordered[0]
        others = "".join(f"; rank {r} was stopped ({how(f)})" for r, f in ordered[1:])
        step, folder = newest_checkpoint(run_dir)
        saved = (f"the newest checkpoint, step {step} ({folder}), is intact: rerun with --resume" if folder is not None
                 else "no checkpoint was saved: rerun without --resume")
        raise ForgeError(f"distributed run failed: rank {first_rank} (pid {first.pid}) died first, {how(first)}"
                         f"{others}. {saved[:1].upper()}{saved[1:]}.") from None


_PROGRESS_HELP = ("A progress bar on a terminal; elsewhere (a log file, CI) a plain progress line when training"
                  f" and the final evaluation start, then every {PROGRESS_LINE_EVERY_S:g} s. --no-progress: neither.")
_LOGGER_HELP = ("Metrics loggers, comma-separated: jsonl (metrics.jsonl, the default), csv, tensorboard,"
                " wandb, mlflow, or a plugin's (forge plugins).")


def _loggers(text: Optional[str]) -> Optional[tuple[str, ...]]:
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise ForgeError(f"--logger {text!r}: name at least one logger, e.g. --logger jsonl,tensorboard")
    return names


def print_summary(results: list[Any]) -> None:
    """One row per phase result on stdout: status, accuracy (raw/EMA), steps, time, artifact."""
    from rich import box
    from rich.table import Table

    from agent_forge.formatting import format_number
    from agent_forge.logging import stdout_console

    out = stdout_console()
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("phase", "status", "exact raw/ema", "steps", "time"):
        table.add_column(col, no_wrap=True)
    for r in results:
        m = r.metrics

        def fraction(key: str) -> str:
            return format_number(m.get(key), "fraction")

        table.add_row(r.phase, r.status, f"{fraction('raw/exact_accuracy')} / {fraction('ema/exact_accuracy')}",
                      format_number(m.get("steps"), "count"), format_number(r.duration_s, "seconds"))
    out.print(table)
    for r in results:
        if r.message and r.status != "completed":
            out.print(f"{r.phase} {r.status}: {r.message}", soft_wrap=True, highlight=False)
        for ref in r.artifacts:
            out.print(f"artifact: {ref.manifest_path}", soft_wrap=True, highlight=False)
        out.print(f"run: {r.run_dir}  (report: {r.report_path}; JSON: result.json or --json)",
                  soft_wrap=True, highlight=False)


def run_phase_cmd(
    name: str = typer.Argument(..., help="Phase name, e.g. cognate."),
    variant: Optional[str] = typer.Option(None, "--variant", "-v", help="A registered variant (forge variants)."),
    task: Optional[str] = typer.Option(None, "--task", help="Replace the variant's task, e.g. sudoku4."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help=_SET_HELP),
    config_file: Optional[Path] = typer.Option(None, "--config", help="TOML/YAML/JSON config file."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Wall-clock training budget."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Training seed (init, data order, augmentation)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run directory (default runs/<run-id>)."),
    checkpoint_every: Optional[int] = typer.Option(None, "--checkpoint-every", help="Save training state every N steps."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out (or the latest one)."),
    models: Optional[int] = typer.Option(None, "--models", min=1,
                                         help="Train N base models (Cognate: seeds seed, seed+1, ...)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=_PROGRESS_HELP),
    logger: Optional[str] = typer.Option(None, "--logger", help=_LOGGER_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the PhaseResult JSON instead of the summary."),
    nproc: int = typer.Option(1, "--nproc", min=1, help=_NPROC_HELP),
    backend: Optional[str] = typer.Option(None, "--backend", help=_BACKEND_HELP),
) -> None:
    """Run one phase; print a short summary on stdout (the PhaseResult JSON with --json; it is
    always written to RUN_DIR/result.json)."""
    from agent_forge import distributed
    from agent_forge.runner import PhaseRunner

    options = _run_options(variant=variant, task=task, set_=set_, config_file=config_file, max_steps=max_steps,
                           minutes=minutes, seed=seed, out=out, checkpoint_every=checkpoint_every,
                           resume=resume, models=models, progress=progress, loggers=_loggers(logger))
    if backend:
        distributed.check_backend(backend)
    if options.resume and options.out is None and not distributed.launched():
        # --resume without --out picks the newest unfinished run: say which, then name it for
        # every rank (and for the resume command an interrupt prints).
        runner = PhaseRunner(_host())
        picked = runner.run_dir_for(name, options)
        which = "/".join(filter(None, (name, options.variant or runner.phase_class(name).default_variant)))
        console.print(f"resuming {picked} (the newest unfinished {which} run with a checkpoint; pass --out to"
                      " choose another)", soft_wrap=True, highlight=False)
        options = options.model_copy(update={"out": picked})
    if nproc > 1 and not distributed.launched():
        # Everything a rank would refuse (config, run folder, device, batch split, --resume)
        # is refused here, once, before any rank starts.
        *_, run_dir = PhaseRunner(_host()).check(name, options, world_size=nproc)
        _launch_ranks(nproc, backend, run_dir)
        return
    if backend:
        os.environ[distributed.BACKEND_ENV] = backend
    try:
        result = PhaseRunner(_host()).run(name, options)
    except BaseException:
        distributed.shutdown()
        raise
    distributed.shutdown(sync=True)
    if distributed.rank_from_env() == 0:
        emit_json(result.model_dump(mode="json")) if as_json else print_summary([result])
    if result.status == "failed":
        raise typer.Exit(1)


def run_pipeline_cmd(
    phases: str = typer.Argument(..., help="Comma-separated phases, e.g. cognate,evomerge."),
    variant: Optional[str] = typer.Option(None, "--variant", "-v", help="A registered variant, for the phases"
                                                                            " that have variants."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help=_SET_HELP + " PHASE.key=value sets a field of"
                                             " that phase (--set evomerge.selection_samples=8); any other key is"
                                             " the first phase's."),
    max_steps: Optional[int] = typer.Option(None, "--max-steps", help="Optimizer steps, for the phases that train."),
    minutes: Optional[float] = typer.Option(None, "--minutes", help="Training budget, for the phases that train."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of every phase."),
    out: Optional[Path] = typer.Option(None, "--out", help="Pipeline folder (default runs/<id>): one sub-folder"
                                                          " per phase."),
    models: Optional[int] = typer.Option(None, "--models", min=1, help="Models the training phases train."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help=_PROGRESS_HELP),
    logger: Optional[str] = typer.Option(None, "--logger", help=_LOGGER_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the PhaseResults as a JSON list instead."),
) -> None:
    """Run phases in order; each gets the previous PhaseResult. Prints one summary row per phase
    (the PhaseResults as JSON with --json)."""
    from agent_forge.runner import Pipeline, PipelineError, route_overrides

    names = [p.strip() for p in phases.split(",") if p.strip()]
    common = {k: v for k, v in dict(variant=variant, max_steps=max_steps, minutes=minutes, seed=seed,
                                    models=models, progress=progress, loggers=_loggers(logger)).items()
              if v is not None}
    per_phase = {name: {"overrides": sets} for name, sets in route_overrides(names, set_ or ()).items()}
    try:
        results = Pipeline(names, host=_host()).run(per_phase=per_phase, out=out, **common)
    except PipelineError as exc:
        # The phases that completed are kept: show them (stdout) before the error (stderr).
        emit_json([r.model_dump(mode="json") for r in exc.completed]) if as_json else print_summary(exc.completed)
        raise
    emit_json([r.model_dump(mode="json") for r in results]) if as_json else print_summary(results)
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)


# -- the app -----------------------------------------------------------------------------------
_CORE = "agent_forge.cli"


def _core_app() -> typer.Typer:
    app = typer.Typer(name="forge", help="Agent Forge: forge models through a pipeline of plugin phases.",
                      no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    app.callback()(_root)
    app.command()(plugins)
    app.command()(inspect)
    app.command()(export)
    run_app = typer.Typer(help="Run a phase or a pipeline of phases.", no_args_is_help=True)
    run_app.command("phase")(run_phase_cmd)
    run_app.command("pipeline")(run_pipeline_cmd)
    app.add_typer(run_app, name="run")
    return app


def _group_name(info: Any) -> str | None:
    for name in (info.name, info.typer_instance.info.name):
        if name and not isinstance(name, DefaultPlaceholder):
            return str(name)
    return None


def command_group(cli: typer.Typer, name: str, help: str = "") -> typer.Typer:
    """The sub-group ``forge NAME`` of ``cli``: the one another plugin (or the core) made, or a
    new, empty one added under that name. ``help`` is used only when the group is new.

    ``@command_group(cli, "data", help="Generate task data files.").command("generate")`` is how
    the built-in dataset plugin adds ``forge data generate``; several plugins can fill one group.
    """
    for info in cli.registered_groups:
        if _group_name(info) == name:
            return info.typer_instance
    group = typer.Typer(help=help or None, no_args_is_help=True)
    cli.add_typer(group, name=name)
    return group


def _paths(app: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group path under ``app``, e.g. ("run",), ("run", "phase")."""
    out = [prefix + (c.name or get_command_name(c.callback.__name__),) for c in app.registered_commands]
    for info in app.registered_groups:
        path = prefix + (_group_name(info) or "?",)
        out += [path, *_paths(info.typer_instance, path)]
    return out


def _snapshot(app: typer.Typer) -> list[tuple[typer.Typer, list, list]]:
    shot = [(app, list(app.registered_commands), list(app.registered_groups))]
    for info in app.registered_groups:
        shot += _snapshot(info.typer_instance)
    return shot


def register_plugin_commands(app: typer.Typer, host: Any) -> None:
    """Call every plugin's ``forge_register_commands(cli=app)``, built-ins first.

    A plugin whose hook raises, or that claims a command path already taken, is recorded as
    failed (``forge plugins`` shows it) and everything it added is taken off ``app``; the other
    plugins and the core commands keep working.
    """
    from agent_forge.plugin_host import DISABLE_ENV, PluginError

    owners = {path: _CORE for path in _paths(app)}
    for impl in host.pm.hook.forge_register_commands.get_hookimpls():
        plugin = impl.plugin_name
        before = _snapshot(app)
        try:
            impl.function(cli=app)
            paths = _paths(app)
            taken = [p for p, n in Counter(paths).items() if n > 1]
            if taken:
                where = "forge " + " ".join(taken[0])
                raise PluginError(f"command {where!r} is registered by both {owners.get(taken[0], plugin)!r} and"
                                  f" {plugin!r}; rename one, or block one with {DISABLE_ENV}={plugin}")
            owners.update({p: plugin for p in paths if p not in owners})
        except Exception as exc:  # one broken plugin never takes the CLI down
            for group, commands, groups in before:
                group.registered_commands[:] = commands
                group.registered_groups[:] = groups
            host._fail(plugin, exc)


def build_app(host: Any = None) -> typer.Typer:
    """The ``forge`` app: the core's commands, then every plugin's (``forge_register_commands``).

    ``host`` is whose plugins add commands (default: the process-wide
    :func:`agent_forge.plugin_host.get_host`, which the commands themselves use). Each call builds
    a fresh app, so a test can build one with plugins registered inline.
    """
    app = _core_app()
    register_plugin_commands(app, host if host is not None else _host())
    _plain_help(app)
    return app


def _plain_help(app: typer.Typer) -> None:
    """Click's plain help for every command, the plugins' too: it wraps option help at the
    terminal's width (80 columns read in full), where typer's rich panels cut flag names and
    help text short."""
    app.rich_markup_mode = None
    for info in app.registered_groups:
        _plain_help(info.typer_instance)


def resume_command(argv: list[str], run_dir: Path) -> str:
    """The command that continues an interrupted run: the same flags, ``--out RUN_DIR --resume``."""
    import shlex

    rest = [a for a in _without_flag(argv, "--out") if a != "--resume"]
    return shlex.join(["forge", *rest, "--out", str(run_dir), "--resume"])


def _one_line(text: str) -> str:
    """A message as one line: several lines (e.g. one per invalid field) are joined with '; '."""
    return "; ".join(line.strip() for line in str(text).splitlines() if line.strip())


def os_error_message(exc: OSError) -> str:
    """``cannot use PATH: REASON``, naming the path the user would recognise: for a failed rename
    of a temporary file into place, the destination."""
    import errno

    target = exc.filename2 if exc.filename2 is not None else exc.filename
    reason = exc.strerror or str(exc)
    hint = {errno.ENOTDIR: " (a part of that path is a file, not a folder: choose another path)",
            errno.EEXIST: " (a file is in the way of a folder that is needed there: choose another path)",
            errno.EISDIR: " (it is a folder: give a file name)",
            errno.EACCES: " (no permission: choose a path you can write)",
            errno.ENOSPC: " (free some space, or write elsewhere)"}.get(exc.errno or 0, "")
    return f"cannot use {target}: {reason}{hint}" if target is not None else f"{reason}{hint}"


def _error(message: str) -> None:
    # soft_wrap: one line whatever the width, so a long path is never cut in two; Text: no markup.
    console.print(Text.assemble(("error: ", "bold red"), _one_line(message)), soft_wrap=True)


def _given_value(argv: list[str], param: Any) -> str | None:
    """What the command line gave an option (its last occurrence), for a usage error's message."""
    opts = [*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())]
    if getattr(param, "param_type_name", "") != "option":
        return None
    found = None
    for i, arg in enumerate(argv):
        for opt in opts:
            if arg == opt and i + 1 < len(argv):
                found = argv[i + 1]
            elif arg.startswith(opt + "=") and opt.startswith("--"):
                found = arg[len(opt) + 1:]
    return found


#: The click exceptions typer raises: its own vendored copy of click (typer >= 0.2x) or click.
_click_errors = sys.modules[typer.BadParameter.__module__]
_NoArgsIsHelp = getattr(_click_errors, "NoArgsIsHelpError", ())
_Abort = (typer.Abort, getattr(_click_errors, "Abort", typer.Abort))


def usage_error_message(exc: Exception, argv: list[str]) -> str:
    """A click/typer usage error as one message: what is wrong, the value given, where help is."""
    message = exc.format_message()  # type: ignore[attr-defined]
    param = getattr(exc, "param", None)
    if isinstance(exc, _click_errors.BadParameter) and param is not None:
        given = _given_value(argv, param)
        if given is not None:
            message = f"{message.rstrip('.')} (got {given!r})"
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, _click_errors.UsageError) and ctx is not None:
        message = f"{message.rstrip('.')}; see '{ctx.command_path} --help'"
    return message


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        app = build_app()
        # Not standalone: usage errors come here too, to be printed like every other error.
        code = app(args=argv, prog_name="forge", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            sys.exit(code)
    except _NoArgsIsHelp as exc:  # `forge run`: its help (typer's rich help has printed it already)
        if exc.format_message().strip():
            exc.show()
        sys.exit(exc.exit_code)
    except _click_errors.ClickException as exc:
        _error(usage_error_message(exc, argv))
        sys.exit(2 if isinstance(exc, _click_errors.UsageError) else exc.exit_code)
    except _Abort:
        _error("aborted")
        sys.exit(1)
    except RunInterrupted as exc:
        if debug:
            raise
        from agent_forge import distributed

        if distributed.launched():  # a rank: the launching process tells the user what to do
            sys.exit(exc.exit_code)
        console.print(Text.assemble(("stopped: ", "bold yellow"), str(exc)), soft_wrap=True)
        if exc.run_dir is not None:
            console.print(f"resume with: {resume_command(argv, exc.run_dir)}", soft_wrap=True, highlight=False)
        sys.exit(exc.exit_code)
    except ForgeError as exc:
        if debug:
            raise
        _error(str(exc))
        sys.exit(2)
    except OSError as exc:
        # A path the user gave that cannot be used (a file where a folder must be, a folder where
        # a file must be, no permission, a full disk): one line naming it, not a traceback.
        if debug:
            raise
        _error(os_error_message(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
