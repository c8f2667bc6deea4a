"""Anonymous, basic and bearer-token auth against real registries."""

import pytest

from matrix.reference import parse_reference
from matrix.registry import AuthenticationError, Credentials, retag
from tests.conftest import BASIC_USERS
from tests.support.images import push_index

ALICE = Credentials("alice", BASIC_USERS["alice"])
WRITER = Credentials("writer", "writer-secret")
READER = Credentials("reader", "reader-secret")


def test_basic_auth_pushes_and_reads_with_the_right_password(basic_registry, make_client, repo):
    client = make_client(ALICE)
    ref = repo(basic_registry.host)
    client.ping(basic_registry.host)
    pushed = push_index(client, ref)
    assert client.head_manifest(ref).digest == pushed.digest


def test_basic_auth_wrong_password_names_the_user_but_not_the_password(
    basic_registry, make_client, repo
):
    client = make_client(Credentials("alice", "Tr0ub4dor&3"))
    with pytest.raises(AuthenticationError) as caught:
        client.head_manifest(repo(basic_registry.host))
    message = str(caught.value)
    assert "refused the credentials of user 'alice'" in message
    assert basic_registry.host in message
    assert "Tr0ub4dor&3" not in message


def test_basic_auth_without_credentials_says_how_to_log_in(basic_registry, make_client, repo):
    with pytest.raises(AuthenticationError, match="authentication required"):
        make_client().list_tags(repo(basic_registry.host))


def test_token_auth_asks_for_exactly_the_scopes_needed_and_caches_them(
    token_registry, make_client, repo
):
    registry, issuer = token_registry
    ref = repo(registry.host)
    pushed = push_index(make_client(WRITER), ref)
    issuer.requests.clear()
    client = make_client(WRITER)
    retag(client, ref, [ref.with_tag(f"t{i}") for i in range(10)])
    assert client.head_manifest(ref.with_tag("t9")).digest == pushed.digest
    name = ref.repository
    # A pull token to read, one pull,push token shared by the ten concurrent PUTs.
    assert issuer.requests == [
        ("writer", [f"repository:{name}:pull"]),
        ("writer", [f"repository:{name}:pull,push"]),
    ]
    # The challenge was met once (GET 401, then token): the rest carried auth upfront.
    # GET 401 + token + GET + tags + token + 10 PUT + HEAD
    assert client.requests.total == 16


def test_token_auth_refreshes_an_expired_token_before_sending(token_registry, make_client, repo):
    from matrix.registry.auth import RegistryAuth

    registry, issuer = token_registry
    now = [0.0]
    with make_client(WRITER) as client:
        session = client.session(registry.host)
        session.auth = RegistryAuth(registry.host, WRITER, clock=lambda: now[0])
        ref = repo(registry.host)
        client.list_tags(ref)
        client.list_tags(ref)
        assert len(issuer.requests_for(ref.repository)) == 1
        now[0] += issuer.lifetime  # past the token's lifetime
        client.list_tags(ref)
        assert len(issuer.requests_for(ref.repository)) == 2


def test_token_auth_wrong_password_is_refused_by_the_token_service(
    token_registry, make_client, repo
):
    registry, issuer = token_registry
    client = make_client(Credentials("writer", "Tr0ub4dor&3"))
    with pytest.raises(AuthenticationError) as caught:
        client.get_manifest(repo(registry.host))
    assert f"token service {issuer.realm} refused user 'writer'" in str(caught.value)
    assert "Tr0ub4dor&3" not in str(caught.value)


def test_token_auth_missing_push_scope_is_an_error_naming_the_action(
    token_registry, make_client, repo
):
    registry, _ = token_registry
    ref = repo(registry.host)
    push_index(make_client(WRITER), ref)
    reader = make_client(READER)
    assert reader.head_manifest(ref) is not None  # pulling is allowed
    with pytest.raises(AuthenticationError) as caught:
        retag(reader, ref, [ref.with_tag("2")])
    message = str(caught.value)
    assert "user 'reader' lacks the permission to put manifest" in message
    assert f"{ref.registry}/{ref.repository}:2" in message
    assert reader.head_manifest(ref.with_tag("2")) is None


def test_token_auth_expired_tokens_are_fetched_again_once_then_reported(
    token_registry, make_client, repo
):
    registry, issuer = token_registry
    ref = repo(registry.host)
    client = make_client(WRITER)
    client.list_tags(ref)  # a good token first, then the issuer's clock goes wrong
    issuer.expired = True
    try:
        fresh = make_client(WRITER)
        with pytest.raises(AuthenticationError, match=r"refused the token .*expired"):
            fresh.list_tags(ref)
        before = len(issuer.requests_for(ref.repository))
        with pytest.raises(AuthenticationError):
            fresh.list_tags(ref)
        # the cached (bad) token was sent, refused, and replaced exactly once
        assert len(issuer.requests_for(ref.repository)) == before + 1
    finally:
        issuer.expired = False


def test_anonymous_pull_through_token_service(token_registry, make_client):
    registry, _ = token_registry
    ref = parse_reference(f"{registry.host}/public/nothing:1")
    assert make_client().head_manifest(ref) is None
    with pytest.raises(AuthenticationError, match="authentication required"):
        make_client().list_tags(parse_reference(f"{registry.host}/private/x"))
