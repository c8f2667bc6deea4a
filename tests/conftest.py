"""Fixtures shared by the whole suite."""

from __future__ import annotations

import ipaddress
import shutil
import socket
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from matrix.config import LoadedConfig, load_config
from matrix.registry import Credentials, RegistryClient, RetryPolicy
from tests.support import registry_server

# The suite's own small versions.toml (see the file): what unit tests plan from, so
# that a line added to the shipped file changes none of their counts.
SMALL_CONFIG = Path(__file__).with_name("fixtures") / "versions.toml"

# The markers follow from what a test uses, so they cannot drift from it: a test is
# marked for each real part any fixture it needs (directly or through another) starts.
MARKED_BY_FIXTURES = {
    "registry": {"registry", "basic_registry", "token_registry"},
    "podman": {"podman"},
    "realimage": {"standin_python"},
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker, fixtures in MARKED_BY_FIXTURES.items():
            if used & fixtures:
                item.add_marker(marker)


# Real backoff shape, test-sized waits.
FAST_RETRY = RetryPolicy(attempts=5, timeout=30, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)


@pytest.fixture
def make_client():
    """``make_client(credentials=None, **options)``: a RegistryClient with fast retries and
    only the credentials given (one for every registry, or a function of the registry),
    closed after the test."""
    clients: list[RegistryClient] = []

    def make(
        credentials: Credentials | Callable[[str], Credentials | None] | None = None, **options
    ) -> RegistryClient:
        options.setdefault("retry", FAST_RETRY)
        given = credentials if callable(credentials) else lambda registry: credentials
        client = RegistryClient(credentials=given, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture(scope="session")
def small_config() -> LoadedConfig:
    return load_config(SMALL_CONFIG)


@pytest.fixture(scope="session")
def registry(tmp_path_factory) -> Iterator[registry_server.RegistryServer]:
    """A plain-HTTP registry on 127.0.0.1, shared by the session (use unique repo names)."""
    if not registry_server.available():
        pytest.fail("docker-registry is not installed: run scripts/test.sh, which installs it")
    with registry_server.serving(tmp_path_factory.mktemp("registry")) as server:
        yield server
    forget_local_images(server.host)


def forget_local_images(registry_host: str) -> None:
    """Remove from podman's store the images the session's builds named after its
    registry: the real-image builds alone leave gigabytes a run, and the registry they
    name is gone. The layers nothing names any more go at the end of the run."""
    podman = shutil.which("podman")
    if podman is None:
        return
    listed = subprocess.run(
        [podman, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"],
        capture_output=True,
        text=True,
    )
    ours = [name for name in listed.stdout.split() if name.startswith(f"{registry_host}/")]
    if ours:
        subprocess.run([podman, "rmi", "--force", *ours], capture_output=True)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Prune the untagged images once every test is done: not in an xdist worker, whose
    prune would take the base a build of another worker has just pulled."""
    podman = shutil.which("podman")
    if podman is not None and not hasattr(session.config, "workerinput"):
        subprocess.run([podman, "image", "prune", "--force"], capture_output=True)


@pytest.fixture(autouse=True, scope="session")
def loopback_only() -> Iterator[None]:
    """Name resolution answers for loopback only: a test that would reach out to
    another host (docker.io, say) fails at once instead of sending anything."""
    resolve = socket.getaddrinfo

    def loopback_getaddrinfo(host, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            allowed = ipaddress.ip_address(name.strip("[]")).is_loopback
        except ValueError:
            allowed = name == "localhost"
        if not allowed:
            raise socket.gaierror(socket.EAI_NONAME, f"tests reach 127.0.0.1 only, not {name}")
        return resolve(host, *args, **kwargs)

    socket.getaddrinfo = loopback_getaddrinfo
    yield
    socket.getaddrinfo = resolve


BASIC_USERS = {"alice": "correct horse battery staple"}


@pytest.fixture(scope="session")
def basic_registry(tmp_path_factory) -> Iterator[registry_server.RegistryServer]:
    """A registry behind htpasswd basic auth; BASIC_USERS may log in."""
    from tests.support.basic_auth import htpasswd_auth

    workdir = tmp_path_factory.mktemp("basic-registry")
    with registry_server.serving(workdir, auth=htpasswd_auth(workdir, BASIC_USERS)) as server:
        yield server


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory):
    """A registry trusting a test token service: ``writer`` may pull and push
    everywhere, ``reader`` may only pull; anonymous users may pull ``public/*``."""
    from tests.support.token_issuer import User, start_token_issuer

    workdir = tmp_path_factory.mktemp("token-registry")
    issuer = start_token_issuer(
        workdir,
        {
            "writer": User("writer-secret", {"*": {"pull", "push"}}),
            "reader": User("reader-secret", {"*": {"pull"}}),
        },
        anonymous={"public/*": {"pull"}},
    )
    with registry_server.serving(workdir, auth=issuer.auth_config()) as server:
        yield server, issuer
    issuer.stop()


@pytest.fixture
def fault_proxy(registry):
    """A fault-injecting proxy in front of the shared plain registry."""
    from tests.support.fault_proxy import start_fault_proxy

    proxy = start_fault_proxy(registry.host)
    yield proxy
    proxy.stop()


@pytest.fixture(scope="session")
def podman() -> str:
    """podman's path; a clear failure (not a skip) when it is missing."""
    path = shutil.which("podman")
    if path is None:
        pytest.fail("podman is not installed: run scripts/test.sh, which installs it")
    return path
