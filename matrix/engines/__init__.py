"""Build engines behind one small interface (``base.Engine``): buildx and podman."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from matrix.engines.base import (
    BuildFailed,
    BuildRequest,
    BuildResult,
    CacheSettings,
    Call,
    Engine,
)
from matrix.engines.mirrors import BaseMirrors

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
    registry: str,
    *,
    builder: str | None = None,
    create_builder: bool = False,
    insecure_registries: Sequence[str] = (),
    base_mirrors: BaseMirrors | None = None,
) -> Engine:
    """The buildx or podman engine, talking plain HTTP to loopback/insecure registries."""
    from matrix.registry.client import is_loopback

    plain_http = is_loopback(registry) or registry in insecure_registries
    if name == "podman":
        from matrix.engines.podman import PodmanEngine

        return PodmanEngine(
            workdir,
            tls_verify=not plain_http,
            insecure_registries=insecure_registries,
            base_mirrors=base_mirrors,
            isolation=os.environ.get("BUILDAH_ISOLATION") or None,
        )
    from matrix.engines.buildx import BuildxEngine

    return BuildxEngine(
        workdir,
        builder=builder,
        create_builder=create_builder,
        insecure_registries=[registry] if plain_http else [],
        base_mirrors=base_mirrors,
    )
