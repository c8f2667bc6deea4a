"""Where registry credentials come from, looked up the way the docker CLI does it.

Order, first match wins:

1. ``MATRIX_REGISTRY_USERNAME`` and ``MATRIX_REGISTRY_PASSWORD`` (for CI). They apply
   to every registry unless ``MATRIX_REGISTRY_HOSTS`` lists the hosts they are for
   (comma separated, e.g. ``docker.io,ghcr.io``), so a copy between registries does
   not hand one registry's password to another.
2. ``DOCKER_AUTH_CONFIG``: a JSON document with an ``auths`` map, as in config.json.
3. ``$DOCKER_CONFIG/config.json`` (default ``~/.docker/config.json``): the registry's
   ``credHelpers`` entry, else ``credsStore``, else its ``auths`` entry. Helpers are
   run as ``docker-credential-<name> get`` (the docker credential helper protocol).

Secrets never appear in a repr or an error message.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matrix.registry.errors import CredentialsError

USERNAME_VARIABLE = "MATRIX_REGISTRY_USERNAME"
PASSWORD_VARIABLE = "MATRIX_REGISTRY_PASSWORD"
HOSTS_VARIABLE = "MATRIX_REGISTRY_HOSTS"
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_DOCKER_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# What a credential helper prints when it simply has nothing for this registry.
_NOT_FOUND = "credentials not found"
# A helper username that means "the secret is an identity (refresh) token".
_IDENTITY_TOKEN_USER = "<token>"


@dataclass(frozen=True, slots=True)
class Credentials:
    username: str
    password: str = field(default="", repr=False)
    # A refresh token for the OAuth2 token endpoint (docker login with an identity provider).
    identity_token: str | None = field(default=None, repr=False)
    # Sent as-is as a Bearer token.
    registry_token: str | None = field(default=None, repr=False)
    source: str = ""


def config_key(registry: str) -> str:
    """The key docker files a registry's credentials under."""
    return DOCKER_HUB_KEY if registry in _DOCKER_HUB_HOSTS else registry


def find_credentials(registry: str, environ: Mapping[str, str] | None = None) -> Credentials | None:
    """The credentials for ``registry`` (``host[:port]``), or None to go anonymous."""
    environ = os.environ if environ is None else environ
    return (
        _from_matrix_variables(registry, environ)
        or _from_docker_auth_config(registry, environ)
        or _from_config_file(registry, environ)
    )


def excluded_by_hosts(registry: str, environ: Mapping[str, str] | None = None) -> str | None:
    """Why ``MATRIX_REGISTRY_USERNAME`` was not used for ``registry``, if
    ``MATRIX_REGISTRY_HOSTS`` left it out; None when that is not the reason."""
    environ = os.environ if environ is None else environ
    if not environ.get(USERNAME_VARIABLE):
        return None
    hosts = _listed_hosts(environ)
    if not hosts or config_key(registry) in {config_key(h) for h in hosts}:
        return None
    return (
        f"{USERNAME_VARIABLE} is not used for {registry}: "
        f"{HOSTS_VARIABLE} names only {', '.join(sorted(hosts))}"
    )


def _listed_hosts(environ: Mapping[str, str]) -> set[str]:
    return {h.strip() for h in environ.get(HOSTS_VARIABLE, "").split(",") if h.strip()}


def _from_matrix_variables(registry: str, environ: Mapping[str, str]) -> Credentials | None:
    username = environ.get(USERNAME_VARIABLE)
    password = environ.get(PASSWORD_VARIABLE)
    if not username and not password:
        return None
    if not username or not password:
        raise CredentialsError(f"set both {USERNAME_VARIABLE} and {PASSWORD_VARIABLE}, or neither")
    hosts = _listed_hosts(environ)
    if hosts and config_key(registry) not in {config_key(h) for h in hosts}:
        return None
    return Credentials(username, password, source=f"${USERNAME_VARIABLE}")


