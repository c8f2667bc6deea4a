"""Image references parse and normalize as the docker CLI does (distribution/reference)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matrix.errors import InvalidReference
from matrix.reference import ImageReference, parse_reference

H = "0123456789abcdef" * 4  # 64 lowercase hex
DIGEST = f"sha256:{H}"


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("ubuntu", "docker.io", "library/ubuntu", None, None),
        ("ubuntu:22.04", "docker.io", "library/ubuntu", "22.04", None),
        ("prefecthq/prefect:2-latest", "docker.io", "prefecthq/prefect", "2-latest", None),
        ("docker.io/ubuntu", "docker.io", "library/ubuntu", None, None),
        ("index.docker.io/prefecthq/prefect", "docker.io", "prefecthq/prefect", None, None),
        ("registry-1.docker.io/x/y", "registry-1.docker.io", "x/y", None, None),
        ("ghcr.io/prefecthq/prefect:3-latest", "ghcr.io", "prefecthq/prefect", "3-latest", None),
        ("localhost/foo", "localhost", "foo", None, None),
        ("localhost:5000/a/b", "localhost:5000", "a/b", None, None),
        # The seed's parse_image_tag gets these wrong: a port and no tag, and digests.
        ("host.example:5000/a/b", "host.example:5000", "a/b", None, None),
        ("ubuntu@" + DIGEST, "docker.io", "library/ubuntu", None, DIGEST),
        (
            "prefecthq/prefect:2.11.5-python3.10@" + DIGEST,
            "docker.io",
            "prefecthq/prefect",
            "2.11.5-python3.10",
            DIGEST,
        ),
        ("127.0.0.1:5000/p/q:t@" + DIGEST, "127.0.0.1:5000", "p/q", "t", DIGEST),
        ("[::1]:5000/foo:bar", "[::1]:5000", "foo", "bar", None),
        ("EXAMPLE.COM/foo", "EXAMPLE.COM", "foo", None, None),
        ("Foo/bar", "Foo", "bar", None, None),  # uppercase makes it a host
        ("example.com", "docker.io", "library/example.com", None, None),
        ("localhost:5000", "docker.io", "library/localhost", "5000", None),
        ("a__b/c--d/e.f:_tag", "docker.io", "a__b/c--d/e.f", "_tag", None),
        ("xn--bcher-kva.example/foo", "xn--bcher-kva.example", "foo", None, None),
    ],
)
def test_docker_grammar_and_normalization(text, registry, repository, tag, digest):
    ref = parse_reference(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (
        registry,
        repository,
        tag,
        digest,
    )


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("Ubuntu", "must be lowercase"),
        ("prefecthq/Prefect", "must be lowercase"),
        (H, "64-byte hexadecimal"),
        ("ubuntu:.bad", "invalid reference format"),
        ("ubuntu:" + "t" * 129, "invalid reference format"),
        ("ubuntu:a+b", "invalid reference format"),
        ("a//b", "invalid reference format"),
        ("-a/b", "invalid reference format"),
        ("host:abc/foo", "invalid reference format"),
        ("a_b.com/foo", "invalid registry host"),
        ("ubuntu@sha256:" + H[:-1], "digest length"),
        ("ubuntu@sha256:" + H.upper(), "digest format"),
        ("ubuntu@md5:" + H, "unsupported digest algorithm"),
        ("x/" + "a" * 254, "more than 255"),
    ],
)
def test_docker_rejects_these_and_so_do_we(text, reason):
    with pytest.raises(InvalidReference, match=reason):
        parse_reference(text)


def test_path_of_255_characters_is_the_limit():
    assert parse_reference("x/" + "a" * 253).repository == "x/" + "a" * 253


def test_invalid_reference_is_a_value_error():
    with pytest.raises(ValueError):
        parse_reference("UPPER")


def test_string_forms():
    ref = parse_reference("ubuntu:22.04")
    assert str(ref) == "docker.io/library/ubuntu:22.04"
    assert ref.familiar == "ubuntu:22.04"
    assert ref.reference == "22.04"
    pinned = ref.with_digest(DIGEST)
    assert pinned.reference == DIGEST and pinned.tag is None
    assert parse_reference("ghcr.io/a/b@" + DIGEST).familiar == "ghcr.io/a/b@" + DIGEST


# -- properties -----------------------------------------------------------------------

_component = st.from_regex(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*", fullmatch=True).filter(
    lambda c: len(c) <= 30
)
_host = st.one_of(
    st.sampled_from(["ghcr.io", "localhost", "127.0.0.1", "quay.io", "[::1]"]),
    st.from_regex(r"[a-z0-9]{1,8}\.[a-z]{2,5}", fullmatch=True),
)
_registry = st.one_of(
    st.none(),
    st.tuples(_host, st.one_of(st.none(), st.integers(1, 65535))).map(
        lambda pair: pair[0] if pair[1] is None else f"{pair[0]}:{pair[1]}"
    ),
)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", fullmatch=True)
_digest = st.sampled_from(["sha256", "sha512"]).flatmap(
    lambda algorithm: st.text(
        "0123456789abcdef",
        min_size=64 if algorithm == "sha256" else 128,
        max_size=64 if algorithm == "sha256" else 128,
    ).map(lambda hex_part: f"{algorithm}:{hex_part}")
)


@st.composite
def references(draw) -> str:
    registry = draw(_registry)
    components = draw(st.lists(_component, min_size=1, max_size=4))
    if registry is None and ("." in components[0] or components[0] == "localhost"):
        # docker would read that first component as a registry host
        components[0] = "x"
    path = "/".join(components)
    text = f"{registry}/{path}" if registry else path
    if draw(st.booleans()):
        text += ":" + draw(_tag)
    if draw(st.booleans()):
        text += "@" + draw(_digest)
    return text


@given(references())
def test_valid_references_round_trip(text):
    ref = parse_reference(text)
    assert isinstance(ref, ImageReference)
    again = parse_reference(str(ref))
    assert again == ref
    assert parse_reference(ref.familiar) == ref


@given(st.text(max_size=80))
def test_any_text_parses_or_raises_the_documented_error(text):
    try:
        ref = parse_reference(text)
    except InvalidReference as error:
        assert str(error).startswith("invalid reference")
        assert "\n" not in str(error)
    else:
        assert parse_reference(str(ref)) == ref
        assert ref.tag is None or re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", ref.tag)
