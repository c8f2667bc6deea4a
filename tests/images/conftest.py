"""Fixtures of the real-image tests: the stand-in base in a test registry."""

from __future__ import annotations

import pytest

from tests.support import standin_base
from tests.support.real_images import RealImages


@pytest.fixture(scope="session")
def standin_python(registry, podman) -> str:
    """``REGISTRY/library/python:3.11-slim``: the stand-in base, pushed once per session
    to the shared test registry (the rootfs itself is cached across runs)."""
    return standin_base.import_and_push(registry.host)


@pytest.fixture(autouse=True)
def own_uv_cache(tmp_path, monkeypatch) -> None:
    """uv keeps what it read from an index by URL; the local indexes of two tests may
    get the same port, so each test resolves with a cache of its own."""
    monkeypatch.setenv("UV_CACHE_DIR", str(tmp_path / "uv-cache"))


@pytest.fixture(scope="session")
def real_images(standin_python, registry) -> RealImages:
    return RealImages(registry.host)