def _from_docker_auth_config(registry: str, environ: Mapping[str, str]) -> Credentials | None:
    text = environ.get("DOCKER_AUTH_CONFIG")
    if not text:
        return None
    try:
        document = json.loads(text)
    except json.JSONDecodeError:
        raise CredentialsError("$DOCKER_AUTH_CONFIG is not valid JSON") from None
    return _from_auths(registry, document, "$DOCKER_AUTH_CONFIG")


def config_path(environ: Mapping[str, str]) -> Path:
    directory = environ.get("DOCKER_CONFIG")
    return Path(directory) / "config.json" if directory else Path.home() / ".docker/config.json"


def _from_config_file(registry: str, environ: Mapping[str, str]) -> Credentials | None:
    path = config_path(environ)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        reason = getattr(error, "strerror", None) or type(error).__name__
        raise CredentialsError(f"{path}: cannot read docker's config: {reason}") from None
    if not isinstance(document, dict):
        raise CredentialsError(f"{path}: docker's config must be a JSON object")
    key = config_key(registry)
    helper = (document.get("credHelpers") or {}).get(key) or document.get("credsStore")
    if helper:
        return run_credential_helper(helper, key)
    return _from_auths(registry, document, str(path))


def _from_auths(registry: str, document: dict[str, Any], source: str) -> Credentials | None:
    auths = document.get("auths") or {}
    if not isinstance(auths, dict):
        raise CredentialsError(f"{source}: 'auths' must be an object")
    key = config_key(registry)
    entry = auths.get(key)
    if entry is None:
        # Old logins stored full URLs such as https://ghcr.io/v1/.
        for stored, candidate in auths.items():
            if _strip_url(stored) == _strip_url(key):
                entry = candidate
                break
    if not entry:
        return None
    return _entry_credentials(entry, key, source)


def _strip_url(key: str) -> str:
    return key.removeprefix("https://").removeprefix("http://").split("/", 1)[0]


def _entry_credentials(entry: dict[str, Any], key: str, source: str) -> Credentials | None:
    username, password = entry.get("username") or "", entry.get("password") or ""
    if entry.get("auth"):
        try:
            decoded = base64.b64decode(entry["auth"], validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise CredentialsError(f"{source}: the 'auth' entry for {key} is not base64") from None
        username, separator, password = decoded.partition(":")
        password = password.rstrip("\x00")
        if not separator or not username:
            raise CredentialsError(f"{source}: the 'auth' entry for {key} has no username")
    identity_token = entry.get("identitytoken") or None
    registry_token = entry.get("registrytoken") or None
    if not (username or identity_token or registry_token):
        return None
    return Credentials(username, password, identity_token, registry_token, source=source)


def run_credential_helper(helper: str, key: str) -> Credentials | None:
    """Ask ``docker-credential-<helper>`` for ``key``'s credentials."""
    program = f"docker-credential-{helper}"
    try:
        result = subprocess.run(
            [program, "get"], input=key, capture_output=True, text=True, timeout=60
        )
    except FileNotFoundError:
        raise CredentialsError(
            f"credential helper {program} (named in docker's config) is not installed"
        ) from None
    except subprocess.TimeoutExpired:
        raise CredentialsError(f"credential helper {program} did not answer in 60s") from None
    if result.returncode != 0:
        if _NOT_FOUND in result.stdout.lower() or _NOT_FOUND in result.stderr.lower():
            return None
        # The helper's own output may hold secrets: report only that it failed.
        raise CredentialsError(
            f"credential helper {program} failed for {key} (exit code {result.returncode})"
        )
    try:
        answer = json.loads(result.stdout)
        username, secret = answer["Username"], answer["Secret"]
    except (json.JSONDecodeError, KeyError, TypeError):
        raise CredentialsError(f"credential helper {program} gave an unreadable answer") from None
    if username == _IDENTITY_TOKEN_USER:
        return Credentials("", identity_token=secret, source=program)
    return Credentials(username, secret, source=program)
