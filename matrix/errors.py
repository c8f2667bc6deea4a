"""Errors a user can cause and fix.

Every one of them ends the command with a single line on stderr and exit code 2
(see `matrix.cli`). Anything else that is raised is a bug and keeps its traceback.
They subclass ValueError so library callers can catch them the usual way.
"""


class UserError(ValueError):
    """A problem in the user's input; the message is the whole explanation."""


class VersionError(UserError):
    """A version string that is not a Prefect release version."""


class InvalidTag(UserError):
    """A tag that a registry would refuse."""


class InvalidReference(UserError):
    """An image reference that docker would refuse."""


class ConfigError(UserError):
    """A versions.toml that cannot be read or does not fit the schema."""


class PlanError(UserError):
    """A request the configuration cannot satisfy (unknown Python, flavor, line...)."""


class BuildError(Exception):
    """An image failed to build: the command ends with one line on stderr and exit 1."""
