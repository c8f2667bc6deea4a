"""publish, promote and verify against a real registry.

Images are pushed by a stand-in builder that uploads small two-platform images
through the registry client, so these tests exercise the publisher's decisions
on real registry answers in seconds; tests/build covers the real engines.
"""

from __future__ import annotations

import itertools

import pytest

from matrix.config import load_config
from matrix.errors import UserError
from matrix.plan import TagKind, plan_release
from matrix.publish.annotations import annotations_for
from matrix.publish.reconcile import Action, reconcile
from matrix.publish.run import (
    PublishConflict,
    ReleaseIncomplete,
    promote,
    publish,
    verify_problems,
)
from matrix.publish.state import known_releases, read_state, reference
from matrix.reference import ImageReference
from tests.support.configs import release_config
from tests.support.images import push_index
from tests.support.publishing import RELEASE

COMMITS = {"2.10.9": "1111111aaaa", "2.11.4": "2222222bbbb", "2.11.5": "3333333cccc"}
_unique = itertools.count()


@pytest.fixture
def release(tmp_path, registry, make_client):
    """Publishes fixture releases (2 Pythons x 2 flavors x 2 platforms) to a fresh repository."""
    path = tmp_path / "versions.toml"
    path.write_text(release_config(f"test/publish{next(_unique)}", **RELEASE))
    loaded = load_config(path)
    client = make_client()
    built: list[str] = []

    class Release:
        host = registry.host

        def plan(self, version, **kwargs):
            repository = loaded.config.images["prefect"].repository
            tags = client.list_tags(ImageReference(self.host, repository))
            kwargs.setdefault("known", known_releases([tags]))
            return plan_release(loaded, version, commit=COMMITS[version], **kwargs)

        def builder(self, plan, fail_on=()):
            def build(spec, replacing=None):
                if spec.key in fail_on:
                    raise RuntimeError(f"build of {spec.key} failed")
                built.append(f"{plan.version}/{spec.key}")
                pushed = push_index(
                    client,
                    reference(self.host, spec.full_target),
                    spec.platforms,
                    salt=f"{plan.version} {spec.key}",
                    annotations=annotations_for(plan, spec),
                    untagged=replacing is not None,
                )
                return pushed.digest if replacing else None

            return build

        def publish(self, version, **kwargs):
            plan = self.plan(version)
            return publish(client, plan, self.host, self.builder(plan), **kwargs)

        def digest(self, tag: str) -> str | None:
            head = client.head_manifest(reference(self.host, self.target(tag)))
            return head.digest if head else None

        def target(self, tag):
            from matrix.plan import TagTarget

            return TagTarget(loaded.config.images["prefect"].repository, tag, TagKind.FULL)

    Release.client = client
    Release.built = built
    yield Release()
    client.close()


def test_first_publish_writes_every_tag_and_verifies(release):
    report = release.publish("2.11.4")
    plan = release.plan("2.11.4")
    assert len(plan.images) == 4
    assert report.writes == len(plan.targets)
    state = read_state(release.client, plan, release.host)
    assert verify_problems(plan, state) == []
    assert {c.action for c in reconcile(plan, state)} == {Action.KEEP}
    full = release.digest("2.11.4-python3.10")
    for tag in ("2.11-python3.10", "2-python3.10", "2-latest", "sha-2222222-python3.10"):
        assert release.digest(tag) == full
    assert release.digest("2-latest-conda") == release.digest("2.11.4-python3.10-conda")


def test_next_release_moves_floating_tags_and_a_rerun_writes_nothing(release):
    release.publish("2.11.4")
    old = release.digest("2-latest")
    release.publish("2.11.5")
    new = release.digest("2.11.5-python3.10")
    assert old != new
    for tag in ("2.11-python3.10", "2-python3.10", "2-latest"):
        assert release.digest(tag) == new
    assert release.digest("2.11.4-python3.10") == old  # released images never change

    release.client.requests.reset()
    again = release.publish("2.11.5")
    assert again.writes == 0
    assert release.client.requests.blob_reads == 0
    assert "PUT" not in release.client.requests.by_method
    assert "POST" not in release.client.requests.by_method
    assert {c.action for c in again.changes} == {Action.KEEP}


def test_backport_moves_only_its_minor_tags(release):
    release.publish("2.11.5")
    latest = release.digest("2-latest")
    report = release.publish("2.10.9")
    moved = {c.target.tag for c in report.changes if c.writes and c.target.kind.floating}
    assert moved == {
        "2.10-python3.10",
        "2.10-python3.11",
        "2.10-python3.10-conda",
        "2.10-python3.11-conda",
    }
    assert release.digest("2-latest") == latest


def test_promote_rolls_floating_tags_back_and_forward(release):
    release.publish("2.11.4")
    release.publish("2.11.5")
    rollback = promote(release.client, release.plan("2.11.4", latest=True), release.host)
    assert {c.target.tag for c in rollback.changes if c.writes} >= {
        "2-latest",
        "2-python3.10",
        "2.11-python3.10",
        "2.11-python3.11-conda",
    }
    assert release.digest("2-latest") == release.digest("2.11.4-python3.10")
    dry = promote(release.client, release.plan("2.11.5", latest=True), release.host, dry_run=True)
    assert dry.writes == 0 and release.digest("2-latest") == release.digest("2.11.4-python3.10")
    promote(release.client, release.plan("2.11.5", latest=True), release.host)
    assert release.digest("2-latest") == release.digest("2.11.5-python3.10")


