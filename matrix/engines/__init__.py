"""Build engines behind one small interface (see ``base``): buildx and podman."""

from matrix.engines.base import (
    BuildFailed,
    BuildRequest,
    BuildResult,
    CacheSettings,
    Call,
    Engine,
)

ENGINES = ("buildx", "podman")

__all__ = [
    "ENGINES",
    "BuildFailed",
    "BuildRequest",
    "BuildResult",
    "CacheSettings",
    "Call",
    "Engine",
]
