"""A rollback holds: the catch-up, a republish, refresh's rules and verify leave it.

Releases 2.11.4, 2.11.5 (and 2.11.6) of the fixture config are published by digest
merge into the session's registry, then rolled back with `matrix promote`; `matrix
missing` reads a real package index that has them.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from matrix.cli import main
from matrix.config import load_config
from matrix.plan import plan_release
from matrix.publish.digests import write_digest
from matrix.publish.holds import HOLDS_TAG, read_holds
from matrix.publish.state import known_releases
from matrix.reference import ImageReference
from matrix.registry import RegistryClient
from tests.support.configs import release_config
from tests.support.images import push_platform_images
from tests.support.package_index import make_wheel, start_index
from tests.support.publishing import RELEASE, tags_of

COMMITS = {"2.11.4": "2222222bbbb", "2.11.5": "5555555eeee", "2.11.6": "6666666ffff"}


class Releases:
    """One repository of the fixture config; each release's platform images pushed by
    digest and its digest files written, as the build jobs leave them."""

    def __init__(self, tmp_path: Path, host: str) -> None:
        self.tmp_path = tmp_path
        self.host = host
        self.repository = f"test/hold-{uuid.uuid4().hex[:8]}"
        self.config = tmp_path / "versions.toml"
        self.config.write_text(release_config(self.repository, **RELEASE))
        self.loaded = load_config(self.config)

    def digests(self, version: str) -> Path:
        folder = self.tmp_path / f"digests-{version}"
        if folder.exists():
            return folder
        plan = plan_release(self.loaded, version, commit=COMMITS[version], known=[])
        with RegistryClient() as client:
            for spec in plan.images:
                children, _ = push_platform_images(
                    client,
                    ImageReference(self.host, self.repository),
                    spec.platforms,
                    salt=f"{spec.key} {version}",
                )
                for platform, digest in children.items():
                    write_digest(folder, spec.key, platform, digest)
        return folder

    def common(self, version: str) -> list[str]:
        return ["--version", version, "--config", str(self.config), "--registry", self.host]

    def publish(self, version: str, *more: str) -> list[str]:
        return [
            "publish",
            *self.common(version),
            *("--sha", COMMITS[version], "--digests", str(self.digests(version)), "--yes"),
            *more,
        ]

    def tags(self) -> dict[str, str]:
        return tags_of(ImageReference(self.host, self.repository))

    def floating(self) -> dict[str, str]:
        """Each floating tag of 2.11 -> the release whose full tag names the same image."""
        tags = self.tags()
        by_digest = {d: t.partition("-")[0] for t, d in tags.items() if t.startswith("2.11.")}
        return {
            tag: by_digest[digest]
            for tag, digest in tags.items()
            if tag.startswith(("2.11-", "2-"))
        }

    def holds(self) -> dict:
        with RegistryClient() as client:
            return read_holds(client, self.host, self.repository)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_rollback_holds_through_the_catch_up_until_a_newer_release(
    tmp_path, registry, capsys, monkeypatch
):
    monkeypatch.delenv("GITHUB_ACTOR", raising=False)
    monkeypatch.setenv("USER", "release-manager")
    releases = Releases(tmp_path, registry.host)
    for version in ("2.11.4", "2.11.5"):
        assert run(capsys, *releases.publish(version))[0] == 0
    assert set(releases.floating().values()) == {"2.11.5"}

    code, _, err = run(capsys, "promote", *releases.common("2.11.4"), "--yes")
    assert code == 0, err
    rolled_back = releases.floating()
    assert len(rolled_back) == 10 and set(rolled_back.values()) == {"2.11.4"}
    holds = releases.holds()
    assert set(holds) == set(rolled_back)
    assert {(h.version, h.newest, h.by) for h in holds.values()} == {
        ("2.11.4", "2.11.5", "release-manager")
    }

    # The schedule: missing lists nothing, and a republish of 2.11.5 moves nothing.
    wheels, now = tmp_path / "wheels", datetime.now(UTC)
    index = start_index()
    try:
        for version in ("2.11.4", "2.11.5"):
            index.add(make_wheel(wheels, "prefect", version), now - timedelta(hours=1))
        missing = ["missing", "--config", str(releases.config), "--registry", registry.host]
        missing += ["--index-url", index.url, "--format", "json"]
        code, out, err = run(capsys, *missing)
        assert code == 0, err
        assert json.loads(out)["releases"] == []

        report = tmp_path / "republish.json"
        code, out, err = run(capsys, *releases.publish("2.11.5", "--report", str(report)))
        assert code == 0, err
        document = json.loads(report.read_text())
        assert document["writes"] == 0
        held = [c for c in document["changes"] if c["action"] == "held"]
        assert {c["tag"] for c in held} == set(rolled_back)
        assert all("held at 2.11.4 by release-manager" in c["reason"] for c in held)
        assert releases.floating() == rolled_back

        # verify: as planned, the held tags listed as expected.
        code, out, err = run(capsys, "verify", *releases.common("2.11.5"), "--sha", "5555555eeee")
        assert code == 0, out + err
        assert out.count("held     ") == 10 and "10 floating tags held by a rollback" in out

        # A newer release takes the tags over and clears the holds; nothing is missing.
        index.add(make_wheel(wheels, "prefect", "2.11.6"), now)
        assert run(capsys, *releases.publish("2.11.6"))[0] == 0
        assert set(releases.floating().values()) == {"2.11.6"}
        assert releases.holds() == {}
        code, out, err = run(capsys, *missing)
        assert json.loads(out)["releases"] == []
        assert run(capsys, "verify", *releases.common("2.11.6"), "--sha", "6666666ffff")[0] == 0
    finally:
        index.stop()


def test_a_promote_forward_clears_the_hold(tmp_path, registry, capsys):
    releases = Releases(tmp_path, registry.host)
    for version in ("2.11.4", "2.11.5"):
        assert run(capsys, *releases.publish(version))[0] == 0
    assert run(capsys, "promote", *releases.common("2.11.4"), "--yes")[0] == 0
    assert releases.holds()

    code, _, err = run(capsys, "promote", *releases.common("2.11.5"), "--yes")
    assert code == 0, err
    assert set(releases.floating().values()) == {"2.11.5"}
    assert releases.holds() == {}
    code, out, _ = run(capsys, "verify", *releases.common("2.11.5"), "--sha", "5555555eeee")
    assert code == 0 and "held" not in out


def test_a_publish_with_latest_is_a_rollback_too(tmp_path, registry, capsys):
    """The release workflow's dispatch with latest: latest runs publish --latest."""
    releases = Releases(tmp_path, registry.host)
    for version in ("2.11.4", "2.11.5"):
        assert run(capsys, *releases.publish(version))[0] == 0

    assert run(capsys, *releases.publish("2.11.4", "--latest"))[0] == 0
    assert set(releases.floating().values()) == {"2.11.4"}
    assert {h.version for h in releases.holds().values()} == {"2.11.4"}
    code, out, _ = run(capsys, *releases.publish("2.11.5", "--format", "json"))
    assert code == 0 and json.loads(out)["writes"] == 0
    assert set(releases.floating().values()) == {"2.11.4"}


