"""A refresh rebuilds on a new base and keeps the lock, even when the index has moved
on: the build inputs differ in the base alone."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from matrix.buildid import changed_inputs, recorded_inputs
from matrix.cli import main
from matrix.engines import BuildRequest
from matrix.engines.podman import PodmanEngine
from matrix.publish.annotations import PINS_ANNOTATION, RESOLVED_AS_OF
from matrix.publish.state import read_image
from matrix.reference import ImageReference
from tests.support.package_index import make_wheel, start_index

FIXTURE = Path(__file__).with_name("fixtures") / "locked"


def push_base(workdir: Path, repository: str, content: str) -> None:
    context = workdir / f"base-{uuid.uuid4().hex[:6]}"
    context.mkdir(parents=True)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY base.txt /base.txt\n")
    (context / "base.txt").write_text(content)
    engine = PodmanEngine(workdir / "bases", tls_verify=False)
    engine.prepare()
    request = BuildRequest(
        key="base",
        context=context,
        platforms=("linux/amd64",),
        tags=(f"{repository}:a",),
        repository=repository,
        push=True,
    )
    engine.build(request, lambda line: None)


def test_refresh_after_a_base_change_keeps_the_lock(
    make_client, tmp_path, registry, podman, capsys
):
    repository = f"locked-{uuid.uuid4().hex[:8]}/prefect"
    folder = tmp_path / "config"
    folder.mkdir()
    (folder / "dockerfiles").symlink_to(FIXTURE / "dockerfiles")
    config = folder / "versions.toml"
    text = (FIXTURE / "versions.toml").read_text()
    config.write_text(text.replace("{registry}", registry.host).replace("{repository}", repository))
    index = start_index()
    wheels = tmp_path / "wheels"
    index.add(make_wheel(wheels, "dep", "1.0"), datetime(2023, 1, 1, tzinfo=UTC))
    index.add(
        make_wheel(wheels, "prefect", "2.11.5", requires=("dep",)),
        datetime(2023, 8, 24, 20, 2, 8, tzinfo=UTC),
    )
    push_base(tmp_path, f"{registry.host}/{repository}-base", "first")
    publish = ["publish", "--version", "2.11.5", "--sha", "abcdef1234567", "--config", str(config)]
    publish += ["--registry", registry.host, "--engine", "podman", "--workdir", str(tmp_path / "w")]
    publish += ["--index-url", index.url, "--yes"]
    full = ImageReference(registry.host, repository, "2.11.5-python3.11")
    try:
        assert main(publish) == 0, capsys.readouterr().err
        client = make_client()
        first = read_image(client, full).annotations
        # The index moves on and the base gets a fix.
        a_minute_ago = datetime.now(UTC) - timedelta(minutes=1)
        index.add(make_wheel(tmp_path / "later", "dep", "2.0"), a_minute_ago)
        push_base(tmp_path, f"{registry.host}/{repository}-base", "patched")
        assert main([*publish, "--refresh"]) == 0, capsys.readouterr().err
        client = make_client()
        second = read_image(client, full).annotations
        capsys.readouterr()
        # Re-resolving on purpose: the dry run names the package that would change.
        assert main([*publish, "--refresh", "--re-resolve", "--dry-run"]) == 0
        shown = capsys.readouterr().err
        # The index now answers otherwise for the recorded date (a file uploaded late,
        # say): a rebuild would change a Python package, and is refused.
        index.add(make_wheel(tmp_path / "late", "dep", "1.5"), datetime(2023, 6, 1, tzinfo=UTC))
        assert main([*publish, "--refresh"]) == 2
        refused = capsys.readouterr().err.strip().splitlines()[-1]
        third = read_image(make_client(), full)
    finally:
        index.stop()
    assert first[RESOLVED_AS_OF] == second[RESOLVED_AS_OF] == "2023-08-24T20:02:09Z"
    before, after = recorded_inputs(first), recorded_inputs(second)
    assert before is not None and after is not None
    (change,) = changed_inputs(before, after)
    assert change.startswith(f"base {registry.host}/{repository}-base:a linux/amd64: ")
    assert before["context"] == after["context"]
    assert set(before["context"]) == {"install/requirements-amd64.lock"}
    assert "locked-python3.11 lock linux/amd64: dep 1.0 -> 2.0" in shown
    assert PINS_ANNOTATION in second
    assert refused.startswith("matrix: error: refusing to rebuild locked-python3.11:")
    assert "linux/amd64: dep 1.0 -> 1.5" in refused and "--re-resolve" in refused
    assert third.annotations == second  # nothing moved
