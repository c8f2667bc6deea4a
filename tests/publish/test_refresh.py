"""Build ids and `matrix refresh` with real parts: podman builds two images on two
base images of a real registry; one base moves, and exactly the image built on it
is rebuilt, while the other keeps its digest."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from matrix.cli import main
from matrix.engines import BuildRequest
from matrix.engines.podman import PodmanEngine
from matrix.reference import ImageReference
from matrix.registry import RegistryClient

FIXTURE = Path(__file__).with_name("fixtures") / "based"
COMMIT = "abcdef1234567"
STANDARD, EXTRA = "1.2.3-python3.12", "1.2.3-python3.12-extra"
FLOATING = ("1.2-python3.12", "1-python3.12", "1-latest", "sha-abcdef1-python3.12")

pytestmark = [pytest.mark.podman, pytest.mark.registry]


class Based:
    """The fixture release, its two base images, and the commands' common options."""

    def __init__(self, tmp_path: Path, host: str) -> None:
        self.host = host
        self.repository = f"refresh-{uuid.uuid4().hex[:8]}/based"
        self.workdir = tmp_path / "work"
        folder = tmp_path / "config"
        folder.mkdir()
        (folder / "dockerfiles").symlink_to(FIXTURE / "dockerfiles")
        self.config = folder / "versions.toml"
        text = (FIXTURE / "versions.toml").read_text()
        self.config.write_text(
            text.replace("{registry}", host).replace("{repository}", self.repository)
        )
        self.common = ["--config", str(self.config), "--registry", host]
        self.engine = ["--engine", "podman", "--workdir", str(self.workdir)]

    def push_base(self, name: str, content: str, tmp_path: Path) -> str:
        """Build a two-platform FROM scratch base with podman and push it as :name."""
        context = tmp_path / f"base-{name}-{uuid.uuid4().hex[:6]}"
        context.mkdir()
        (context / "Dockerfile").write_text("FROM scratch\nCOPY base.txt /base.txt\n")
        (context / "base.txt").write_text(content)
        repository = f"{self.host}/{self.repository}-base"
        request = BuildRequest(
            key=f"base-{name}",
            context=context,
            platforms=("linux/amd64", "linux/arm64"),
            tags=(f"{repository}:{name}",),
            repository=repository,
            push=True,
        )
        engine = PodmanEngine(self.workdir / "bases", tls_verify=False)
        engine.prepare()
        return engine.build(request, lambda line: None).digest

    def publish(self, *extra: str) -> int:
        return main(
            ["publish", "--version", "1.2.3", "--sha", COMMIT, *self.common, *self.engine, *extra]
        )

    def tags(self) -> dict[str, str]:
        with RegistryClient() as client:
            repository = ImageReference(self.host, self.repository)
            return {
                tag: client.head_manifest(repository.with_tag(tag)).digest
                for tag in client.list_tags(repository)
            }


def test_refresh_rebuilds_exactly_the_images_on_a_moved_base(tmp_path, registry, podman, capsys):
    based = Based(tmp_path, registry.host)
    based.push_base("a", "base a, first", tmp_path)
    based.push_base("b", "base b, first", tmp_path)
    assert based.publish("--yes") == 0, capsys.readouterr().err
    before = based.tags()
    assert {before[tag] for tag in FLOATING} == {before[STANDARD]}

    # Nothing changed: publish builds nothing again.
    capsys.readouterr()
    assert based.publish("--yes") == 0
    assert "wrote 0 tags" in capsys.readouterr().err

    based.push_base("a", "base a, with security fixes", tmp_path)

    # Without --refresh the changed image is a conflict naming the input that changed.
    assert based.publish("--yes") == 2
    (error,) = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert f"{based.repository}-base:a linux/amd64: sha256:" in error
    assert "--refresh" in error
    assert based.tags() == before

    # The dry run lists exactly the image built on the moved base, and changes nothing.
    assert main(["refresh", "--dry-run", *based.common, *based.engine]) == 0
    out = capsys.readouterr().out
    assert f"{based.repository}:{STANDARD} " in out
    assert f"{based.repository}:{EXTRA} " not in out
    assert "-extra" not in out  # no tag of the other image would move
    assert based.tags() == before

    report = tmp_path / "refresh.json"
    assert main(["refresh", "--yes", *based.common, *based.engine, "--report", str(report)]) == 0
    log = capsys.readouterr().err.splitlines()
    after = based.tags()
    assert after[STANDARD] != before[STANDARD]
    assert after[EXTRA] == before[EXTRA]  # untouched: same digest
    assert {after[tag] for tag in FLOATING} == {after[STANDARD]}
    for tag in before:
        if tag.endswith("-extra"):
            assert after[tag] == before[tag]
    # Floating tags moved only once every image was rebuilt and verified.
    phases = [line.split("]", 1)[1].split()[0] for line in log if line.startswith("[")]
    assert phases.index("promote") > max(i for i, p in enumerate(phases) if p == "build")
    (done,) = json.loads(report.read_text())
    rebuilt = [c for c in done["changes"] if c["tag"] == STANDARD]
    assert rebuilt[0]["action"] == "move" and "base:a linux/arm64" in rebuilt[0]["reason"]

    verify = ["verify", "--version", "1.2.3", "--sha", COMMIT, *based.common]
    assert main(verify) == 0
    capsys.readouterr()
    assert main(["refresh", "--yes", *based.common, *based.engine]) == 0
    assert "wrote 0 tags" in capsys.readouterr().err
    assert based.tags() == after
