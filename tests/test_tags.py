"""Tag validation, Prefect's slugging, and get_prefect_image_name parity."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matrix.errors import InvalidTag, VersionError
from matrix.tags import get_prefect_image_name, slugify_tag, validate_tag

TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


@pytest.mark.parametrize(
    "tag", ["2.11.5-python3.10", "2-latest", "_x", "A" * 128, "sha-abc1234-python3.12-conda"]
)
def test_valid_tags_are_returned_unchanged(tag):
    assert validate_tag(tag) == tag


@pytest.mark.parametrize(
    ("tag", "why"),
    [
        ("", "cannot be empty"),
        ("a" * 129, "129 characters, at most 128"),
        (".hidden", "must start with"),
        ("-x", "must start with"),
        ("2.11.5+local-python3.10", "character '+' at position 6"),
        ("naïve", "character 'ï'"),
        ("a b", "character ' '"),
    ],
)
def test_invalid_tags_say_which_and_why(tag, why):
    with pytest.raises(InvalidTag, match=re.escape(why)):
        validate_tag(tag)


@given(st.text(max_size=140))
def test_validator_accepts_exactly_the_registry_grammar(text):
    if TAG.fullmatch(text):
        assert validate_tag(text) == text
    else:
        with pytest.raises(InvalidTag) as raised:
            validate_tag(text)
        assert "\n" not in str(raised.value)


@given(st.text(max_size=200))
def test_slugged_text_has_only_tag_characters(text):
    slug = slugify_tag(text, 128)
    assert re.fullmatch(r"[A-Za-z0-9_.-]{0,128}", slug)
    assert not slug.startswith("-") and not slug.endswith("-")


def test_slugging_can_leave_a_leading_dot_so_tags_are_validated_after_it():
    # Prefect's slugging keeps '.', so '.x' stays invalid: the planner validates.
    assert slugify_tag(".x") == ".x"
    with pytest.raises(InvalidTag):
        validate_tag(slugify_tag(".x") + "-python3.10")


# Expected names follow Prefect's function (3.4.16+): public version, python-slugify
# with case kept and invalid runs turned into one '-'.
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("2.11.5", "3.10"), "prefecthq/prefect:2.11.5-python3.10"),
        (("2.11.5", "3.10", "conda"), "prefecthq/prefect:2.11.5-python3.10-conda"),
        (("2.1.1", "3.10", "conda"), "prefecthq/prefect:2.1.1-python3.10-conda"),
        (("v2.14.6", "3.11"), "prefecthq/prefect:2.14.6-python3.11"),
        (("3.0.0-RC.1", "3.12"), "prefecthq/prefect:3.0.0rc1-python3.12"),
        (("3.4.15.dev1", "3.12"), "prefecthq/prefect:3.4.15.dev1-python3.12"),
        (("2.6.9.post1", "3.10"), "prefecthq/prefect:2.6.9.post1-python3.10"),
        (("2.11.5+12.gabc1234", "3.10"), "prefecthq/prefect-dev:sha-abc1234-python3.10"),
        (
            ("3.4.16+3.g88a7ff17a3435ec33c95c0323b8f05d7b9f3f6d2", "3.12", "kubernetes"),
            "prefecthq/prefect-dev:sha-88a7ff1-python3.12-kubernetes",
        ),
        (("2.11.5", "3.10", "my flavor!"), "prefecthq/prefect:2.11.5-python3.10-my-flavor"),
    ],
)
def test_get_prefect_image_name_matches_prefect(args, expected):
    assert get_prefect_image_name(*args) == expected


def test_get_prefect_image_name_defaults_to_the_running_python():
    import sys

    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    assert get_prefect_image_name("2.11.5") == f"prefecthq/prefect:2.11.5-python{python}"


def test_get_prefect_image_name_takes_an_explicit_sha_for_dev_builds():
    name = get_prefect_image_name("2.11.5+dirty", "3.10", sha="deadbeefcafe")
    assert name == "prefecthq/prefect-dev:sha-deadbee-python3.10"
    with pytest.raises(VersionError, match="names no commit"):
        get_prefect_image_name("2.11.5+dirty", "3.10")


def test_get_prefect_image_name_cuts_at_128_like_prefect():
    name = get_prefect_image_name("2.11.5", "3.10", "x" * 200)
    assert len(name.split(":", 1)[1]) == 128
