"""Errors a user can act on. The CLI prints their message without a traceback (unless --debug)."""


class ForgeError(Exception):
    """Base class for every error that carries a message meant for the user."""


class ConfigError(ForgeError):
    """A config key or value is wrong; the message names the field, the value and the fix."""


class ArtifactError(ForgeError):
    """An artifact or checkpoint is missing, malformed or fails its checksum."""
