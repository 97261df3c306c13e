"""Errors a user can act on. The CLI prints their message without a traceback (unless --debug)."""


class ForgeError(Exception):
    """Base class for every error that carries a message meant for the user."""


class ConfigError(ForgeError):
    """A config key or value is wrong; the message names the field, the value and the fix."""


class ArgumentTypeError(ConfigError, TypeError):
    """A Python API call got an argument of the wrong type; the message names the argument, what
    it got and what it takes. A TypeError, as Python's own are, and a ConfigError for the CLI."""


class ArtifactError(ForgeError):
    """An artifact or checkpoint is missing, malformed or fails its checksum."""


class RunInterrupted(ForgeError):
    """Training stopped on SIGINT or SIGTERM after saving a checkpoint of the last finished step.

    ``signal_name`` is "SIGINT" or "SIGTERM"; ``checkpoint`` the folder written (None if none
    could be); ``run_dir`` the run to resume (set by the runner); ``exit_code`` what a command
    line should exit with (128 + the signal's number, as a shell reports a signal).
    """

    def __init__(self, message: str, *, signal_name: str, step: int, checkpoint: "object | None" = None,
                 exit_code: int = 130) -> None:
        super().__init__(message)
        self.signal_name, self.step, self.checkpoint, self.exit_code = signal_name, step, checkpoint, exit_code
        self.run_dir: "object | None" = None
