"""matrix's registry credentials handed to podman: a private, temporary auth file.

podman reads credentials from its own auth file, not from matrix's sources (the
MATRIX_REGISTRY_* variables, DOCKER_AUTH_CONFIG, docker's config.json and its
helpers). For one build matrix writes what it found for the registries involved
into a file only its user can read, in a folder only its user can enter, points
podman at it with REGISTRY_AUTH_FILE (the environment, never a command line) and
removes it when the build ends, however it ends.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator

from matrix.registry.credentials import Credentials, find_credentials

ENVIRONMENT = "REGISTRY_AUTH_FILE"


@contextlib.contextmanager
def auth_file(
    hosts: Iterable[str],
    credentials: Callable[[str], Credentials | None] = find_credentials,
) -> Iterator[dict[str, str]]:
    """``{"REGISTRY_AUTH_FILE": path}`` for the ``with`` block, or ``{}`` when matrix
    has no user name and password for any of ``hosts`` (podman then uses its own)."""
    auths = {}
    for host in dict.fromkeys(hosts):
        found = credentials(host)
        # Tokens are exchanged by matrix's own client; podman takes a password.
        if found is not None and found.username and found.password:
            pair = f"{found.username}:{found.password}".encode()
            auths[host] = {"auth": base64.b64encode(pair).decode()}
    if not auths:
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="matrix-auth-") as folder:
        os.chmod(folder, 0o700)
        path = os.path.join(folder, "auth.json")
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({"auths": auths}, handle)
        yield {ENVIRONMENT: path}
