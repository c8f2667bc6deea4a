"""Reconcile: the decisions publish, diff and promote make for every tag."""

from __future__ import annotations

import pytest

from matrix.plan import TagKind
from matrix.publish.annotations import REVISION_ANNOTATION, VERSION_ANNOTATION
from matrix.publish.reconcile import Action, conflicts, describe, reconcile
from matrix.publish.state import ReleaseState, RemoteImage, known_releases
from tests.publish.conftest import COMMIT

BOTH = frozenset({"linux/amd64", "linux/arm64"})


def image(digest: str, platforms=BOTH, version="2.11.5", revision=COMMIT) -> RemoteImage:
    return RemoteImage(
        digest, frozenset(platforms), {VERSION_ANNOTATION: version, REVISION_ANNOTATION: revision}
    )


def by_kind(changes):
    return {change.target.kind: change for change in changes}


def test_nothing_published_creates_everything_after_the_build(plan):
    changes = reconcile(plan, ReleaseState({}, {}))
    assert {c.action for c in changes} == {Action.CREATE}
    assert all(c.desired is None for c in changes)


def test_complete_release_is_kept_and_floating_tags_move_from_the_old_release(plan):
    spec = plan.images[0]
    tags = {t: "sha256:old" for t in spec.targets if t.kind.floating}
    tags |= {t: "sha256:new" for t in spec.targets if t.kind is TagKind.SHA}
    changes = by_kind(reconcile(plan, ReleaseState({spec.key: image("sha256:new")}, tags)))
    assert changes[TagKind.FULL].action is Action.KEEP
    assert changes[TagKind.SHA].action is Action.KEEP
    for kind in (TagKind.MINOR, TagKind.MAJOR, TagKind.LATEST):
        assert changes[kind].action is Action.MOVE
        assert (changes[kind].current, changes[kind].desired) == ("sha256:old", "sha256:new")
    line = describe(changes[TagKind.LATEST], "docker.io", {"sha256:old": "2.11.4"})
    assert line == "move     docker.io/prefecthq/prefect:2-latest sha256:old (2.11.4) -> sha256:new"


def test_sha_tag_naming_other_content_is_a_conflict_unless_forced(plan):
    spec = plan.images[0]
    sha = next(t for t in spec.targets if t.kind is TagKind.SHA)
    state = ReleaseState({spec.key: image("sha256:new")}, {sha: "sha256:other"})
    (conflict,) = conflicts(reconcile(plan, state))
    assert conflict.target == sha and conflict.current == "sha256:other"
    forced = by_kind(reconcile(plan, state, force=True))[TagKind.SHA]
    assert forced.action is Action.MOVE and forced.desired == "sha256:new"


def test_sha_tag_present_before_its_full_tag_is_a_conflict(plan):
    spec = plan.images[0]
    sha = next(t for t in spec.targets if t.kind is TagKind.SHA)
    (conflict,) = conflicts(reconcile(plan, ReleaseState({}, {sha: "sha256:other"})))
    assert conflict.target == sha


@pytest.mark.parametrize(
    ("remote", "why"),
    [
        (image("sha256:x", {"linux/arm64"}), "has linux/arm64; missing linux/amd64"),
        (image("sha256:x", version="2.11.4"), "is version 2.11.4, not 2.11.5"),
        (image("sha256:x", revision="deadbeef00"), "built from commit deadbeef00"),
    ],
)
def test_a_full_tag_that_is_not_the_planned_image_is_never_overwritten(plan, remote, why):
    spec = plan.images[0]
    changes = reconcile(plan, ReleaseState({spec.key: remote}, {}))
    (conflict,) = conflicts(changes)
    assert conflict.target.kind is TagKind.FULL and why in conflict.reason
    # floating tags cannot point at it either: they wait for the image to be rebuilt
    assert all(c.desired is None for c in changes)
    forced = by_kind(reconcile(plan, ReleaseState({spec.key: remote}, {}), force=True))
    assert forced[TagKind.FULL].action is Action.MOVE
    assert "--force-republish" in forced[TagKind.FULL].reason


def test_image_without_annotations_is_judged_by_platforms_only(plan):
    spec = plan.images[0]
    foreign = RemoteImage("sha256:x", BOTH, {})
    changes = by_kind(reconcile(plan, ReleaseState({spec.key: foreign}, {})))
    assert changes[TagKind.FULL].action is Action.KEEP


def test_known_releases_come_from_full_tags_only():
    tags = [
        "2.11.5-python3.10",
        "2.11.4-python3.8-conda",
        "2.11-python3.10",
        "2-latest",
        "sha-abc1234-python3.10",
        "3.0.0rc1-python3.12",
        "main-python3.10",
        "latest",
    ]
    assert [str(v) for v in known_releases([tags])] == ["2.11.4", "2.11.5", "3.0.0rc1"]


def test_annotations_come_from_the_index_or_from_every_entry_alike():
    import json

    from matrix.publish.state import describe_image

    entry = {"mediaType": "m", "size": 1, "platform": {"os": "linux", "architecture": "amd64"}}
    podman_style = {
        "manifests": [
            {
                **entry,
                "digest": "sha256:a",
                "annotations": {VERSION_ANNOTATION: "2.11.5", "x": "1"},
            },
            {
                **entry,
                "digest": "sha256:b",
                "annotations": {VERSION_ANNOTATION: "2.11.5", "x": "2"},
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
        ]
    }
    found = describe_image(
        json.dumps(podman_style).encode(), "application/vnd.oci.image.index.v1+json", "sha256:i"
    )
    assert found.platforms == {"linux/amd64", "linux/arm64/v8"}
    assert found.annotations == {VERSION_ANNOTATION: "2.11.5"}
    indexed = {**podman_style, "annotations": {VERSION_ANNOTATION: "2.11.6"}}
    found = describe_image(
        json.dumps(indexed).encode(), "application/vnd.oci.image.index.v1+json", "sha256:i"
    )
    assert found.version == "2.11.6"
