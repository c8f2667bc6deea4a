"""A registry that answers garbage, or nothing, ends every command in one error line.

Each case runs through the real command line against tests/support/bad_registry.py
and asserts exit 2, exactly one ``matrix: error:`` line, no traceback, and no write.
Retry notices are the other lines a command may print on stderr: each starts with
``matrix: `` (never ``matrix: error:``) and says ``retry N of M in S s``, so a
person sees why a command waits; the error line comes last.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from matrix.cli import main
from matrix.registry import RegistryClient, RegistryError, check_registry_host
from tests.support.bad_registry import HUGE, MODES, start_bad_registry
from tests.support.configs import release_config
from tests.support.registry_server import free_port

# What the error line says for each kind of bad answer, whichever request met it.
EXPECTED = {
    "html": "text/html",
    "web-404": "not a container registry: GET /v2/ answered HTTP 404 (text/html)",
    "invalid-json": "not valid JSON",
    "wrong-types": "input should be a valid array",
    "huge": "limit",
    "redirect-loop": "more than 10 redirects (a redirect loop)",
    "never": "no answer within 0.5 s (read timeout, MATRIX_REGISTRY_READ_TIMEOUT) (2 tries",
    "realm-down": "the token service http://127.0.0.1:",
    "token-garbage": "gave a bad answer: token: input should be a valid string",
}
NOTICE = re.compile(r"^matrix: (?!error:).*, retry \d+ of \d+ in [0-9.]+ s$")
COMMIT = "3333333cccc"


def bad_config(host: str) -> str:
    """The one-image release, on a base image in the bad registry."""
    return (
        release_config("bad/app")
        .replace(
            'template = "standard.Dockerfile.j2"',
            f'template = "app.Dockerfile.j2"\nbuild_args = {{ BASE_IMAGE = "{host}/bad/base:1" }}',
        )
        .replace('registry = "docker.io"', f'registry = "{host}"')
    )


TEMPLATE = """\
{% for name, value in build_args.items() %}
ARG {{ name }}={{ value | quoted }}
{% endfor %}
FROM ${BASE_IMAGE}
"""


@pytest.fixture(autouse=True)
def short_waits(tmp_path, monkeypatch):
    """No docker login, a read timeout short enough for a test to wait it out, and
    the work folder a dry run renders into kept in the test's own folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    for name in ("MATRIX_REGISTRY_USERNAME", "MATRIX_REGISTRY_PASSWORD", "DOCKER_AUTH_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MATRIX_REGISTRY_READ_TIMEOUT", "0.5")


# A token service that refuses connections is retried as long as a registry would:
# one test of its own (below) rather than a slow case of every command.
ANSWERING = tuple(mode for mode in MODES if mode != "realm-down")


@pytest.fixture(params=ANSWERING)
def bad(request):
    server = start_bad_registry(request.param)
    yield server
    server.stop()


def config_options(tmp_path: Path, host: str) -> list[str]:
    """A one-image release line whose base image is in the bad registry, and a
    releases file, with which commands go past the tag list to the manifests."""
    (tmp_path / "dockerfiles" / "context").mkdir(parents=True)
    (tmp_path / "dockerfiles" / "app.Dockerfile.j2").write_text(TEMPLATE)
    (tmp_path / "dockerfiles" / "context" / "README").write_text("build context\n")
    config = tmp_path / "versions.toml"
    config.write_text(bad_config(host))
    releases = tmp_path / "releases.txt"
    releases.write_text("2.11.5\n")
    return ["--config", str(config), "--registry", host]


def assert_one_error_line(err: str, expected: str) -> str:
    assert "Traceback" not in err
    lines = err.splitlines()
    errors = [line for line in lines if line.startswith("matrix: error: ")]
    assert len(errors) == 1, err
    assert lines[-1] == errors[0], err
    assert all(NOTICE.match(line) for line in lines[:-1]), err
    assert expected in errors[0], err
    return errors[0]


