"""Build engines behind one small interface (``base.Engine``): buildx and podman."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from matrix.engines.base import (
    BuildFailed,
    BuildRequest,
    BuildResult,
    CacheSettings,
    Call,
    Engine,
)
from matrix.engines.mirrors import BaseMirrors

if TYPE_CHECKING:
    from matrix.registry import RegistryClient, RegistryHost

__all__ = [
    "BuildFailed",
    "BuildRequest",
    "BuildResult",
    "CacheSettings",
    "Call",
    "Engine",
    "create_engine",
]


def create_engine(
    name: str,
    workdir: Path,
    target: RegistryHost,
    *,
    client: RegistryClient | None = None,
    builder: str | None = None,
    create_builder: bool = False,
    base_mirrors: BaseMirrors | None = None,
) -> Engine:
    """The buildx or podman engine, pushing to ``target`` as its record says (plain HTTP
    or verified TLS). podman reads back what it pushed, and judges a base image's
    registry, through ``client`` and its host records."""
    if name == "podman":
        from matrix.engines.podman import PodmanEngine

        return PodmanEngine(
            workdir,
            tls_verify=not target.plain_http,
            client=client,
            base_mirrors=base_mirrors,
            isolation=os.environ.get("BUILDAH_ISOLATION") or None,
        )
    from matrix.engines.buildx import BuildxEngine

    return BuildxEngine(
        workdir,
        builder=builder,
        create_builder=create_builder,
        insecure_registries=[target.host] if target.plain_http else [],
        base_mirrors=base_mirrors,
    )
