"""Copies keep digests, move no layer twice, and cost few requests."""

import json

import pytest

from matrix.reference import parse_reference
from matrix.registry import Credentials, Platform, RegistryError, assemble_index, copy, retag
from matrix.registry.manifests import OCI_INDEX
from tests.conftest import BASIC_USERS
from tests.support.images import push_index


def _blob_writes(proxy) -> list:
    """Requests that carry layer bytes: upload PUT/PATCH, and POSTs that are not mounts."""
    return [
        seen
        for seen in proxy.seen
        if "/blobs/uploads/" in seen.path
        and (
            seen.method in ("PUT", "PATCH") or (seen.method == "POST" and "mount=" not in seen.path)
        )
    ]


def test_retag_to_twenty_tags_and_a_second_repository_keeps_digests_and_moves_no_layer(
    fault_proxy, make_client, repo
):
    client = make_client()
    source = repo(fault_proxy.host)
    pushed = push_index(client, source)
    fault_proxy.clear()
    client.requests.reset()

    tags = [source.with_tag(f"2.11.{i}-python3.10") for i in range(20)]
    changes = retag(client, source, tags)
    assert {change.action for change in changes} == {"created"}
    # GET the source once, one tags list, then one PUT per tag.
    assert client.requests.by_method == {"GET": 2, "PUT": 20}

    mirror = parse_reference(f"{fault_proxy.host}/mirror/{source.repository}:copied")
    assert copy(client, source, mirror) == pushed.digest

    assert not _blob_writes(fault_proxy), "a layer was uploaded instead of mounted"
    mounts = [s for s in fault_proxy.seen if "mount=" in s.path]
    assert sorted(s.outcome for s in mounts) == ["201"] * len(pushed.blobs)
    for target in [*tags, mirror]:
        assert client.head_manifest(target).digest == pushed.digest
    for platform, digest in pushed.platforms.items():
        child = client.get_manifest(mirror.with_digest(digest))
        assert child.digest == digest, platform


def test_dry_run_says_created_moved_unchanged_and_changes_nothing(registry, make_client, repo):
    client = make_client()
    first = repo(registry.host, "first")
    second = first.with_tag("second")
    old = push_index(client, first)
    new = push_index(client, second, salt="new")
    retag(client, first, [first.with_tag("stable")])

    changes = retag(
        client, second, [first.with_tag("stable"), first.with_tag("fresh"), second], dry_run=True
    )
    assert [(str(c.target.tag), c.action, c.before) for c in changes] == [
        ("stable", "moved", old.digest),
        ("fresh", "created", None),
        ("second", "unchanged", new.digest),
    ]
    assert "moved from " + old.digest + " to " + new.digest in str(changes[0])
    assert client.head_manifest(first.with_tag("stable")).digest == old.digest
    assert client.head_manifest(first.with_tag("fresh")) is None


def test_copy_between_registries_streams_blobs(registry, basic_registry, make_client, repo):
    def credentials(host):
        return Credentials("alice", BASIC_USERS["alice"]) if host == basic_registry.host else None

    source = repo(registry.host)
    with make_client(credentials) as client:
        pushed = push_index(client, source)
        target = parse_reference(f"{basic_registry.host}/{source.repository}:mirrored")
        assert copy(client, source, target) == pushed.digest
        for digest in pushed.blobs:
            assert client.blob_exists(target, digest)
        # a second copy finds everything there and sends only the tag: the source
        # manifest, the target tag and each child looked at, and one PUT
        client.requests.reset()
        assert copy(client, source, target.with_tag("again")) == pushed.digest
        assert client.requests.by_method == {"GET": 1, "HEAD": 3, "PUT": 1}
        # once the tag is there, a copy only looks
        client.requests.reset()
        assert copy(client, source, target.with_tag("again")) == pushed.digest
        assert client.requests.by_method == {"GET": 1, "HEAD": 1}


def test_assemble_index_names_each_platform(registry, make_client, repo):
    client = make_client()
    ref = repo(registry.host)
    pushed = push_index(client, ref)
    target = ref.with_tag("assembled")
    digest = assemble_index(
        client,
        target,
        [(d, Platform.parse(p)) for p, d in pushed.platforms.items()],
        annotations={"org.opencontainers.image.version": "2.11.5"},
    )
    manifest = client.get_manifest(target)
    assert (manifest.digest, manifest.media_type) == (digest, OCI_INDEX)
    document = json.loads(manifest.content)
    assert document["annotations"] == {"org.opencontainers.image.version": "2.11.5"}
    entries = document["manifests"]
    assert {(e["platform"]["os"], e["platform"]["architecture"]) for e in entries} == {
        ("linux", "amd64"),
        ("linux", "arm64"),
    }
    assert all(e["size"] > 0 for e in entries)


def test_assemble_index_refuses_a_platform_manifest_that_is_not_there(registry, make_client, repo):
    client = make_client()
    ref = repo(registry.host)
    missing = "sha256:" + "ab" * 32
    with pytest.raises(RegistryError, match=f"{missing}: cannot name it for linux/arm64"):
        assemble_index(client, ref, [(missing, "linux/arm64")])
    assert client.head_manifest(ref) is None


def test_manifest_errors_name_registry_repository_and_reference(registry, make_client, repo):
    client = make_client()
    ref = repo(registry.host, "absent")
    assert client.head_manifest(ref) is None
    with pytest.raises(RegistryError) as caught:
        client.get_manifest(ref)
    assert str(caught.value).startswith(f"{registry.host}/{ref.repository}:absent: get manifest")
    assert "MANIFEST_UNKNOWN" in str(caught.value)
    assert client.list_tags(ref) == []


def test_loopback_and_named_registries_are_plain_http_everything_else_tls(make_client):
    client = make_client(insecure_registries=["registry.internal:5000"])
    assert client.base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert client.base_url("localhost:5000") == "http://localhost:5000"
    assert client.base_url("[::1]:5000") == "http://[::1]:5000"
    assert client.base_url("registry.internal:5000") == "http://registry.internal:5000"
    assert client.base_url("ghcr.io") == "https://ghcr.io"
    assert client.base_url("docker.io") == "https://registry-1.docker.io"
