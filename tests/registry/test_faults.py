"""Copies survive a flaky registry, and a failed one leaves no tag half-written."""

import pytest

from matrix.reference import ImageReference
from matrix.registry import AuthenticationError, RegistryError, RetryPolicy, copy, retag
from tests.support.images import push_index


def _pushed(client, repo, proxy):
    source = repo(proxy.host)
    pushed = push_index(client, source)
    proxy.clear()
    return source, pushed


def test_copy_completes_through_503s_drops_and_slow_answers(fault_proxy, make_client, repo):
    client = make_client(read_timeout=0.5)
    source, pushed = _pushed(client, repo, fault_proxy)
    fault_proxy.fail(503, method="GET", path="/manifests/", times=2)
    fault_proxy.fail(502, method="POST", path="mount=", times=1)
    fault_proxy.drop(method="POST", path="mount=", times=1)
    # the registry stores the child manifest, but the answer never arrives
    fault_proxy.drop(method="PUT", path="/manifests/sha256:", after_forwarding=True)
    fault_proxy.delay(1.0, method="HEAD", times=1)  # longer than the client's timeout
    fault_proxy.fail(503, method="PUT", path="/manifests/copied$", times=3)

    target = ImageReference(source.registry, source.repository + "-mirror", "copied")
    assert copy(client, source, target) == pushed.digest

    outcomes = [seen.outcome for seen in fault_proxy.seen]
    assert outcomes.count("503 injected") == 5
    assert "dropped" in outcomes
    assert any(o.startswith("dropped after 201") for o in outcomes)
    assert client.head_manifest(target).digest == pushed.digest
    for digest in pushed.platforms.values():
        assert client.get_manifest(target.with_digest(digest)).digest == digest


def test_429_waits_as_long_as_retry_after_says(fault_proxy, make_client, repo):
    notices = []
    client = make_client(notify=notices.append)
    source, pushed = _pushed(client, repo, fault_proxy)
    fault_proxy.fail(429, method="PUT", retry_after="1", times=1)
    retag(client, source, [source.with_tag("after-429")])
    assert [notice.wait for notice in notices] == [1.0]
    assert str(notices[0]).endswith(
        "put manifest: HTTP 429 to PUT "
        f"/v2/{source.repository}/manifests/after-429, retry 1 of 4 in 1 s"
    )
    assert client.head_manifest(source.with_tag("after-429")).digest == pushed.digest


def test_exhausted_retries_name_the_target_and_leave_no_tag(fault_proxy, make_client, repo):
    client = make_client(retry=RetryPolicy(attempts=3, wait_initial=0.01, wait_max=0.02))
    source, _ = _pushed(client, repo, fault_proxy)
    target = ImageReference(source.registry, source.repository + "-copy", "broken")
    fault_proxy.fail(503, method="PUT", path="/manifests/broken$", times=100)
    with pytest.raises(RegistryError) as caught:
        copy(client, source, target)
    message = str(caught.value)
    assert message.startswith(f"{target}: put manifest: HTTP 503")
    tries = [
        s for s in fault_proxy.seen if s.method == "PUT" and s.path.endswith("/manifests/broken")
    ]
    assert len(tries) == 3
    fault_proxy.clear()
    assert client.head_manifest(target) is None


def test_a_refusal_that_will_not_change_is_not_retried(fault_proxy, make_client, repo):
    client = make_client()
    source, _ = _pushed(client, repo, fault_proxy)
    fault_proxy.fail(403, method="PUT", times=5)
    with pytest.raises(AuthenticationError, match="access denied"):
        retag(client, source, [source.with_tag("denied")])
    assert [s.method for s in fault_proxy.seen].count("PUT") == 1
