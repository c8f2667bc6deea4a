"""verify and promote judge a release by what a pull needs, on a real registry.

Two corruptions a registry can really hold: a platform image deleted under a full
tag (what a clean-up of untagged manifests does to images pushed by digest), and
another image of the release put under a full tag and the tags that follow it.
"""

from __future__ import annotations

import json

import httpx
import pytest

from matrix.cli import main
from matrix.plan import TagKind
from matrix.publish.state import reference
from tests.support.publishing import COMMIT, VERSION, Release


@pytest.fixture
def published(tmp_path, registry, capsys):
    release = Release(tmp_path, registry.host, "pull")
    assert main(release.args(registry.host)) == 0, capsys.readouterr().err
    capsys.readouterr()
    return release


def _command(release: Release, name: str, *more: str) -> list[str]:
    return [
        name,
        *("--version", VERSION, "--sha", COMMIT, "--config", str(release.config)),
        *("--registry", release.host, *more),
    ]


def _assert_promote_refuses(release: Release, capsys, tag: str) -> None:
    before = release.tags()
    assert main(_command(release, "promote", "--yes")) == 2
    err = capsys.readouterr().err
    assert err.startswith("matrix: error: refusing to promote") and tag in err
    assert release.tags() == before


def test_a_platform_image_deleted_under_a_full_tag_fails_verify_and_promote(
    make_client, published, capsys
):
    spec = published.plan.images[0]
    client = make_client()
    full = reference(published.host, spec.full_target)
    index = json.loads(client.get_manifest(full).content)
    arm = next(m for m in index["manifests"] if m["platform"]["architecture"] == "arm64")
    # What a registry's clean-up of untagged manifests does to a pushed-by-digest image.
    deleted = httpx.delete(
        f"http://{published.host}/v2/{full.repository}/manifests/{arm['digest']}"
    )
    assert deleted.status_code == 202

    assert main(_command(published, "verify")) == 1
    out = capsys.readouterr().out
    broken = [line for line in out.splitlines() if spec.full_target.tag + " " in line]
    assert broken and "linux/arm64" in broken[0] and arm["digest"] in broken[0]
    assert "NOT as planned" in out
    _assert_promote_refuses(published, capsys, spec.full_target.tag)


def test_another_image_under_a_full_tag_and_its_followers_fails_verify_diff_and_promote(
    make_client, published, capsys
):
    py310, py311 = (
        next(s for s in published.plan.images if s.python == p and s.flavor == "standard")
        for p in ("3.10", "3.11")
    )
    client = make_client()
    other = client.get_manifest(reference(published.host, py311.full_target))
    moved = [py310.full_target] + [
        t for t in py310.targets if t.kind in (TagKind.SHA, TagKind.MINOR, TagKind.MAJOR)
    ]
    assert len(moved) == 4
    for target in moved:
        client.put_manifest(reference(published.host, target), other.content, other.media_type)

    assert main(_command(published, "verify")) == 1
    out = capsys.readouterr().out
    assert any(
        f"{py310.full_target} is the image {py311.key}, not {py310.key}" in line
        for line in out.splitlines()
    ), out

    assert main(_command(published, "diff", "--format", "json")) == 0
    changes = json.loads(capsys.readouterr().out)["registries"][0]["changes"]
    actions = {c["tag"]: c["action"] for c in changes if c["tag"] in {t.tag for t in moved}}
    assert actions.pop(py310.full_target.tag) == "conflict"
    assert set(actions.values()) == {"move"} and len(actions) == 3
    _assert_promote_refuses(published, capsys, py310.full_target.tag)


def test_promote_without_yes_and_without_a_terminal_writes_nothing(make_client, published, capsys):
    minors = [
        next(t for t in spec.targets if t.kind is TagKind.MINOR)
        for spec in published.plan.images
        if spec.flavor == "standard"
    ]
    client = make_client()  # someone swapped two minor tags
    images = [client.get_manifest(reference(published.host, t)) for t in minors]
    for target, image in zip(minors, reversed(images), strict=True):
        client.put_manifest(reference(published.host, target), image.content, image.media_type)
    before = published.tags()

    assert main(_command(published, "promote")) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "promote would write 2 tags" in err and "--yes" in err
    assert published.tags() == before

    assert main(_command(published, "promote", "--yes")) == 0
    assert published.tags() != before
