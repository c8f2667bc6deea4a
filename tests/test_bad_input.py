"""Bad local input: one line on stderr, exit 2, no traceback, and nothing written.

Each case is what a user really types or has lying around: a huge version string, a
template with a syntax error, an output path that cannot be written, a reference
without a tag, a registry name with a space. None of them may reach a registry; the
ones about registries fail before any is contacted.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from matrix.cli import main
from tests.build.conftest import FAKE_DOCKER
from tests.support.package_index import make_wheel

REPOSITORY = Path(__file__).resolve().parent.parent
LONG = "1" * 10_000


@dataclass
class Case:
    argv: list[str]
    says: str  # a piece of the one line on stderr
    env: dict[str, str] = field(default_factory=dict)
    not_said: str = ""  # what the line must not name


def _broken_templates(tmp_path: Path) -> Path:
    """A copy of versions.toml and dockerfiles/ with a syntax error in one template."""
    shutil.copy(REPOSITORY / "versions.toml", tmp_path / "versions.toml")
    shutil.copytree(REPOSITORY / "dockerfiles", tmp_path / "dockerfiles")
    template = tmp_path / "dockerfiles" / "conda.Dockerfile.j2"
    lines = template.read_text().splitlines()
    template.write_text("\n".join([*lines[:2], "{% if %}", *lines[2:]]) + "\n")
    return tmp_path / "versions.toml"


def _no_buildx(tmp_path: Path) -> dict[str, str]:
    """`docker` on PATH is a docker CLI without the buildx plugin."""
    folder = tmp_path / "bin"
    folder.mkdir()
    (folder / "docker").symlink_to(FAKE_DOCKER)
    return {
        "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}",
        "FAKE_DOCKER_NO_BUILDX": "1",
        "FAKE_DOCKER_RECORD": str(tmp_path / "docker-calls"),
    }


def _not_utf8_template(tmp_path: Path) -> Path:
    """A copy of versions.toml and dockerfiles/ with one template saved as Latin-1."""
    shutil.copy(REPOSITORY / "versions.toml", tmp_path / "versions.toml")
    shutil.copytree(REPOSITORY / "dockerfiles", tmp_path / "dockerfiles")
    template = tmp_path / "dockerfiles" / "conda.Dockerfile.j2"
    template.write_bytes(b"# Caf\xe9 edition\n" + template.read_bytes())
    return tmp_path / "versions.toml"


def _prefect_dist_only(tmp_path: Path) -> str:
    """A dev build's dist folder without prefect-client's."""
    make_wheel(tmp_path / "dist", "prefect", "3.4.26+1.gabc1234")
    return str(tmp_path / "dist")


def _earlier_step(path: Path) -> str:
    """A GitHub file an earlier step of the job already wrote to."""
    path.write_text("earlier=1\n", encoding="utf-8")
    return str(path)


RELEASE = ["--version", "2.11.5", "--sha", "a597971"]


def _prepare(t: Path) -> None:
    (t / "a-file").write_text("keep me\n")
    (t / "long-releases.txt").write_text(f"2.11.4\n{LONG}\n")


# name -> the case, made in the test's own folder (``t``); ``t / "missing"`` never exists
CASES: dict[str, Callable[[Path], Case]] = {
    "long version": lambda t: Case(["plan", "--version", LONG], "10000 characters"),
    "long version in a releases file": lambda t: Case(
        ["plan", *RELEASE, "--releases", str(t / "long-releases.txt")],
        "long-releases.txt:2: invalid version",
    ),
    "unwritable GITHUB_OUTPUT": lambda t: Case(
        ["plan", *RELEASE, "--format", "github"],
        "$GITHUB_OUTPUT",
        env={"GITHUB_OUTPUT": str(t / "missing" / "out")},
    ),
    "unwritable GITHUB_STEP_SUMMARY leaves GITHUB_OUTPUT alone": lambda t: Case(
        ["plan", *RELEASE, "--format", "github"],
        "$GITHUB_STEP_SUMMARY",
        env={
            "GITHUB_OUTPUT": str(t / "github-output"),
            "GITHUB_STEP_SUMMARY": str(t / "missing" / "summary"),
        },
    ),
    "unwritable step summary before publish contacts anything": lambda t: Case(
        ["publish", *RELEASE, "--registry", "127.0.0.1:1", "--dry-run"],
        "$GITHUB_STEP_SUMMARY",
        env={"GITHUB_STEP_SUMMARY": str(t / "missing" / "summary")},
    ),
    "GITHUB_OUTPUT on a full disk": lambda t: Case(
        ["plan", *RELEASE, "--format", "github"],
        "$GITHUB_OUTPUT /dev/full: cannot write it: No space left on device",
        env={"GITHUB_OUTPUT": "/dev/full", "GITHUB_STEP_SUMMARY": _earlier_step(t / "summary")},
    ),
    "GITHUB_STEP_SUMMARY on a full disk leaves GITHUB_OUTPUT as it was": lambda t: Case(
        ["plan", *RELEASE, "--format", "github"],
        "$GITHUB_STEP_SUMMARY /dev/full: cannot write it: No space left on device",
        env={"GITHUB_OUTPUT": _earlier_step(t / "output"), "GITHUB_STEP_SUMMARY": "/dev/full"},
    ),
    "a template that is not UTF-8": lambda t: Case(
        ["render", "--version", "2.11.5", "--config", str(_not_utf8_template(t))],
        "conda.Dockerfile.j2: not UTF-8 text (invalid continuation byte at byte 5)",
    ),
    "a dev plan whose dists lack prefect-client's": lambda t: Case(
        ["plan", "--version", "3.4.26+1.gabc1234", "--dist", _prefect_dist_only(t)],
        "expected one wheel or sdist of prefect-client in the folder, found 0",
    ),
    "template syntax error": lambda t: Case(
        [
            "render",
            "--version",
            "2.11.5",
            "--config",
            str(_broken_templates(t)),
            "--out",
            str(t / "contexts"),
        ],
        "conda.Dockerfile.j2:3: template syntax error",
    ),
    "render --out naming a file": lambda t: Case(
        ["render", "--version", "2.11.5", "--out", str(t / "a-file")],
        "not a folder",
    ),
    "retag of a reference without tag or digest": lambda t: Case(
        ["retag", "--dry-run", "ubuntu", ":x"], "say which image"
    ),
    "retag onto a digest": lambda t: Case(
        ["retag", "127.0.0.1:1/a:1", f"127.0.0.1:1/b@sha256:{'0' * 64}"],
        "a target is a tag",
    ),
    "--registry with a scheme and a space": lambda t: Case(
        ["diff", *RELEASE, "--registry", "http://x y"], "--registry"
    ),
    "--registry of publish": lambda t: Case(
        ["publish", *RELEASE, "--registry", "http://x y", "--dry-run"], "--registry"
    ),
    "--registry of promote": lambda t: Case(
        ["promote", *RELEASE, "--registry", "http://x y", "--dry-run"], "--registry"
    ),
    "--registry of build": lambda t: Case(
        ["build", *RELEASE, "--registry", "http://x y", "--dry-run"], "--registry"
    ),
    "--mirror with a space": lambda t: Case(["verify", *RELEASE, "--mirror", "a b"], "--mirror"),
    "verify --compare with a release no line covers, before contacting a registry": lambda t: Case(
        ["verify", *RELEASE, "--registry", "127.0.0.1:1", "--compare", "9.0.0"],
        "--compare 9.0.0: no [[lines]] entry",
    ),
    "a Python the flavor lacks": lambda t: Case(
        ["plan", "--version", "2.11.5", "--python", "3.11", "--flavor", "conda"],
        "no conda image for Python 3.11 (conda: 3.8 3.9 3.10)",
    ),
    "a --branch with no tag characters": lambda t: Case(
        ["plan", "--version", "2.11.5+12.gabc1234", "--branch", "!!!"],
        "--branch '!!!'",
        not_said="-python",
    ),
    "a --branch too long for a tag": lambda t: Case(
        ["plan", "--version", "2.11.5+12.gabc1234", "--branch", "b" * 200],
        "200 characters",
        not_said="invalid tag",
    ),
    "a docker CLI without buildx": lambda t: Case(
        ["build", "--version", "2.11.5", "--python", "3.10", "--flavor", "standard"],
        "docker buildx is not installed",
        env=_no_buildx(t),
        not_said="--progress",
    ),
    "--report naming a folder": lambda t: Case(
        ["publish", *RELEASE, "--registry", "127.0.0.1:1", "--report", str(t)],
        "--report",
    ),
    "--digests that is not a folder": lambda t: Case(
        ["publish", *RELEASE, "--registry", "127.0.0.1:1", "--digests", str(t / "missing")],
        "--digests",
    ),
    "a --filter that is no regular expression": lambda t: Case(
        ["tags", "127.0.0.1:1/a", "--filter", "("], "--filter"
    ),
    "refresh of a line that is no line": lambda t: Case(["refresh", "--lines", "two"], "two"),
}


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_one_line_exit_2_and_writes_nothing(name, tmp_path, monkeypatch, capsys):
    _prepare(tmp_path)
    case = CASES[name](tmp_path)
    for variable in ("GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in case.env.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.chdir(tmp_path)  # anything written by mistake would land here
    before = _snapshot(tmp_path)

    try:
        code = main(case.argv)
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code

    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert "Traceback" not in err
    assert case.says in err, err
    if case.not_said:
        assert case.not_said not in err, err
    assert out == ""
    after = _snapshot(tmp_path)
    # Opening a GitHub file to append may create it empty; nothing is written into it.
    created = {path: content for path, content in after.items() if path not in before}
    assert all(content == b"" for content in created.values()), created
    assert {path: after[path] for path in before} == before