def test_the_holds_tag_is_never_taken_for_a_release(tmp_path, registry, capsys):
    releases = Releases(tmp_path, registry.host)
    for version in ("2.11.4", "2.11.5"):
        assert run(capsys, *releases.publish(version))[0] == 0
    assert run(capsys, "promote", *releases.common("2.11.4"), "--yes")[0] == 0
    tags = list(releases.tags())
    assert HOLDS_TAG in tags
    assert [str(v) for v in known_releases([tags])] == ["2.11.4", "2.11.5"]
    code, out, err = run(capsys, "tags", f"{registry.host}/{releases.repository}")
    assert code == 0, err
    listed = out.split()
    assert HOLDS_TAG in listed and len(listed) == len(tags)
    # The next release is planned as the newest, and takes the held tags over.
    code, out, _ = run(capsys, "diff", *releases.common("2.11.6"), "--sha", "6666666ffff")
    assert code == 0
    moves = [line for line in out.splitlines() if line.startswith("move ")]
    assert len(moves) == 10 and all("(2.11.4)" in line for line in moves)


def test_a_foreign_image_under_the_reserved_tag_is_one_error_line(tmp_path, registry, capsys):
    from tests.support.images import push_index

    releases = Releases(tmp_path, registry.host)
    assert run(capsys, *releases.publish("2.11.4"))[0] == 0
    with RegistryClient() as client:
        push_index(client, ImageReference(registry.host, releases.repository, HOLDS_TAG))
    before = releases.tags()

    code, _, err = run(capsys, "promote", *releases.common("2.11.4"), "--yes")

    assert code == 2
    (line,) = err.strip().splitlines()[-1:]
    assert line.startswith("matrix: error:") and f":{HOLDS_TAG} is not a holds record" in line
    assert "Traceback" not in err and releases.tags() == before
