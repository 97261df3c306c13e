"""The core's own commands: ``plugins``, ``inspect``, ``export``, ``run phase``, ``run pipeline``.

Every other command arrives through a plugin's ``forge_register_commands`` (see
:mod:`agent_forge.cli.app`). The run commands' options are not written here: each is a field of
:class:`agent_forge.runner.RunOptions`, whose ``flag`` metadata (:func:`run_option_parameters`)
gives the option's spelling, type and help, so the flags, the Python API (``run_phase(...)``)
and the error messages (``--max-steps 0: ...``) share one declaration.
"""

from __future__ import annotations

import inspect as _inspect
import os
import sys
import typing
from pathlib import Path
from typing import Any, Callable, Optional

import typer
from rich.table import Table

from agent_forge.cli.launcher import launch_ranks
from agent_forge.cli.messages import emit_json
from agent_forge.errors import ConfigError, ForgeError
from agent_forge.logging import configure_logging, console
from agent_forge.runner import RunOptions
from agent_forge.specs import ExportFormatSpec


def _print_version(value: bool) -> None:
    if value:
        from agent_forge import __version__

        sys.stdout.write(f"agent-forge {__version__}\n")
        raise typer.Exit()


def root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks and debug logs."),
         json_logs: Optional[bool] = typer.Option(None, "--json-logs/--console-logs",
                                                  help="Log format (default: console on a TTY)."),
         version: bool = typer.Option(False, "--version", is_eager=True, callback=_print_version,
                                      help="Print the agent-forge version and exit.")) -> None:
    configure_logging(debug=debug, json_logs=json_logs)


def current_host() -> Any:
    from agent_forge.plugin_host import get_host

    return get_host()