@pytest.mark.parametrize(
    "command", ["tags", "verify", "diff", "publish --dry-run", "refresh --dry-run"]
)
def test_a_bad_answer_is_one_line_and_exit_2(bad, command, tmp_path, capsys):
    """``tags`` and ``refresh`` meet the bad answer in the tag list; the others, given
    the releases file, in the manifests (the base image's, or the release's own)."""
    if command == "tags":
        argv = ["tags", f"{bad.host}/bad/app"]
    elif command == "refresh --dry-run":
        argv = ["refresh", "--dry-run", *config_options(tmp_path, bad.host)]
    else:
        argv = [*command.split(), *config_options(tmp_path, bad.host)]
        argv += ["--version", "2.11.5", "--sha", COMMIT]
        argv += ["--releases", str(tmp_path / "releases.txt")]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    line = assert_one_error_line(err, EXPECTED[bad.mode])
    assert f"matrix: error: {bad.host}/bad/" in line  # the registry and the repository
    assert {method for method, _ in bad.requests} <= {"GET", "HEAD"}  # nothing written


@pytest.mark.parametrize("mode", ANSWERING)
def test_the_installed_command_exits_2_with_one_line(mode, tmp_path):
    server = start_bad_registry(mode)
    try:
        env = {**os.environ, "MATRIX_REGISTRY_READ_TIMEOUT": "0.5", "DOCKER_CONFIG": str(tmp_path)}
        env.pop("MATRIX_REGISTRY_USERNAME", None)
        answer = subprocess.run(
            [sys.executable, "-m", "matrix", "tags", f"{server.host}/bad/app"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    finally:
        server.stop()
    assert answer.returncode == 2
    assert answer.stdout == ""
    assert_one_error_line(answer.stderr, EXPECTED[mode])


def test_a_huge_answer_is_not_read_whole(capsys):
    server = start_bad_registry("huge")
    try:
        tracemalloc.start()
        try:
            assert main(["tags", f"{server.host}/bad/app"]) == 2
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    finally:
        server.stop()
    assert "the answer is larger than the 16 MiB limit" in capsys.readouterr().err
    assert peak < 40 * 1024 * 1024  # the 16 MiB page, not the 200 MiB body
    assert server.sent < HUGE // 2  # reading stopped: the server could not send the rest


def test_a_registry_that_never_answers_ends_within_the_timeouts(capsys):
    server = start_bad_registry("never")
    try:
        started = time.monotonic()
        assert main(["tags", f"{server.host}/bad/app"]) == 2
        took = time.monotonic() - started
    finally:
        server.stop()
    err = capsys.readouterr().err
    notice, error = err.splitlines()
    assert notice.startswith(f"matrix: {server.host}/bad/app: list tags: no answer within 0.5 s")
    assert ", retry 1 of 1 in " in notice
    assert error.startswith(f"matrix: error: {server.host}/bad/app: list tags: no answer within")
    assert 1.0 <= took < 5.0  # two reads of 0.5 s and one short wait


def test_a_refused_port_says_each_retry_and_gives_up_in_seconds(capsys):
    host = f"127.0.0.1:{free_port()}"
    started = time.monotonic()
    assert main(["tags", f"{host}/x"]) == 2
    took = time.monotonic() - started
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(", retry ")[1].split(" in ")[0] for line in lines[:-1]] == [
        "1 of 4",
        "2 of 4",
        "3 of 4",
        "4 of 4",
    ]
    assert lines[0].startswith(f"matrix: {host}/x: list tags: connection refused, retry 1 of 4")
    assert lines[-1].startswith(f"matrix: error: {host}/x: list tags: connection refused (5 tries")
    assert took < 10


def test_a_token_service_that_refuses_connections_is_named(capsys):
    server = start_bad_registry("realm-down")
    try:
        assert main(["tags", f"{server.host}/bad/app"]) == 2
    finally:
        server.stop()
    line = assert_one_error_line(capsys.readouterr().err, "connection refused")
    assert f"list tags: the token service {server.realm}: connection refused (5 tries" in line


def test_timeouts_come_from_the_environment_and_are_checked(monkeypatch):
    monkeypatch.setenv("MATRIX_REGISTRY_CONNECT_TIMEOUT", "2.5")
    with RegistryClient() as client:
        assert client.hosts["ghcr.io"].timeouts.connect == 2.5
        assert client.hosts["ghcr.io"].timeouts.read == 0.5  # short_waits
    with RegistryClient(read_timeout=7) as client:
        assert client.hosts["ghcr.io"].timeouts.read == 7
    monkeypatch.setenv("MATRIX_REGISTRY_CONNECT_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="MATRIX_REGISTRY_CONNECT_TIMEOUT='soon': expected a"):
        RegistryClient()
    for value in ("0", "-1", "inf", "nan"):
        monkeypatch.setenv("MATRIX_REGISTRY_CONNECT_TIMEOUT", value)
        with pytest.raises(ValueError, match="greater than 0"):
            RegistryClient()
    monkeypatch.delenv("MATRIX_REGISTRY_CONNECT_TIMEOUT")
    with pytest.raises(ValueError, match="a timeout of 0: expected"):
        RegistryClient(read_timeout=0)


def test_a_bad_timeout_in_the_environment_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("MATRIX_REGISTRY_READ_TIMEOUT", "30s")
    assert main(["tags", "127.0.0.1:1/x"]) == 2
    assert capsys.readouterr().err == (
        "matrix: error: MATRIX_REGISTRY_READ_TIMEOUT='30s': "
        "expected a number of seconds, such as 10\n"
    )


def test_an_excluded_host_is_named_when_auth_fails(basic_registry, monkeypatch, capsys):
    monkeypatch.setenv("MATRIX_REGISTRY_USERNAME", "alice")
    monkeypatch.setenv("MATRIX_REGISTRY_PASSWORD", "correct horse battery staple")
    monkeypatch.setenv("MATRIX_REGISTRY_HOSTS", "ghcr.io, docker.io")
    assert main(["tags", f"{basic_registry.host}/test/x"]) == 2
    line = assert_one_error_line(capsys.readouterr().err, "authentication required")
    assert (
        f"MATRIX_REGISTRY_USERNAME is not used for {basic_registry.host}: "
        "MATRIX_REGISTRY_HOSTS names only docker.io, ghcr.io"
    ) in line
    assert "correct horse" not in line


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("x y", "a host is letters, digits, hyphens and dots"),
        ("http://registry.internal:5000", "without scheme or path"),
        ("registry.internal:99999", "the port '99999' is not a number from 1 to 65535"),
        ("registry.internal:", "the port '' is not"),
        ("[::1", "closing ]"),
        ("", "a host is"),
    ],
)
def test_a_bad_insecure_registry_is_one_line_and_exit_2(value, problem, capsys):
    with pytest.raises(SystemExit) as exited:
        main(["tags", "127.0.0.1:1/x", "--insecure-registry", value])
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert len(err.splitlines()) == 1
    assert "argument --insecure-registry: " in err and problem in err
    with pytest.raises(ValueError, match="is not a registry HOST"):
        RegistryClient(insecure_registries=[value])


@pytest.mark.parametrize(
    "value", ["localhost", "localhost:5000", "registry.internal", "10.1.2.3:443", "[::1]:5000"]
)
def test_insecure_registry_values_a_person_gives(value):
    assert check_registry_host(value) == value


def test_a_bad_answer_is_a_registry_error_for_library_callers():
    server = start_bad_registry("wrong-types")
    try:
        with (
            RegistryClient(credentials=lambda registry: None) as client,
            pytest.raises(RegistryError, match="tags: input should be a valid array"),
        ):
            client.list_tags(f"{server.host}/bad/app")
    finally:
        server.stop()
