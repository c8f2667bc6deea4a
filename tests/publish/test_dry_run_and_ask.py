"""A dry run reads only the registries it reports on; a run at a terminal lists its tag
moves, then asks.

The dry runs go through `matrix.cli.main` in this process, so the suite's
loopback-only name resolution fails any contact with docker.io or PyPI at once. The
questions are asked of a real `python -m matrix` process on a pseudo-terminal.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from matrix.cli import main
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
