"""`matrix publish` end to end with real parts: podman builds FROM scratch images for
linux/amd64 and linux/arm64 and pushes them to a real registry on 127.0.0.1."""

from __future__ import annotations

import json

import pytest

from matrix.cli import main
from tests.support.configs import scratch_release

COMMIT = "abcdef1234567"


@pytest.fixture
def fixture_config(tmp_path):
    return scratch_release(tmp_path / "config", "publish")[0]


def test_publish_with_podman_then_rerun_writes_nothing(
    fixture_config, registry, tmp_path, capsys, podman
):
    common = [
        "--version",
        "1.2.3",
        "--sha",
        COMMIT,
        "--config",
        str(fixture_config),
        "--registry",
        registry.host,
    ]
    report = tmp_path / "report.json"
    code = main(
        [
            "publish",
            *common,
            "--engine",
            "podman",
            "--yes",
            "--workdir",
            str(tmp_path / "work"),
            "--report",
            str(report),
        ]
    )
    assert code == 0, capsys.readouterr().err
    first = json.loads(report.read_text())
    written = {(c["repository"], c["tag"]) for c in first["changes"] if c["done"]}
    assert {tag for _, tag in written} == {
        "1.2.3-python3.12",
        "sha-abcdef1-python3.12",
        "1.2-python3.12",
        "1-python3.12",
        "1-latest",
        "1.2.3-python3.12-extra",
        "sha-abcdef1-python3.12-extra",
        "1.2-python3.12-extra",
        "1-python3.12-extra",
        "1-latest-extra",
    }
    assert main(["verify", *common]) == 0
    assert "2 images and 10 tags as planned" in capsys.readouterr().out
    # publish attached an SBOM and a provenance statement to every platform image
    assert main(["verify", *common, "--attestations"]) == 0, capsys.readouterr().out
    capsys.readouterr()

    code = main(
        [
            "publish",
            *common,
            "--engine",
            "podman",
            "--yes",
            "--workdir",
            str(tmp_path / "work"),
            "--report",
            str(report),
        ]
    )
    assert code == 0
    again = json.loads(report.read_text())
    assert again["writes"] == 0
    assert "PUT" not in again["requests"] and "POST" not in again["requests"]
    assert {c["action"] for c in again["changes"]} == {"keep"}
    # The repository's tag list, read once for the known releases and the rollback
    # holds, then each of the 2 images' index read once: the builder takes the lock
    # dates from the reading publish decides with.
    assert again["requests"]["GET"] == 1 + 2


def test_publish_without_yes_outside_a_terminal_changes_nothing(
    fixture_config, registry, capsys, tmp_path
):
    code = main(
        [
            "publish",
            "--version",
            "1.2.3",
            "--config",
            str(fixture_config),
            "--registry",
            registry.host,
            "--engine",
            "podman",
            "--workdir",
            str(tmp_path / "work"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    (error,) = [line for line in err.splitlines() if line.startswith("matrix: error")]
    assert "pass --yes to go ahead" in error and err.endswith(error + "\n")
    assert (
        main(
            [
                "diff",
                "--version",
                "1.2.3",
                "--config",
                str(fixture_config),
                "--registry",
                registry.host,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "0 keep" in out and "create" in out


def test_a_failed_build_ends_publish_with_exit_1_and_a_report(
    fixture_config, registry, tmp_path, capsys, podman
):
    template = fixture_config.parent / "dockerfiles" / "scratch.Dockerfile.j2"
    template.write_text(template.read_text().replace("hello.txt /", "no-such-file.txt /"))
    report = tmp_path / "report.json"
    argv = [
        *("publish", "--version", "1.2.3", "--sha", COMMIT, "--config", str(fixture_config)),
        *("--registry", registry.host, "--engine", "podman", "--yes"),
        *("--workdir", str(tmp_path / "work"), "--report", str(report)),
    ]

    assert main(argv) == 1  # an image failed to build: not bad input
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("matrix: error: build of ")
    failed = json.loads(report.read_text())
    assert failed["error"] in last and failed["writes"] == 0
