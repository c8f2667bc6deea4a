"""Errors a registry can answer with, named by where they happened."""

from __future__ import annotations

import re

from matrix.errors import UserError

# A registry's own words end up in the message: no line breaks or control characters
# may split the one error line, and no registry gets to print a page of text.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_MAX_MESSAGE = 1000


class RegistryError(UserError):
    """A registry refused or failed a request.

    The message names the registry, the repository and the reference, so a
    maintainer knows which of a release's many images went wrong. ``status`` and
    ``code`` (the registry's error code, e.g. MANIFEST_UNKNOWN) are for callers.
    """

    def __init__(
        self,
        message: str,
        *,
        registry: str,
        repository: str | None = None,
        reference: str | None = None,
        status: int | None = None,
        code: str | None = None,
    ) -> None:
        message = _CONTROL.sub(" ", message)
        if len(message) > _MAX_MESSAGE:
            message = message[: _MAX_MESSAGE - 3] + "..."
        self.detail = message
        self.registry = registry
        self.repository = repository
        self.reference = reference
        self.status = status
        self.code = code
        where = registry
        if repository:
            where += f"/{repository}"
        if reference:
            where += f"@{reference}" if ":" in reference else f":{reference}"
        super().__init__(f"{where}: {message}")


class AuthenticationError(RegistryError):
    """The registry or its token service refused the credentials, or lacks a permission."""


class CredentialsError(UserError):
    """Credentials could not be read (a broken config.json or credential helper)."""


class TransientError(Exception):
    """An answer worth asking again (429, 5xx): the retry policy decides; never shown as is."""

    def __init__(self, description: str, status: int, retry_after: float | None = None) -> None:
        super().__init__(description)
        self.description = description
        self.status = status
        self.retry_after = retry_after