def test_promote_refuses_an_incomplete_release(release):
    plan = release.plan("2.11.4")
    spec = plan.images[0]
    push_index(
        release.client,
        reference(release.host, spec.full_target),
        ["linux/arm64"],
        annotations=annotations_for(plan, spec),
    )
    release.client.requests.reset()
    with pytest.raises(ReleaseIncomplete, match="missing linux/amd64"):
        promote(release.client, release.plan("2.11.4", latest=True), release.host)
    assert "PUT" not in release.client.requests.by_method
    assert release.digest("2-latest") is None


def test_a_failed_build_moves_no_floating_tag_and_a_rerun_repairs(release):
    plan = release.plan("2.11.4")
    with pytest.raises(RuntimeError, match="failed"):
        publish(
            release.client,
            plan,
            release.host,
            release.builder(plan, fail_on={"prefect-python3.11-conda"}),
        )
    assert release.digest("2.11.4-python3.10") is not None
    for tag in ("2-latest", "2.11-python3.10", "sha-2222222-python3.10"):
        assert release.digest(tag) is None
    release.built.clear()
    report = release.publish("2.11.4")
    assert release.built == ["2.11.4/prefect-python3.11-conda"]  # only what was missing
    assert verify_problems(plan, read_state(release.client, plan, release.host)) == []
    assert report.writes == len(plan.targets) - 3  # the three full tags pushed before


def test_existing_sha_tag_with_other_content_stops_before_any_change(release):
    release.publish("2.10.9")
    plan = release.plan("2.11.4")
    sha = next(t for t in plan.images[0].targets if t.kind is TagKind.SHA)
    push_index(release.client, reference(release.host, sha), salt="someone else's")
    release.client.requests.reset()
    with pytest.raises(
        PublishConflict, match=r"sha-2222222-python3\.10 = sha256:.*--force-republish"
    ):
        release.publish("2.11.4")
    assert "PUT" not in release.client.requests.by_method
    assert release.built == ["2.10.9/" + s.key for s in release.plan("2.10.9").images]
    forced = release.publish("2.11.4", force=True)
    assert release.digest(sha.tag) == release.digest("2.11.4-python3.10")
    assert forced.writes == len(plan.targets)


def test_cli_diff_verify_and_promote(release, capsys, tmp_path):
    from matrix.cli import main

    release.publish("2.11.4")
    release.publish("2.11.5")
    config = next(tmp_path.glob("versions.toml"))
    common = ["--config", str(config), "--registry", release.host]

    assert main(["verify", "--version", "2.11.5", "--sha", COMMITS["2.11.5"], *common]) == 0
    out = capsys.readouterr().out
    # The tag list, one GET per image, a HEAD per platform image and per other tag,
    # and a HEAD for the holds record of a rollback.
    assert "4 images and 18 tags as planned (28 requests)" in out

    assert (
        main(["promote", "--version", "2.11.4", "--sha", COMMITS["2.11.4"], "--dry-run", *common])
        == 0
    )
    out = capsys.readouterr().out
    assert f"move     {release.host}/" in out and ":2-latest " in out
    assert release.digest("2-latest") == release.digest("2.11.5-python3.10")

    promote = ["promote", "--version", "2.11.4", "--sha", COMMITS["2.11.4"], "--yes"]
    assert main([*promote, *common]) == 0
    capsys.readouterr()
    assert (
        main(["diff", "--version", "2.11.5", "--sha", COMMITS["2.11.5"], "--latest", *common]) == 0
    )
    out = capsys.readouterr().out
    assert "(2.11.4) -> sha256:" in out  # which release a floating tag moves away from
    # 2.11.5 is no longer what 2-latest names, so it no longer verifies as newest
    assert (
        main(["verify", "--version", "2.11.5", "--sha", COMMITS["2.11.5"], "--latest", *common])
        == 1
    )
    assert "NOT as planned" in capsys.readouterr().out


def test_request_counter_tells_blob_reads_from_manifest_reads():
    import httpx

    from matrix.registry import RequestCounter

    counter = RequestCounter()
    for method, path in [
        ("GET", "/v2/a/b/manifests/1"),
        ("HEAD", "/v2/a/b/blobs/sha256:1"),
        ("GET", "/v2/a/b/blobs/sha256:1"),
        ("GET", "/v2/a/b/tags/list"),
    ]:
        counter.record(httpx.Request(method, f"http://127.0.0.1{path}"))
    assert counter.blob_reads == 1 and counter.total == 4


def test_the_question_before_writing_counts_what_the_run_then_writes(release):
    """One observation and one decision: the confirmation sees the very changes the
    run applies, and asking costs no request of its own."""
    seen = []

    def confirm(preview):
        seen.append((preview.pending, release.client.requests.total))

    release.client.requests.reset()
    report = release.publish("2.11.4", confirm=confirm)
    ((pending, sent_before_asking),) = seen
    targets = release.plan("2.11.4").targets
    assert pending == report.writes == len(targets)
    # The tag list that planned it, then one GET per image and one HEAD per other tag,
    # and the tag list that finds a rollback's holds record.
    assert sent_before_asking == 1 + len(targets) + 1


def test_a_refused_question_changes_nothing(release):
    def refuse(preview):
        raise UserError("publish cancelled, nothing was changed")

    with pytest.raises(UserError, match="cancelled"):
        release.publish("2.11.4", confirm=refuse)
    assert release.built == [] and release.digest("2.11.4-python3.10") is None
