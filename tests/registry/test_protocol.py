"""Protocol cases a local docker-registry never shows: pages, lying digests, old HEADs."""

import json
import logging
import time

import httpx
import pytest
import stamina

from matrix.reference import parse_reference
from matrix.registry import RegistryClient, RegistryError, RetryPolicy
from matrix.registry.manifests import OCI_MANIFEST, sha256_digest
from tests.conftest import FAST_RETRY

EMPTY_CONFIG = {
    "mediaType": "application/vnd.oci.empty.v1+json",
    "digest": sha256_digest(b"{}"),
    "size": 2,
}
MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": EMPTY_CONFIG, "layers": []}
).encode()
REF = parse_reference("registry.example/team/app:1")


def _client(handler) -> RegistryClient:
    return RegistryClient(
        credentials=lambda registry: None,
        retry=FAST_RETRY,
        transport=httpx.MockTransport(handler),
    )


def test_tags_follow_link_pages_relative_to_the_request():
    pages = {
        "": (["a", "b"], '</v2/team/app/tags/list?n=2&last=b>; rel="next"'),
        "n=2&last=b": (["c", "d"], '</v2/team/app/tags/list?n=2&last=d>; rel="next"'),
        "n=2&last=d": (["e"], None),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.host == "registry.example" and request.url.scheme == "https"
        tags, link = pages[request.url.query.decode()]
        headers = {"Link": link} if link else {}
        return httpx.Response(200, json={"name": "team/app", "tags": tags}, headers=headers)

    with _client(handler) as client:
        assert client.list_tags(REF) == ["a", "b", "c", "d", "e"]
        assert client.requests.total == 3


def test_a_manifest_that_does_not_match_its_digest_is_refused():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            200,
            content=MANIFEST + b" ",
            headers={
                "Content-Type": OCI_MANIFEST,
                "Docker-Content-Digest": sha256_digest(MANIFEST),
            },
        )

    with _client(handler) as client, pytest.raises(RegistryError, match="does not match"):
        client.get_manifest(REF)


def test_a_manifest_fetched_by_digest_must_have_that_digest():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=MANIFEST, headers={"Content-Type": OCI_MANIFEST})

    by_digest = REF.with_digest(sha256_digest(b"something else"))
    with _client(handler) as client, pytest.raises(RegistryError, match="does not match"):
        client.get_manifest(by_digest)


def test_head_without_a_digest_falls_back_to_get():
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Type": OCI_MANIFEST}
        if request.method == "HEAD":
            return httpx.Response(200, headers=headers)
        assert request.headers["Accept"].count(",") == 3  # all four manifest types
        return httpx.Response(200, content=MANIFEST, headers=headers)

    with _client(handler) as client:
        head = client.head_manifest(REF)
    assert (head.digest, head.media_type, head.size) == (
        sha256_digest(MANIFEST),
        OCI_MANIFEST,
        len(MANIFEST),
    )


def test_connection_errors_are_retried_then_reported_with_the_reference():
    attempts = []

    def handler(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        raise httpx.ConnectError("connection refused")

    with _client(handler) as client, pytest.raises(RegistryError) as caught:
        client.head_manifest(REF)
    assert len(attempts) == FAST_RETRY.attempts
    assert str(caught.value).startswith(
        "registry.example/team/app:1: head manifest: connection refused "
        f"({FAST_RETRY.attempts} tries in "
    )


@pytest.mark.timeout(20)
def test_map_inside_map_completes_on_a_small_pool(make_client):
    # a publisher maps over images, and each image's copy maps over its blobs
    with make_client(max_workers=2) as client:
        result = client.map(lambda outer: client.map(lambda inner: outer * inner, [1, 2]), range(6))
    assert result == [[n, 2 * n] for n in range(6)]


def test_a_registry_s_own_words_stay_on_one_short_line():
    def handler(request: httpx.Request) -> httpx.Response:
        message = "first line\nsecond line\r\n\x1b[31m" + "x" * 20000
        return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN", "message": message}]})

    with _client(handler) as client, pytest.raises(RegistryError) as caught:
        client.get_manifest(REF)
    text = str(caught.value)
    assert "\n" not in text and "\r" not in text and "\x1b" not in text
    assert "NAME_UNKNOWN: first line second line [31mxxx" in text
    assert len(text) < 1100


def _counting_client(handler, notices: list, retry: RetryPolicy = FAST_RETRY) -> RegistryClient:
    return RegistryClient(
        credentials=lambda registry: None,
        retry=retry,
        transport=httpx.MockTransport(handler),
        notify=notices.append,
    )


def test_each_retry_is_said_once_and_nothing_else_is_logged(caplog, capsys):
    answers = iter([503, 502])

    def handler(request: httpx.Request) -> httpx.Response:
        status = next(answers, 200)
        return httpx.Response(status, json={"name": "team/app", "tags": ["1"]})

    notices: list = []
    caplog.set_level(logging.DEBUG)
    with _counting_client(handler, notices) as client:
        assert client.list_tags(REF) == ["1"]
    assert [(n.retry, n.retries) for n in notices] == [(1, 4), (2, 4)]
    assert str(notices[0]).startswith(
        "registry.example/team/app: list tags: HTTP 503 to GET /v2/team/app/tags/list, "
        "retry 1 of 4 in "
    )
    assert all(0 < n.wait <= FAST_RETRY.wait_max for n in notices)
    assert [r for r in caplog.records if r.name.startswith(("stamina", "tenacity"))] == []
    assert capsys.readouterr().err == ""


def test_unanswered_tries_are_limited_apart_from_other_failures():
    failures = iter([httpx.ConnectError("connection refused")])

    def handler(request: httpx.Request) -> httpx.Response:
        raise next(failures, httpx.ReadTimeout("timed out"))

    notices: list = []
    with _counting_client(handler, notices) as client, pytest.raises(RegistryError) as caught:
        client.list_tags(REF)
    assert client.requests.total == 1 + FAST_RETRY.timeout_attempts
    # after one refusal, two more retries at most: the unanswered tries are two
    assert [(n.reason, n.retry, n.retries) for n in notices] == [
        ("connection refused", 1, 4),
        (notices[1].reason, 2, 2),
    ]
    assert notices[1].reason.startswith("no answer within")
    assert "(3 tries in " in str(caught.value)


def test_a_retry_after_past_the_time_limit_fails_at_once():
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "50"})

    notices: list = []
    policy = RetryPolicy(attempts=5, timeout=5, wait_initial=0.01, wait_max=0.05)
    started = time.monotonic()
    with (
        _counting_client(handler, notices, policy) as client,
        pytest.raises(RegistryError) as caught,
    ):
        client.list_tags(REF)
    assert time.monotonic() - started < 2
    assert notices == [] and client.requests.total == 1
    assert str(caught.value) == (
        "registry.example/team/app: list tags: HTTP 429 to GET /v2/team/app/tags/list"
    )


def test_retries_of_other_stamina_users_are_not_said(capsys):
    calls = []
    for attempt in stamina.retry_context(on=ValueError, attempts=2, wait_initial=0.01):
        with attempt:
            calls.append(attempt.num)
            if len(calls) == 1:
                raise ValueError("once")
    assert calls == [1, 2]
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("setting", [{"timeout": 0}, {"attempts": 0}, {"timeout_attempts": 0}])
def test_a_retry_policy_that_cannot_try_is_refused(setting):
    with pytest.raises(ValueError, match="must be at least 1"):
        RetryPolicy(**setting)
