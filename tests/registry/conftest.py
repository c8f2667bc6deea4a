"""Clients for the registry tests: fast retries, and only the credentials a test gives."""

from __future__ import annotations

import itertools

import pytest

from matrix.reference import ImageReference, parse_reference
from matrix.registry import Credentials, RegistryClient, RetryPolicy

# Real backoff shape, test-sized waits.
FAST_RETRY = RetryPolicy(attempts=5, timeout=30, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)
_names = itertools.count()

# versions.toml of a release line with one image, one flavor and one Python.
ONE_IMAGE_CONFIG = """\
schema = 1
registry = "docker.io"
templates = "dockerfiles"

[defaults]
platforms = ["linux/amd64", "linux/arm64"]
release_sha_tags = true
sha_length = 7
prerelease_dev_tags = "none"
images = ["prefect"]

[images.prefect]
repository = "{repository}"
dev_repository = "{repository}-dev"
source = "https://github.com/PrefectHQ/prefect"
flavors = ["standard"]

[flavors.standard]
suffix = ""
template = "standard.Dockerfile.j2"

[[lines]]
versions = ">=2.11.0, <2.12.0"
latest_python = "3.10"
python.standard = ["3.10"]
"""


@pytest.fixture
def make_client():
    """``make_client(credentials=None, **options)``: a RegistryClient closed after the test."""
    clients: list[RegistryClient] = []

    def make(credentials: Credentials | None = None, **options) -> RegistryClient:
        options.setdefault("retry", FAST_RETRY)
        client = RegistryClient(credentials=lambda registry: credentials, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def repo(request):
    """``repo(host)``: a repository name no other test uses, as an ImageReference."""

    def make(host: str, tag: str = "1") -> ImageReference:
        name = request.node.name.lower().replace("[", "-").replace("]", "")
        name = "".join(c if c.isalnum() else "-" for c in name).strip("-")
        return parse_reference(f"{host}/test/{name}-{next(_names)}:{tag}")

    return make
