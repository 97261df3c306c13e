"""The ``forge`` command line (also ``python -m agent_forge``). Results go to stdout (JSON); logs,
progress and errors to stderr.

Rooms: :mod:`~agent_forge.cli.app` builds the app (the core's commands, then every plugin's) and
runs it (:func:`main`); :mod:`~agent_forge.cli.commands` holds the core's commands, whose run
options are :class:`agent_forge.runner.RunOptions`' fields; :mod:`~agent_forge.cli.launcher`
re-runs a command as K ranks (``--nproc K``); :mod:`~agent_forge.cli.messages` prints a JSON result
and every error as one line.

For command authors (public, docs/plugins.md): :func:`command_group` finds or makes a sub-group
(``forge data ...``), :func:`emit_json` prints a result the way every command does, and
:func:`build_app` builds the app with a given host's plugins (for tests).
"""

from agent_forge.cli.app import build_app, command_group, main
from agent_forge.cli.messages import emit_json

__all__ = ["build_app", "command_group", "emit_json", "main"]
