"""A wrong --registry is never an empty registry, and a hung one is waited for once.

An ordinary web server answers 404 to every path of the registry API; taken at its
word it would be a registry without repositories, every release missing from it and
every tag to be written. A registry that takes connections and never answers would
cost a read timeout per request. Both go through the real command line, against
tests/support/bad_registry.py, with the Debian registry as the real thing beside them.
"""

from __future__ import annotations

import re
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from matrix.cli import main
from matrix.reference import parse_reference
from matrix.registry import RegistryClient
from matrix.registry.transport import NotARegistry
from tests.conftest import FAST_RETRY
from tests.support.bad_registry import start_bad_registry
from tests.support.configs import release_config
from tests.support.package_index import make_wheel, start_index

NOT_A_REGISTRY = "not a container registry: GET /v2/ answered HTTP 404 (text/html)"


@pytest.fixture(autouse=True)
def no_credentials(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    for name in ("MATRIX_REGISTRY_USERNAME", "MATRIX_REGISTRY_PASSWORD", "DOCKER_AUTH_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def web_server():
    server = start_bad_registry("web-404")
    yield server
    server.stop()


@pytest.fixture
def index():
    """The package index, with a 3.x release uploaded an hour ago."""
    served = start_index()
    yield served
    served.stop()


def one_error_line(err: str) -> str:
    assert "Traceback" not in err
    (line,) = err.splitlines()
    assert line.startswith("matrix: error: "), err
    return line


@pytest.mark.parametrize("command", ["tags", "diff", "missing", "publish --dry-run"])
def test_a_web_server_given_as_registry_is_one_line_and_exit_2(
    command, web_server, index, tmp_path, capsys
):
    wheel = make_wheel(tmp_path / "wheels", "prefect", "3.4.25")
    index.add(wheel, datetime.now(UTC) - timedelta(hours=1))
    registry = ["--registry", web_server.host]
    argv = {
        "tags": ["tags", f"{web_server.host}/prefecthq/prefect"],
        "diff": ["diff", "--version", "3.4.25", *registry],
        "missing": ["missing", *registry, "--index-url", index.url],
        "publish --dry-run": ["publish", "--dry-run", "--version", "3.4.25", *registry],
    }[command]

    assert main(argv) == 2

    out, err = capsys.readouterr()
    assert out == ""
    line = one_error_line(err)
    assert f"matrix: error: {web_server.host}/prefecthq/" in line
    assert NOT_A_REGISTRY in line
    assert "without Docker-Distribution-API-Version" in line
    assert {method for method, _ in web_server.requests} == {"GET"}  # nothing written
    # It was asked once whether it is a registry, however many repositories followed.
    assert [path for _, path in web_server.requests].count("/v2/") == 1


@pytest.mark.registry
def test_a_registry_without_the_repositories_is_still_empty_not_wrong(registry, tmp_path, capsys):
    repository = f"empty-{uuid.uuid4().hex[:8]}/prefect"
    (tmp_path / "dockerfiles").mkdir()
    (tmp_path / "dockerfiles" / "standard.Dockerfile.j2").write_text("FROM scratch\n")
    config = tmp_path / "versions.toml"
    config.write_text(release_config(repository))
    argv = ["--version", "2.11.5", "--config", str(config), "--registry", registry.host]

    assert main(["diff", *argv]) == 0
    out, err = capsys.readouterr()
    assert f"create   {registry.host}/{repository}:2.11.5-python3.10" in out, out + err

    assert main(["tags", f"{registry.host}/{repository}"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.endswith("list tags: the registry has no such repository")

    # distribution names its API version on its 404s: no extra request to find out.
    with RegistryClient(retry=FAST_RETRY, credentials=lambda host: None) as client:
        assert client.list_tags(parse_reference(f"{registry.host}/{repository}")) == []
        assert client.requests.total == 1


def test_a_registry_that_leaves_out_the_header_is_asked_once_at_v2():
    """An OCI registry need not send Docker-Distribution-API-Version; its /v2/ says
    what it is, once, and its bare 404s then mean "not there"."""
    asked: list[str] = []

    def oci_registry(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        if request.url.path == "/v2/":
            return httpx.Response(200, json={})
        return httpx.Response(404)

    with RegistryClient(
        retry=FAST_RETRY,
        credentials=lambda host: None,
        transport=httpx.MockTransport(oci_registry),
    ) as client:
        for name in ("a", "b"):
            assert client.list_tags(parse_reference(f"oci.example/team/{name}")) == []
        assert client.head_manifest(parse_reference("oci.example/team/a:1")) is None
    assert asked == [
        "/v2/team/a/tags/list",
        "/v2/",
        "/v2/team/b/tags/list",
        "/v2/team/a/manifests/1",
    ]


def test_a_404_page_behind_a_registry_name_is_refused_in_the_library_too(web_server):
    with (
        RegistryClient(retry=FAST_RETRY, credentials=lambda host: None) as client,
        pytest.raises(NotARegistry, match=re.escape(NOT_A_REGISTRY)),
    ):
        client.head_manifest(parse_reference(f"{web_server.host}/team/app:1"))


def test_a_hung_registry_costs_one_read_timeout_and_a_short_retry(monkeypatch, capsys):
    """`verify` asks for the tag lists of two repositories at once, then for many
    manifests: against a registry that never answers, only the first two requests are
    sent (each tried twice), and the command ends after one read timeout plus a retry
    of at most 5 s, not after a read timeout per request."""
    read_timeout = 12.0
    monkeypatch.setenv("MATRIX_REGISTRY_READ_TIMEOUT", str(read_timeout))
    server = start_bad_registry("never")
    try:
        started = time.monotonic()
        assert main(["verify", "--version", "3.4.25", "--registry", server.host]) == 2
        spent = time.monotonic() - started
    finally:
        server.stop()
    err = capsys.readouterr().err
    line = err.splitlines()[-1]
    assert "no answer within 12 s (read timeout, MATRIX_REGISTRY_READ_TIMEOUT)" in line, err
    assert "Traceback" not in err
    tries = Counter(path for _, path in server.requests)
    assert tries == {
        "/v2/prefecthq/prefect/tags/list": 2,
        "/v2/prefecthq/prefect-client/tags/list": 2,
    }
    # Two full read timeouts would be 24 s; the margin is for a busy machine.
    assert spent < 2 * read_timeout
