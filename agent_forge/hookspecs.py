"""Every hook the core calls: the plugin author's reference.

Plugin authors implement these with ``from agent_forge import hookimpl``. Registration hooks
receive a ``register`` callback and call it once per item with a typed spec
(:mod:`agent_forge.specs`), so the host knows which plugin supplied each item and can refuse a
name that two plugins both claim::

    from agent_forge import hookimpl
    from agent_forge.specs import ArchitectureSpec

    @hookimpl
    def forge_register_architectures(register):
        register(ArchitectureSpec("my_net", build_my_net, config=MyNetConfig))

A phase declares the hooks that only it calls beside itself and hands them to the host with its
:class:`~agent_forge.specs.PhaseSpec` (``hookspecs=``): Cognate's trainers, callbacks and
variants are in :mod:`agent_forge.phases.cognate.hookspecs`. The core describes no phase.
"""

from __future__ import annotations

from typing import Any, Callable

import pluggy

from agent_forge.specs import (ArchitectureSpec, DatasetSpec, EvaluatorSpec, ExportFormatSpec, LoggerSpec,
                               PhaseSpec, Spec)

PROJECT_NAME = "agent_forge"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def forge_register_architectures(register: Callable[[ArchitectureSpec], None]) -> None:
    """Register model architectures.

    Call ``register(ArchitectureSpec(name, build, config=ConfigModel, description=""))`` once per
    architecture. ``ConfigModel`` is a pydantic model (use ``extra="forbid"``) holding the
    architecture's own fields; ``build(config, task) -> torch.nn.Module`` gets a validated
    instance and the :class:`agent_forge.contracts.TaskSpec`. The module must follow the model
    protocol (:class:`agent_forge.models.protocol.RecursiveModel`): ``n_sup``,
    ``initial_carry(batch)`` and ``forward(carry, batch) -> (carry, ModelOutput)``.
    """


@hookspec
def forge_register_datasets(register: Callable[[DatasetSpec], None]) -> None:
    """Register tasks (datasets).

    Call ``register(DatasetSpec(name, build, config=ConfigModel, generate=None, file_stats=None,
    description=""))``. ``build(config, seed)`` returns :class:`agent_forge.data.TaskData`: the
    train and eval splits plus the ``TaskSpec``. It must not download anything: generate data, or
    read local files named in the config. ``generate`` and ``file_stats`` (optional) serve
    ``forge data generate`` and ``forge data stats``.
    """


@hookspec
def forge_register_evaluators(register: Callable[[EvaluatorSpec], None]) -> None:
    """Register evaluators.

    Call ``register(EvaluatorSpec(name, evaluate, description=""))``. ``evaluate(model,
    task_data, ctx) -> dict[str, float]`` returns named metrics for the split ``ctx.split`` of
    ``task_data``; ``ctx`` is an :class:`agent_forge.phases.common.evaluation.EvalContext`, whose
    ``predictions()`` runs the model once and is shared by every evaluator.
    """


@hookspec
def forge_register_loggers(register: Callable[[LoggerSpec], None]) -> None:
    """Register metrics loggers (TensorBoard, W&B, MLflow, files, ...).

    Call ``register(LoggerSpec(name, build, config=ConfigModel | None, check_available=None,
    description=""))``. ``build(config, run_dir)`` returns an :class:`agent_forge.loggers.Logger`
    (subclass it and override ``start(config, resume_step=)``, ``log_metrics(kind, step,
    metrics)``, ``log_image(tag, path, step)``, ``finish(status)``). A run selects loggers with
    ``--logger a,b`` or its config's ``loggers`` section; only rank 0 of a multi-process run
    logs, and a logger that raises is dropped with a warning while the run goes on.
    """


@hookspec
def forge_register_phases(register: Callable[[PhaseSpec], None]) -> None:
    """Register pipeline phases.

    Call ``register(PhaseSpec(name, phase_class, hookspecs=(), description=""))``. The class
    follows :class:`agent_forge.runner.Phase`: ``phase_class(host).run(ctx) -> PhaseResult``.
    ``hookspecs`` are the modules of hooks the phase itself calls; the host adds them (pluggy's
    ``add_hookspecs``) before it checks the plugins' hook implementations, so a plugin may
    implement a phase's hooks exactly like the core's.
    """


@hookspec
def forge_register_export_formats(register: Callable[[ExportFormatSpec], None]) -> None:
    """Register formats ``forge export ARTIFACT DIR --format NAME`` can write.

    Call ``register(ExportFormatSpec(name, write, description=""))``. ``write(manifest, out, *,
    overwrite) -> list[Path]`` gets the path of an artifact manifest (not yet verified: call
    :func:`agent_forge.artifacts.verify_artifact` or :func:`agent_forge.load_artifact` first),
    the folder to write, and whether the user allowed writing into a non-empty one; it returns
    the files it wrote. The core's own format, ``hub`` (the Hugging Face layout), is the default.
    Raise :class:`agent_forge.errors.ForgeError` naming what the format cannot express.
    """


@hookspec
def forge_register_commands(cli: Any) -> None:
    """Add commands to the ``forge`` CLI.

    ``cli`` is the root :class:`typer.Typer` app. It already holds the core's generic commands
    (``plugins``, ``inspect``, ``run phase``, ``run pipeline``) and those of the plugins called
    before yours (built-ins first, then entry points); the built-in ones (``variants``, ``eval``,
    ``ablate``, ``data generate``) arrive through this same hook. Add a command with
    ``cli.command("name")(function)`` (or ``@cli.command()`` on it), exactly as in typer. For
    ``forge GROUP name``, take the group from ``agent_forge.cli.command_group(cli, "GROUP",
    help=...)``, which returns the group another plugin already made or adds a new one, and
    call ``.command("name")`` on it; the core makes no ``data`` group: the dataset plugin that
    first asks for it does.

    Inside a command, ``agent_forge.plugin_host.get_host()`` is the host that loaded the
    plugins. Print results on stdout (``agent_forge.cli.emit_json``) and logs on stderr; raise
    :class:`agent_forge.errors.ForgeError` for an error the user can fix: it is printed as one
    ``error:`` line with exit status 2 (``--debug`` shows the traceback).

    A plugin whose hook raises, or that adds a command or group name already taken, is reported
    (``forge plugins``: failed, with the error) and skipped, not fatal: what it added to the CLI
    is taken back, its other registrations are dropped, and every other command keeps working.
    """


@hookspec
def forge_phase_start(phase: str, config: dict[str, Any]) -> None:
    """Observe a phase starting; ``config`` is the resolved config as plain JSON data."""


@hookspec
def forge_phase_end(phase: str, result: Any) -> None:
    """Observe a phase ending; ``result`` is its :class:`agent_forge.contracts.PhaseResult`."""


@hookspec
def forge_artifact_saved(artifact: Any) -> None:
    """Observe a hand-off artifact written; ``artifact`` is its ``ModelArtifact``."""


#: The core's registration hooks, in the order the host calls them, with the spec each takes.
#: Phases first: a phase's ``hookspecs`` add its own registration hooks, called after these.
REGISTRATION_HOOKS: dict[str, type[Spec]] = {
    "forge_register_phases": PhaseSpec,
    "forge_register_architectures": ArchitectureSpec,
    "forge_register_datasets": DatasetSpec,
    "forge_register_evaluators": EvaluatorSpec,
    "forge_register_loggers": LoggerSpec,
    "forge_register_export_formats": ExportFormatSpec,
}
