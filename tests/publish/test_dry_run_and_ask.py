"""A dry run reads only the registries it reports on; a run at a terminal lists its tag
moves, then asks.

The dry runs go through `matrix.cli.main` in this process, so the suite's
loopback-only name resolution fails any contact with docker.io or PyPI at once. The
questions are asked of a real `python -m matrix` process on a pseudo-terminal.
"""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from matrix.cli import main
from matrix.publish.state import reference
from matrix.registry import RegistryClient
from tests.support.images import push_index
from tests.support.publishing import COMMIT, VERSION, Release

pytestmark = pytest.mark.registry


ROOT = Path(__file__).resolve().parents[2]


def dry_run(release: Release, cwd: Path, monkeypatch) -> list[str]:
    """`matrix publish --dry-run` (building from the engine, not from digests) in ``cwd``
    with no docker or podman on PATH, and the real templates: a build of them would
    lock against PyPI and read python's images on docker.io."""
    templates = release.config.parent / "dockerfiles"
    if not templates.exists():
        templates.symlink_to(ROOT / "dockerfiles")
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("PATH", str(cwd / "no-engines"))
    return [
        "publish",
        *("--version", VERSION, "--sha", COMMIT, "--config", str(release.config)),
        *("--registry", release.host, "--dry-run"),
    ]


def test_a_dry_run_of_a_published_release_reads_the_registry_only(
    tmp_path, registry, monkeypatch, capsys
):
    release = Release(tmp_path, registry.host, "dry-whole")
    assert main(release.args(registry.host)) == 0, capsys.readouterr().err
    capsys.readouterr()
    before = release.tags()
    work = tmp_path / "work"
    work.mkdir()

    assert main(dry_run(release, work, monkeypatch)) == 0
    out, err = capsys.readouterr()
    assert out.count("keep     ") == len(release.plan.targets), out
    assert "docker" not in err and "pypi" not in err.lower(), err
    assert list(work.iterdir()) == []  # no .matrix, no rendered contexts
    assert "not known are whether the 4 images kept were built from today's inputs" in err
    assert release.tags() == before


def test_a_dry_run_of_a_missing_release_says_its_build_inputs_were_not_read(
    tmp_path, registry, monkeypatch, capsys
):
    release = Release(tmp_path, registry.host, "dry-missing")
    work = tmp_path / "work"
    work.mkdir()

    assert main(dry_run(release, work, monkeypatch)) == 0
    out, err = capsys.readouterr()
    full = [spec.full_target.tag for spec in release.plan.images]
    for tag in full:
        assert f"create   {registry.host}/{release.repository}:{tag} -> (to build)" in out
    assert "note: a dry run reads no build inputs" in err
    assert "not known are the build ids of the 4 images to build" in err
    assert list(work.iterdir()) == []
    assert not set(full) & set(release.tags())


def at_a_terminal(args: list[str], answer: str) -> tuple[int, list[str]]:
    """Run `matrix ARGS` on a pseudo-terminal (stdin, stdout and stderr), as a person
    at a terminal does, outside CI; type ``answer`` once it asks. Its exit code and the
    lines it showed, up to and including the question."""
    terminal, child = pty.openpty()
    env = {name: value for name, value in os.environ.items() if name != "CI"}
    process = subprocess.Popen(
        [sys.executable, "-m", "matrix", *args],
        stdin=child,
        stdout=child,
        stderr=child,
        env=env | {"TERM": "xterm", "COLUMNS": "250"},
    )
    os.close(child)
    shown, asked = b"", None
    deadline = time.monotonic() + 60  # a guard against a hang, not a measurement
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([terminal], [], [], 1)
            if not ready:
                continue
            try:
                chunk = os.read(terminal, 65536)
            except OSError:  # the process is gone and the terminal closed
                break
            if not chunk:
                break
            shown += chunk
            if asked is None and b"[y/N]" in shown:
                asked = len(shown)
                os.write(terminal, answer.encode() + b"\n")
        if asked is None:  # it never asked: it waits for an answer to no question
            process.kill()
        code = process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        os.close(terminal)
    assert asked is not None, shown.decode(errors="replace")
    # What the person read before answering, without the live view's cursor moves.
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown[:asked].decode(errors="replace"))
    return code, [line.strip() for line in re.split(r"[\r\n]+", text) if line.strip()]


def seed(release: Release, tag: str, salt: str) -> str:
    """Another image under ``tag`` of the release's repository: its digest."""
    with RegistryClient() as client:
        target = next(t for t in release.plan.targets if t.tag == tag)
        return push_index(client, reference(release.host, target), salt=salt).digest


def listed_moves(lines: list[str], release: Release) -> list[str]:
    prefix = f"{release.host}/{release.repository}:"
    return [
        line for line in lines if line.split(" ", 1)[0] in ("create", "move") and prefix in line
    ]


def test_publish_at_a_terminal_lists_its_tag_moves_then_asks(tmp_path, registry):
    release = Release(tmp_path, registry.host, "ask-publish")
    old = seed(release, "2-latest", "an older release")
    args = [a for a in release.args(registry.host) if a != "--yes"]

    code, lines = at_a_terminal(args, "n")
    assert code == 2
    moves = listed_moves(lines, release)
    assert len(moves) == len(release.plan.targets)
    name = f"{registry.host}/{release.repository}"
    assert f"create   {name}:2.11.4-python3.10 -> (to build): to build" in moves
    assert f"move     {name}:2-latest {old} -> (to build)" in moves
    question = f"publish {VERSION}: write {len(moves)} tags to {registry.host}? [y/N]"
    assert lines[-1] == question
    assert lines.index(moves[-1]) < len(lines) - 1  # the list comes before the question
    assert release.tags() == {"2-latest": old}

    code, lines = at_a_terminal(args, "y")
    assert code == 0, "\n".join(lines)
    tags = release.tags()
    assert set(tags) == {t.tag for t in release.plan.targets}
    assert tags["2-latest"] == tags["2.11.4-python3.10"] != old


def test_promote_at_a_terminal_lists_its_tag_moves_then_asks(tmp_path, registry, capsys):
    release = Release(tmp_path, registry.host, "ask-promote")
    assert main([*release.args(registry.host), "--no-latest"]) == 0, capsys.readouterr().err
    old = seed(release, "2-latest", "an older release")
    before = release.tags()
    new = before["2.11.4-python3.10"]
    args = ["promote", "--version", VERSION, "--sha", COMMIT, "--config", str(release.config)]
    args += ["--registry", registry.host]

    code, lines = at_a_terminal(args, "n")
    assert code == 2
    moves = listed_moves(lines, release)
    name = f"{registry.host}/{release.repository}"
    assert f"move     {name}:2-latest {old} -> {new}" in moves
    assert f"create   {name}:2-python3.10 -> {new}" in moves
    assert lines[-1] == f"promote {VERSION}: write {len(moves)} tags to {registry.host}? [y/N]"
    assert release.tags() == before

    code, lines = at_a_terminal(args, "y")
    assert code == 0, "\n".join(lines)
    after = release.tags()
    assert after["2-latest"] == after["2-python3.10"] == new
    assert len(set(after) - set(before)) == len(moves) - 1  # 2-latest moved, the rest created
