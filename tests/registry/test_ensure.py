"""ensure: look first, write only what is missing, content before the names."""

from urllib.parse import unquote

from matrix.reference import ImageReference
from matrix.registry import RegistrySource, copy_content, ensure
from matrix.registry.manifests import blobs, parse_manifest
from tests.support.images import push_index


def _writes(proxy) -> list[tuple[str, str]]:
    return [(s.method, s.path) for s in proxy.seen if s.method in ("PUT", "POST", "PATCH")]


def test_an_index_goes_children_first_and_the_tag_last(fault_proxy, make_client, repo):
    client = make_client()
    source = repo(fault_proxy.host)
    pushed = push_index(client, source)
    target = ImageReference(source.registry, source.repository + "-copy", "1")
    fault_proxy.clear()

    assert ensure(client, RegistrySource(source), [target]) == pushed.digest

    writes = [(method, unquote(path)) for method, path in _writes(fault_proxy)]
    assert writes[-1] == ("PUT", f"/v2/{target.repository}/manifests/1")
    for digest in pushed.platforms.values():
        child = writes.index(("PUT", f"/v2/{target.repository}/manifests/{digest}"))
        own = blobs(parse_manifest(client.get_manifest(source.with_digest(digest)).content))
        mounted = [
            i for i, (_, path) in enumerate(writes) for b in own if f"mount={b.digest}" in path
        ]
        assert len(mounted) == len(own)
        assert max(mounted) < child  # a child is written after its blobs are there


def test_a_second_ensure_only_looks(fault_proxy, make_client, repo):
    client = make_client()
    source = repo(fault_proxy.host)
    pushed = push_index(client, source)
    targets = [source.with_tag("a"), source.with_tag("b")]
    ensure(client, RegistrySource(source), targets)
    fault_proxy.clear()

    assert ensure(client, RegistrySource(source), targets) == pushed.digest
    assert [s.method for s in fault_proxy.seen] == ["GET", "HEAD", "HEAD"]


def test_an_interrupted_copy_is_finished_with_the_tag_alone(fault_proxy, make_client, repo):
    client = make_client()
    source = repo(fault_proxy.host)
    pushed = push_index(client, source)
    target = ImageReference(source.registry, source.repository + "-half", "1")
    manifest = client.get_manifest(source)
    copy_content(client, source, target, manifest)  # the run died before the tag
    fault_proxy.clear()

    ensure(client, RegistrySource(source), [target], manifest)

    assert _writes(fault_proxy) == [("PUT", f"/v2/{target.repository}/manifests/1")]
    assert client.head_manifest(target).digest == pushed.digest


def test_what_the_caller_saw_is_not_looked_at_again(fault_proxy, make_client, repo):
    client = make_client()
    source = repo(fault_proxy.host)
    push_index(client, source)
    manifest = client.get_manifest(source)
    new, there = source.with_tag("new"), source.with_tag("there")
    ensure(client, RegistrySource(source), [there], manifest)
    fault_proxy.clear()

    current = {new: None, there: manifest.digest}
    ensure(client, RegistrySource(source), [new, there], manifest, current=current)
    assert [(s.method, s.path) for s in fault_proxy.seen] == [
        ("PUT", f"/v2/{source.repository}/manifests/new")
    ]
