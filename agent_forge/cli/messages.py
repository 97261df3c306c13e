"""What the CLI prints besides a command's own output: a JSON result on stdout, and every error
as ONE line on stderr.

Every error a user can fix prints ``error: <message>``, never wrapped whatever the terminal width
or path length: a :class:`agent_forge.errors.ForgeError` from a command, a path that cannot be used
(:func:`os_error_message`), and a usage error the command line parser finds (a bad int for
``--max-steps``, an unknown flag, ``--models 0``), which also names the value given and ends with
``see 'forge ... --help'`` (:func:`usage_error_message`).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.text import Text

from agent_forge.logging import console


def emit_json(data: Any) -> None:
    """Write ``data`` to stdout as indented JSON (a command's machine-readable result)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def one_line(text: str) -> str:
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


def print_error(message: str) -> None:
    # soft_wrap: one line whatever the width, so a long path is never cut in two; Text: no markup.
    console.print(Text.assemble(("error: ", "bold red"), one_line(message)), soft_wrap=True)


def print_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """``warnings.showwarning`` for the command line: ``warning: MESSAGE``, one line on stderr,
    instead of Python's file, line number and source line (which mean nothing to a user)."""
    text = one_line(str(message))
    if category is not UserWarning:  # a library's own kind of warning says what kind it is
        text = f"{text} ({category.__name__})"
    console.print(Text.assemble(("warning: ", "bold yellow"), text), soft_wrap=True)


def given_value(argv: list[str], param: Any) -> str | None:
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
click_errors = sys.modules[typer.BadParameter.__module__]
NoArgsIsHelp = getattr(click_errors, "NoArgsIsHelpError", ())
Abort = (typer.Abort, getattr(click_errors, "Abort", typer.Abort))


def usage_error_message(exc: Exception, argv: list[str]) -> str:
    """A click/typer usage error as one message: what is wrong, the value given, where help is."""
    message = exc.format_message()  # type: ignore[attr-defined]
    param = getattr(exc, "param", None)
    if isinstance(exc, click_errors.BadParameter) and param is not None:
        given = given_value(argv, param)
        if given is not None:
            message = f"{message.rstrip('.')} (got {given!r})"
    ctx = getattr(exc, "ctx", None)
    if isinstance(exc, click_errors.UsageError) and ctx is not None:
        message = f"{message.rstrip('.')}; see '{ctx.command_path} --help'"
    return message
