"""The ``forge`` app: the core's commands, then every plugin's, and ``main``, which runs it and
turns every error into one line.

The core holds only the generic commands (:mod:`agent_forge.cli.commands`). Every other command
(Cognate's ``variants``, ``eval``, ``ablate``; the dataset plugins' ``data generate``) arrives
through the hook ``forge_register_commands(cli)``, from the plugin that owns it, exactly as a
third-party plugin's commands do (:func:`build_app`). A broken plugin's commands are taken off
the app; the rest keeps working.

:func:`main` prints every error a user can fix as ONE line on stderr and exits 2
(:mod:`agent_forge.cli.messages`; ``--debug`` shows the traceback instead), and an interrupted
run as ``stopped: ...`` plus the command that resumes it.
"""

from __future__ import annotations

import sys
import warnings
from collections import Counter
from typing import Any

import typer
from rich.text import Text
from typer.main import get_command_name
from typer.models import DefaultPlaceholder

from agent_forge.cli.commands import current_host, export, inspect, plugins, root, run_phase_cmd, run_pipeline_cmd
from agent_forge.cli.launcher import resume_command
from agent_forge.cli.messages import (Abort, NoArgsIsHelp, click_errors, os_error_message, print_error, print_warning,
                                      usage_error_message)
from agent_forge.errors import ForgeError, RunInterrupted
from agent_forge.logging import console

#: Who owns the core's commands, in a clash with a plugin's.
_CORE = "agent_forge.cli"


def _core_app() -> typer.Typer:
    app = typer.Typer(name="forge", help="Agent Forge: forge models through a pipeline of plugin phases.",
                      no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
    app.callback()(root)
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
    register_plugin_commands(app, host if host is not None else current_host())
    _plain_help(app)
    return app


def _plain_help(app: typer.Typer) -> None:
    """Click's plain help for every command, the plugins' too: it wraps option help at the
    terminal's width (80 columns read in full), where typer's rich panels cut flag names and
    help text short."""
    app.rich_markup_mode = None
    for info in app.registered_groups:
        _plain_help(info.typer_instance)


def main(argv: list[str] | None = None) -> None:
    """``forge ARGV...`` (the console script; also ``python -m agent_forge``)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    shown_as = warnings.showwarning
    if not debug:
        warnings.showwarning = print_warning
    try:
        app = build_app()
        # Not standalone: usage errors come here too, to be printed like every other error.
        code = app(args=argv, prog_name="forge", standalone_mode=False)
        if isinstance(code, int) and not isinstance(code, bool) and code:
            sys.exit(code)
    except NoArgsIsHelp as exc:  # `forge run`: its help (typer's rich help has printed it already)
        if exc.format_message().strip():
            exc.show()
        sys.exit(exc.exit_code)
    except click_errors.ClickException as exc:
        print_error(usage_error_message(exc, argv))
        sys.exit(2 if isinstance(exc, click_errors.UsageError) else exc.exit_code)
    except Abort:
        print_error("aborted")
        sys.exit(1)
    except RunInterrupted as exc:
        if debug:
            raise
        from agent_forge import distributed

        if distributed.launched():  # a rank: the launching process tells the user what to do
            sys.exit(exc.exit_code)
        console.print(Text.assemble(("stopped: ", "bold yellow"), str(exc)), soft_wrap=True)
        if exc.run_dir is not None:
            # markup=False: a --set value in brackets (inputs=[a.json]) is text, not a rich tag.
            console.print(f"resume with: {resume_command(argv, exc.run_dir)}", soft_wrap=True, highlight=False,
                          markup=False)
        sys.exit(exc.exit_code)
    except ForgeError as exc:
        if debug:
            raise
        print_error(str(exc))
        sys.exit(2)
    except OSError as exc:
        # A path the user gave that cannot be used (a file where a folder must be, a folder where
        # a file must be, no permission, a full disk): one line naming it, not a traceback.
        if debug:
            raise
        print_error(os_error_message(exc))
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)
    finally:
        warnings.showwarning = shown_as
