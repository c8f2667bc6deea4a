"""`matrix build` from the command line: dry run, failures, --keep-going, podman for real."""

from __future__ import annotations

import json
import os

import pytest

from matrix.cli import main
from matrix.reference import parse_reference
from tests.build.conftest import FAKE_DOCKER, FIXTURES


@pytest.fixture
def fake_docker_on_path(tmp_path, monkeypatch, recorder):
    """`docker` on PATH is fixtures/fake_docker.py: python-on-whales finds it by name."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "docker").symlink_to(FAKE_DOCKER)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return recorder


def test_dry_run_prints_the_calls_and_runs_nothing(fake_docker_on_path, capsys):
    code = main(
        [
            "build",
            "--version",
            "2.11.5",
            "--python",
            "3.10",
            "--sha",
            "a597971f7156",
            "--push",
            "--dry-run",
            "--create-builder",
        ]
    )
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert fake_docker_on_path.calls() == []
    assert out[0].startswith("docker.buildx.create(name='matrix', driver='docker-container'")
    assert out[1::2] == [
        "# prefect-python3.10",
        "# prefect-python3.10-conda",
        "# prefect-python3.10-kubernetes",
    ]
    assert all(line.startswith("docker.buildx.build(") for line in out[2::2])
    assert "builder='matrix'" in out[2]
    assert "'docker.io/prefecthq/prefect:sha-a597971-python3.10-conda'" in out[4]


def test_a_failed_image_stops_the_build(fake_docker_on_path, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_DOCKER_FAIL", "prefect-python3.9")
    code = main(["build", "--version", "2.11.5", "--flavor", "standard", "--push"])
    err = capsys.readouterr().err
    assert code == 1
    built = [call[-1].rsplit("/", 1)[-1] for call in fake_docker_on_path.calls()]
    assert built == ["prefect-python3.8", "prefect-python3.9"]
    assert "matrix: error: prefect-python3.9: docker buildx build exited with 1" in err
    assert "ERROR: process did not complete successfully" in err  # the log tail


def test_keep_going_builds_the_others_and_reports_json(fake_docker_on_path, monkeypatch, capsys):
    monkeypatch.setenv("FAKE_DOCKER_FAIL", "prefect-python3.9")
    code = main(
        [
            "build",
            "--version",
            "2.11.5",
            "--flavor",
            "standard",
            "--push",
            "--keep-going",
            "--format",
            "json",
        ]
    )
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert code == 1
    assert [r["key"] for r in report["results"]] == [
        "prefect-python3.8",
        "prefect-python3.10",
        "prefect-python3.11",
    ]
    assert all(r["digest"].startswith("sha256:") for r in report["results"])
    assert [f["key"] for f in report["failed"]] == ["prefect-python3.9"]
    assert captured.err.count("matrix: error:") == 1


def test_builder_flags_are_for_buildx(capsys):
    code = main(["build", "--version", "2.11.5", "--engine", "podman", "--builder", "b"])
    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_podman_build_from_the_command_line(make_client, tmp_path, registry, podman, capsys):
    code = main(
        [
            "build",
            "--config",
            str(FIXTURES / "scratch" / "versions.toml"),
            "--version",
            "1.2.4",
            "--flavor",
            "standard",
            "--engine",
            "podman",
            "--registry",
            registry.host,
            "--push",
            "--format",
            "json",
        ]
    )
    (result,) = json.loads(capsys.readouterr().out)["results"]
    assert code == 0
    assert set(result["platform_digests"]) == {"linux/amd64", "linux/arm64"}
    client = make_client()
    for tag in result["tags"]:
        assert client.get_manifest(parse_reference(tag)).digest == result["digest"]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--digests-out", "digests"], "--digests-out records the digests of --push-by-digest"),
        (["--engine", "podman", "--builder", "b"], "--builder and --create-builder are for"),
        (["--platform", "linux/s390x"], "not linux/s390x"),
        (["--push-by-digest"], "--push-by-digest builds one platform at a time"),
        (["--label", "novalue"], "expected KEY=VALUE"),
    ],
)
def test_a_bad_flag_combination_is_refused_before_anything_is_rendered(
    fake_docker_on_path, tmp_path, capsys, flags, message
):
    out = tmp_path / "contexts"
    code = main(["build", "--version", "2.11.5", "--out", str(out), "--dry-run", *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not out.exists()
    assert fake_docker_on_path.calls() == []
