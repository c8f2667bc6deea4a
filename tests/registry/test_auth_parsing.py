"""Challenge parsing and scopes: what decides which token is asked for."""

import email.utils
import time

import httpx
import pytest

from matrix.registry.auth import (
    merge_scopes,
    parse_www_authenticate,
    retry_after_seconds,
    scopes_for,
)


def test_bearer_challenge_keeps_commas_inside_quoted_values():
    [challenge] = parse_www_authenticate(
        'Bearer realm="https://auth.example/token",service="registry.example",'
        'scope="repository:a/b:pull,push",error="insufficient_scope"'
    )
    assert challenge.scheme == "bearer"
    assert challenge.params == {
        "realm": "https://auth.example/token",
        "service": "registry.example",
        "scope": "repository:a/b:pull,push",
        "error": "insufficient_scope",
    }


def test_several_challenges_and_case_insensitive_scheme():
    challenges = parse_www_authenticate('BASIC realm="x", Bearer realm="y",service=s')
    assert [(c.scheme, c.params) for c in challenges] == [
        ("basic", {"realm": "x"}),
        ("bearer", {"realm": "y", "service": "s"}),
    ]


def test_escaped_quotes_in_values():
    [challenge] = parse_www_authenticate(r'Basic realm="say \"hi\""')
    assert challenge.params["realm"] == 'say "hi"'


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/v2/a/b/manifests/1", ("repository:a/b:pull",)),
        ("HEAD", "/v2/a/blobs/sha256:00", ("repository:a:pull",)),
        ("PUT", "/v2/a/b/manifests/1", ("repository:a/b:pull,push",)),
        (
            "POST",
            "/v2/x/blobs/uploads/?mount=d&from=y/z",
            ("repository:x:pull,push", "repository:y/z:pull"),
        ),
        ("PATCH", "/v2/x/blobs/uploads/uuid?_state=s", ("repository:x:pull,push",)),
        ("GET", "/v2/a/tags/list?n=10", ("repository:a:pull",)),
        ("DELETE", "/v2/a/manifests/sha256:00", ("repository:a:delete",)),
        ("GET", "/v2/_catalog", ("registry:catalog:*",)),
        ("GET", "/v2/", ()),
    ],
)
def test_scopes_are_exactly_what_the_request_needs(method, path, expected):
    assert scopes_for(httpx.Request(method, f"https://r.example{path}")) == expected


def test_scopes_from_a_challenge_merge_with_ours():
    # distribution's challenge for an upload names pull and push as two scopes
    merged = merge_scopes(
        ("repository:x:pull,push",), ["repository:x:pull", "repository:x:push", "repository:y:pull"]
    )
    assert merged == ("repository:x:pull,push", "repository:y:pull")


def test_retry_after_in_seconds_and_as_a_date():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 <= retry_after_seconds(later) <= 31
