"""Fixtures shared by the whole suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import registry_server


@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> Iterator[registry_server.RegistryServer]:
    """A plain-HTTP registry on 127.0.0.1, shared by the session (use unique repo names)."""
    if not registry_server.available():
        pytest.fail("docker-registry is not installed: run scripts/test.sh, which installs it")
    server = registry_server.start_registry(tmp_path_factory.mktemp("registry"))
    yield server
    server.stop()
