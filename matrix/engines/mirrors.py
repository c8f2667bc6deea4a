"""Base mirrors: every pull of a base image from a registry goes to another one.

``--base-mirror docker.io=mirror.example:5000`` sends pulls of
``docker.io/library/python:3.12-slim`` to ``mirror.example:5000/library/python:3.12-slim``:
a pull-through cache that spares Docker Hub's pull limits, or a test registry that
holds a stand-in base. The Dockerfiles and the base names recorded in build ids stay
as they are; only where the bytes come from changes. Three places pull a base, and
each gets the mirror here: build ids (matrix's own registry client), podman (a
registries.conf mirror entry) and buildx (the builder's buildkitd registry config).
A loopback mirror speaks plain HTTP, as loopback registries do everywhere in matrix.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from matrix.errors import UserError
from matrix.reference import DOCKER_HUB, ImageReference, check_registry_host
from matrix.registry.hosts import speaks_plain_http

ENVIRONMENT = "MATRIX_BASE_MIRRORS"
# The names Docker Hub goes by in references and in engines' configs.
_HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io", "registry-1.docker.io"})


@dataclass(frozen=True)
class BaseMirrors:
    """Registry host (``docker.io`` for Docker Hub) -> mirror ``HOST[:PORT]``."""

    mirrors: Mapping[str, str] = field(default_factory=dict)
    insecure: frozenset[str] = frozenset()  # mirrors named plain-HTTP besides loopback

    @classmethod
    def parse(cls, values: Iterable[str], insecure: Iterable[str] = ()) -> BaseMirrors:
        """``REGISTRY=HOST[:PORT]`` entries (a comma or space also separates them)."""
        mirrors: dict[str, str] = {}
        for value in values:
            for entry in value.replace(",", " ").split():
                registry, equals, mirror = entry.partition("=")
                if not equals or not registry or not mirror:
                    raise UserError(f"base mirror {entry!r}: expected REGISTRY=HOST[:PORT]")
                registry, mirror = _host(registry, entry), _host(mirror, entry)
                if mirrors.get(registry, mirror) != mirror:
                    raise UserError(f"base mirror: two mirrors for {registry}")
                mirrors[registry] = mirror
        return cls(dict(sorted(mirrors.items())), frozenset(insecure))

    def __bool__(self) -> bool:
        return bool(self.mirrors)

    def redirect(self, ref: ImageReference) -> ImageReference:
        """Where ``ref`` is pulled from: the same repository and tag on the mirror."""
        mirror = self.mirrors.get(ref.registry)
        if mirror is None:
            return ref
        return ImageReference(mirror, ref.repository, ref.tag, ref.digest)

    def plain_http(self, mirror: str) -> bool:
        return speaks_plain_http(mirror, self.insecure)

    def registries_conf(self) -> str:
        """containers-registries.conf(5) entries: each registry pulls from its mirror."""
        text = []
        for registry, mirror in self.mirrors.items():
            text.append(f"[[registry]]\nprefix = {_toml(registry)}\nlocation = {_toml(registry)}\n")
            text.append(f"[[registry.mirror]]\nlocation = {_toml(mirror)}\n")
            if self.plain_http(mirror):
                text.append("insecure = true\n")
        return "".join(text)

    def buildkitd_toml(self) -> str:
        """buildkitd.toml ``[registry]`` entries: BuildKit's ``mirrors`` and, for a
        plain-HTTP mirror, ``http = true`` on the mirror's own entry."""
        text = []
        for registry, mirror in self.mirrors.items():
            text.append(f"[registry.{_toml(registry)}]\n  mirrors = [{_toml(mirror)}]\n")
        for mirror in sorted(set(self.mirrors.values())):
            if self.plain_http(mirror):
                text.append(f"[registry.{_toml(mirror)}]\n  http = true\n")
        return "".join(text)


def base_mirrors(
    flags: Iterable[str],
    environ: Mapping[str, str],
    configured: Iterable[str] = (),
    insecure: Iterable[str] = (),
) -> BaseMirrors:
    """The run's mirrors: the command line's, else the environment's, else versions.toml's."""
    flags = list(flags)
    if flags:
        return BaseMirrors.parse(flags, insecure)
    if environ.get(ENVIRONMENT, "").strip():
        return BaseMirrors.parse([environ[ENVIRONMENT]], insecure)
    return BaseMirrors.parse(configured, insecure)


def _host(text: str, entry: str) -> str:
    """A registry host as references name it (``docker.io`` for every Hub alias)."""
    if text.lower() in _HUB_ALIASES:
        return DOCKER_HUB
    try:
        return check_registry_host(text)
    except UserError as error:
        raise UserError(f"base mirror {entry!r}: {error}") from None


def _toml(text: str) -> str:
    # A JSON string of these characters is a valid TOML basic string.
    return json.dumps(text)