# -- plugins / inspect --------------------------------------------------------------------
def plugins(as_json: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List every plugin: name, version, origin and what it registered (broken ones too)."""
    from agent_forge.plugin_host import describe_plugins

    rows = describe_plugins(current_host())
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
    from agent_forge.artifacts import load_artifact, manifest_file
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
        writer = current_host().get(ExportFormatSpec, format_).write
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
_NPROC_HELP = ("Start K local processes (ranks) through torch.distributed.run; gloo on CPU, NCCL on CUDA."
               " trainer.batch_size stays the global batch. See docs/distributed.md.")
_BACKEND_HELP = "torch.distributed backend for --nproc or torchrun: gloo or nccl (default: by device)."

#: The RunOptions fields ``forge run pipeline`` takes: the ones every phase of a pipeline shares.
PIPELINE_OPTIONS = ("variant", "overrides", "max_steps", "minutes", "seed", "out", "models", "progress", "loggers")


def run_option_parameters(names: tuple[str, ...]) -> list[_inspect.Parameter]:
    """One typer option per :class:`RunOptions` field in ``names``, spelt, typed and explained by
    the field itself (its ``flag`` metadata). Each is ``None`` when not given, except the
    switches (``--resume``, ``--progress/--no-progress``), which take the field's default."""
    params = []
    for name in names:
        info = RunOptions.model_fields[name]
        meta = info.json_schema_extra
        assert isinstance(meta, dict), f"RunOptions.{name} has no flag metadata"
        flag, help_, kind = str(meta["flag"]), str(meta["help"]), meta.get("kind")
        decls = [flag, *([str(meta["short"])] if "short" in meta else [])]
        annotation: Any
        if kind == "switch":
            annotation, option = bool, typer.Option(info.default, f"{flag}/--no-{flag[2:]}", help=help_)
        elif info.annotation is bool:
            annotation, option = bool, typer.Option(info.default, *decls, help=help_)
        elif kind == "repeated":
            annotation, option = Optional[list[str]], typer.Option(None, *decls, help=help_)
        elif kind == "comma_list":
            annotation, option = Optional[str], typer.Option(None, *decls, help=help_)
        else:
            base = next(a for a in typing.get_args(info.annotation) if a is not type(None))
            limits = {"min": meta["min"]} if "min" in meta else {}
            annotation, option = Optional[base], typer.Option(None, *decls, help=help_, **limits)
        params.append(_inspect.Parameter(name, _inspect.Parameter.KEYWORD_ONLY, default=option,
                                         annotation=annotation))
    return params


def flag_values(flags: dict[str, Any]) -> dict[str, Any]:
    """The RunOptions values of the flags a run command received: a flag not given is left out (so
    the field keeps its default), ``--set`` values become a tuple, ``--logger a,b`` ``("a", "b")``."""
    values = {k: v for k, v in flags.items() if v is not None}
    if "overrides" in values:
        values["overrides"] = tuple(values["overrides"])
    if "loggers" in values:
        values["loggers"] = _loggers(values["loggers"])
    return values


def _with_run_options(names: tuple[str, ...]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Give a command the options of the RunOptions fields ``names`` (before its own); they reach it
    as keyword arguments named after the fields."""

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = list(_inspect.signature(command, eval_str=True).parameters.values())
        positional = [p for p in own if p.kind is not _inspect.Parameter.VAR_KEYWORD
                      and p.kind is not _inspect.Parameter.KEYWORD_ONLY]
        keyword = [p for p in own if p.kind is _inspect.Parameter.KEYWORD_ONLY]
        command.__signature__ = _inspect.Signature([*positional, *run_option_parameters(names), *keyword])  # type: ignore[attr-defined]
        return command

    return decorate


def _loggers(text: str) -> tuple[str, ...]:
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
        for note in r.details.get("notes") or ():  # what the phase changed that the user asked for
            out.print(f"{r.phase} note: {note}", soft_wrap=True, highlight=False)
        for ref in r.artifacts:
            out.print(f"artifact: {ref.manifest_path}", soft_wrap=True, highlight=False)
        out.print(f"run: {r.run_dir}  (report: {r.report_path}; JSON: result.json or --json)",
                  soft_wrap=True, highlight=False)




@_with_run_options(tuple(name for name in RunOptions.model_fields if name != "runs_root"))
def run_phase_cmd(
    name: str = typer.Argument(..., help="Phase name, e.g. cognate."),
    *,
    as_json: bool = typer.Option(False, "--json", help="Print the PhaseResult JSON instead of the summary."),
    nproc: int = typer.Option(1, "--nproc", min=1, help=_NPROC_HELP),
    backend: Optional[str] = typer.Option(None, "--backend", help=_BACKEND_HELP),
    **flags: Any,
) -> None:
    """Run one phase; print a short summary on stdout (the PhaseResult JSON with --json; it is
    always written to RUN_DIR/result.json)."""
    from agent_forge import distributed
    from agent_forge.runner import PhaseRunner

    options = RunOptions.checked(**flag_values(flags))
    if backend:
        distributed.check_backend(backend)
    if options.resume and options.out is None and not distributed.launched():
        # --resume without --out picks the newest unfinished run: say which, then name it for
        # every rank (and for the resume command an interrupt prints).
        runner = PhaseRunner(current_host())
        picked = runner.run_dir_for(name, options)
        which = "/".join(filter(None, (name, options.variant or runner.phase_class(name).default_variant)))
        console.print(f"resuming {picked} (the newest unfinished {which} run with a checkpoint; pass --out to"
                      " choose another)", soft_wrap=True, highlight=False)
        options = options.model_copy(update={"out": picked})
    if nproc > 1 and not distributed.launched():
        # Everything a rank would refuse (config, run folder, device, batch split, --resume)
        # is refused here, once, before any rank starts.
        phase, _, validated, run_dir = PhaseRunner(current_host()).check(name, options, world_size=nproc)
        launch_ranks(nproc, backend, run_dir, lambda: phase.newest_checkpoint(run_dir, validated))
        return
    if backend:
        os.environ[distributed.BACKEND_ENV] = backend
    try:
        result = PhaseRunner(current_host()).run(name, options)
    except BaseException:
        distributed.shutdown()
        raise
    distributed.shutdown(sync=True)
    if distributed.rank_from_env() == 0:
        emit_json(result.model_dump(mode="json")) if as_json else print_summary([result])
    if result.status == "failed":
        raise typer.Exit(1)


@_with_run_options(PIPELINE_OPTIONS)
def run_pipeline_cmd(
    phases: str = typer.Argument(..., help="Comma-separated phases, e.g. cognate,evomerge."),
    *,
    as_json: bool = typer.Option(False, "--json", help="Print the PhaseResults as a JSON list instead."),
    **flags: Any,
) -> None:
    """Run phases in order; each gets the previous PhaseResult. Prints one summary row per phase
    (the PhaseResults as JSON with --json)."""
    from agent_forge.runner import Pipeline, PipelineError, route_overrides

    names = [p.strip() for p in phases.split(",") if p.strip()]
    # Each phase checks the options (an error names the phase): Pipeline.run.
    common = flag_values(flags)
    sets, out = common.pop("overrides", ()), common.pop("out", None)
    per_phase = {name: {"overrides": given} for name, given in route_overrides(names, sets).items()}
    try:
        results = Pipeline(names, host=current_host()).run(per_phase=per_phase, out=out, **common)
    except PipelineError as exc:
        # The phases that completed are kept: show them (stdout) before the error (stderr).
        emit_json([r.model_dump(mode="json") for r in exc.completed]) if as_json else print_summary(exc.completed)
        raise
    emit_json([r.model_dump(mode="json") for r in results]) if as_json else print_summary(results)
    if any(r.status == "failed" for r in results):
        raise typer.Exit(1)
