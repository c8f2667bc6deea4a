"""Build ids and `matrix refresh` with real parts: podman builds two images on two
base images of a real registry; one base moves, and exactly the image built on it
is rebuilt, while the other keeps its digest."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from matrix.cli import main
from matrix.engines import BuildRequest
from matrix.engines.podman import PodmanEngine
from matrix.publish.annotations import REPLACES_ANNOTATION
from matrix.publish.state import read_image
from matrix.reference import ImageReference
from matrix.registry import retag
from tests.conftest import BASIC_USERS
from tests.support.publishing import count_lines, kill_when, tags_of

FIXTURE = Path(__file__).with_name("fixtures") / "based"
COMMIT = "abcdef1234567"
STANDARD, EXTRA = "1.2.3-python3.12", "1.2.3-python3.12-extra"
FLOATING = ("1.2-python3.12", "1-python3.12", "1-latest", "sha-abcdef1-python3.12")


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

    def tags(self, host: str | None = None) -> dict[str, str]:
        return tags_of(ImageReference(host or self.host, self.repository))


def test_refresh_rebuilds_exactly_the_images_on_a_moved_base(
    make_client, tmp_path, registry, podman, capsys
):
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
    # The rebuilt image was pushed by digest; its full tag moved to it once verified,
    # before any tag that follows it. The image it replaced stays pullable by digest,
    # and the new one names it.
    promoted = [line for line in log if "] promote " in line]
    assert f":{STANDARD} -> {after[STANDARD]}" in promoted[0]
    assert phases.index("verify") < phases.index("promote")
    client = make_client()
    old = ImageReference(registry.host, based.repository, None, before[STANDARD])
    assert client.get_manifest(old).digest == before[STANDARD]
    new = read_image(client, ImageReference(registry.host, based.repository, STANDARD))
    assert new.annotations[REPLACES_ANNOTATION] == before[STANDARD]
    (done,) = json.loads(report.read_text())
    rebuilt = [c for c in done["changes"] if c["tag"] == STANDARD]
    assert rebuilt[0]["action"] == "move" and "base:a linux/arm64" in rebuilt[0]["reason"]

    verify = ["verify", "--version", "1.2.3", "--sha", COMMIT, *based.common]
    assert main(verify) == 0
    capsys.readouterr()
    assert main(["refresh", "--yes", "--format", "json", *based.common, *based.engine]) == 0
    captured = capsys.readouterr()
    assert "wrote 0 tags" in captured.err
    assert [(r["version"], r["writes"]) for r in json.loads(captured.out)] == [("1.2.3", 0)]
    assert based.tags() == after


def test_refresh_leaves_a_rollback_alone_and_only_its_rebuilt_images_tags_follow(
    tmp_path, registry, podman, capsys
):
    based = Based(tmp_path, registry.host)
    based.push_base("a", "base a, first", tmp_path)
    based.push_base("b", "base b, first", tmp_path)
    for version, commit in (("1.2.3", COMMIT), ("1.2.4", "1234567abcdef")):
        command = ["publish", "--version", version, "--sha", commit, *based.common]
        assert main([*command, *based.engine, "--yes"]) == 0, capsys.readouterr().err
    # 1.2.4 is bad: its floating tags go back to 1.2.3.
    rollback = ["promote", "--version", "1.2.3", "--sha", COMMIT, *based.common, "--yes"]
    assert main(rollback) == 0
    rolled_back = based.tags()
    assert rolled_back["1-latest"] == rolled_back[STANDARD]

    based.push_base("a", "base a, with security fixes", tmp_path)
    report = tmp_path / "refresh.json"
    refresh = ["refresh", "--yes", *based.common, *based.engine, "--report", str(report)]
    assert main(refresh) == 0, capsys.readouterr().err

    (done,) = json.loads(report.read_text())
    held = {c["tag"] for c in done["changes"] if c["action"] == "held"}
    rolled = ("1.2-python3.12", "1-python3.12", "1-latest")
    assert held == {*rolled, *(f"{tag}-extra" for tag in rolled)}  # the rollback's record
    after = based.tags()
    assert after["1.2.4-python3.12"] != rolled_back["1.2.4-python3.12"]  # rebuilt
    assert after["sha-1234567-python3.12"] == after["1.2.4-python3.12"]  # its sha tag follows
    for tag in ("1.2-python3.12", "1-python3.12", "1-latest", STANDARD):
        assert after[tag] == rolled_back[tag], tag  # the rollback stands
    assert after["1.2.4-python3.12-extra"] == rolled_back["1.2.4-python3.12-extra"]


def test_a_refresh_killed_before_promote_is_finished_by_the_next(
    tmp_path, registry, podman, fault_proxy, capsys
):
    based = Based(tmp_path, registry.host)
    based.push_base("a", "base a, first", tmp_path)
    based.push_base("b", "base b, first", tmp_path)
    assert based.publish("--yes") == 0, capsys.readouterr().err
    before = based.tags()
    based.push_base("a", "base a, with security fixes", tmp_path)

    # Through the proxy, sha and floating tags are held back; kill once the verified
    # image's full tag has moved to it.
    through_proxy = ["--config", str(based.config), "--registry", fault_proxy.host]
    fault_proxy.fail(503, method="PUT", path=r"/manifests/(sha-|1\.2-|1-)", times=10_000)
    kill_when(
        ["refresh", "--yes", *through_proxy, *based.engine],
        lambda lines: count_lines("promote", lines, f":{STANDARD} -> sha256:") >= 1,
    )
    killed = based.tags()
    assert killed[STANDARD] != before[STANDARD]  # rebuilt, but nothing follows it yet
    assert {killed[tag] for tag in FLOATING} == {before[STANDARD]}

    fault_proxy.clear()
    assert main(["refresh", "--yes", *based.common, *based.engine]) == 0, capsys.readouterr().err
    after = based.tags()
    assert after[STANDARD] == killed[STANDARD]  # not rebuilt again
    assert {after[tag] for tag in FLOATING} == {after[STANDARD]}
    assert after[EXTRA] == before[EXTRA]


def test_refresh_rebuilds_only_what_was_published(make_client, tmp_path, registry, podman, capsys):
    based = Based(tmp_path, registry.host)
    based.push_base("a", "base a, first", tmp_path)
    based.push_base("b", "base b, first", tmp_path)
    assert based.publish("--yes") == 0, capsys.readouterr().err
    # A tag of a release no [[lines]] entry covers (Prefect 1.x, say) is passed over.
    client = make_client()
    retag(
        client,
        ImageReference(registry.host, based.repository, STANDARD),
        [ImageReference(registry.host, based.repository, "0.9.0-python3.8")],
    )
    before = based.tags()
    # A Python added to the line after the release: refresh does not create its image,
    # and the images that exist keep their commit, so nothing is rebuilt.
    text = based.config.read_text().replace(
        'python.standard = ["3.12"]', 'python.standard = ["3.11", "3.12"]'
    )
    based.config.write_text(text)
    capsys.readouterr()

    assert main(["refresh", "--yes", *based.common, *based.engine]) == 0
    assert "wrote 0 tags" in capsys.readouterr().err
    assert based.tags() == before


def test_a_refresh_that_reached_only_the_primary_is_finished_on_the_mirror(
    tmp_path, registry, basic_registry, podman, monkeypatch, capsys
):
    ((user, password),) = BASIC_USERS.items()
    monkeypatch.setenv("MATRIX_REGISTRY_USERNAME", user)
    monkeypatch.setenv("MATRIX_REGISTRY_PASSWORD", password)
    monkeypatch.setenv("MATRIX_REGISTRY_HOSTS", basic_registry.host)
    based = Based(tmp_path, registry.host)
    based.push_base("a", "base a, first", tmp_path)
    based.push_base("b", "base b, first", tmp_path)
    mirror = ["--mirror", basic_registry.host]
    assert based.publish("--yes", *mirror) == 0, capsys.readouterr().err
    based.push_base("a", "base a, with security fixes", tmp_path)
    # As a refresh killed between the registries leaves it: the primary is rebuilt.
    assert main(["refresh", "--yes", *based.common, *based.engine]) == 0
    assert based.tags() != based.tags(basic_registry.host)
    capsys.readouterr()

    assert main(["refresh", "--yes", *based.common, *based.engine, *mirror]) == 0, (
        capsys.readouterr().err
    )
    assert based.tags() == based.tags(basic_registry.host)
    verify = ["verify", "--version", "1.2.3", "--sha", COMMIT, *based.common, *mirror]
    assert main(verify) == 0


def test_refresh_with_no_release_in_the_registry_says_so(tmp_path, registry, capsys):
    based = Based(tmp_path, registry.host)
    assert main(["refresh", "--dry-run", *based.common, *based.engine]) == 2
    (error,) = capsys.readouterr().err.splitlines()
    assert error.startswith("matrix: error: no release of") and "to refresh" in error


def test_refresh_takes_the_supported_lines_of_versions_toml(tmp_path, registry, podman, capsys):
    based = Based(tmp_path, registry.host)
    based.push_base("a", "base a, first", tmp_path)
    based.push_base("b", "base b, first", tmp_path)
    assert based.publish("--yes") == 0, capsys.readouterr().err
    text = based.config.read_text()
    # 1.2 is in this registry; 7.x is not (yet): it is passed over.
    based.config.write_text(f'supported = ["1.2", "7.x"]\n{text}')
    capsys.readouterr()
    assert main(["refresh", "--dry-run", "--format", "json", *based.common, *based.engine]) == 0
    assert [r["version"] for r in json.loads(capsys.readouterr().out)] == ["1.2.3"]
    # A line named on the command line must have a release.
    lines = ["--lines", "7.x"]
    assert main(["refresh", "--dry-run", *lines, *based.common, *based.engine]) == 2
    assert "no final release of line 7.x" in capsys.readouterr().err
    based.config.write_text(f'supported = ["7.x"]\n{text}')
    assert main(["refresh", "--dry-run", *based.common, *based.engine]) == 2
    (error,) = capsys.readouterr().err.splitlines()
    assert error.startswith("matrix: error: no release of") and "to refresh" in error
