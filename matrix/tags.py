"""Tag syntax: validation, and slugging the way Prefect names its images.

A tag is 1 to 128 characters of ``[A-Za-z0-9_.-]`` and does not start with ``.``
or ``-``. Invalid tags are errors that say which tag and why: matrix never
shortens or rewrites a tag it was asked to write.
"""

from __future__ import annotations

import re

from matrix.errors import InvalidTag
from matrix.reference import TAG_PATTERN

MAX_TAG_LENGTH = 128
_TAG_RE = re.compile(TAG_PATTERN)
_INVALID_CHARACTER = re.compile(r"[^A-Za-z0-9_.-]")


def validate_tag(tag: str) -> str:
    """Return ``tag`` unchanged if a registry accepts it, else raise InvalidTag."""
    if _TAG_RE.fullmatch(tag):
        return tag
    if not tag:
        raise InvalidTag("invalid tag '': a tag cannot be empty")
    if len(tag) > MAX_TAG_LENGTH:
        raise InvalidTag(
            f"invalid tag {tag[:40]!r}...: {len(tag)} characters, at most {MAX_TAG_LENGTH} allowed"
        )
    bad = _INVALID_CHARACTER.search(tag)
    if bad:
        raise InvalidTag(
            f"invalid tag {tag!r}: character {bad.group()!r} at position {bad.start()} "
            "(allowed: letters, digits, '_', '.', '-')"
        )
    raise InvalidTag(f"invalid tag {tag!r}: must start with a letter, digit or '_'")


def slugify_tag(text: str, max_length: int = 0) -> str:
    """Turn free text (a branch name) into tag characters the way Prefect does.

    Case is kept, runs of characters outside ``[a-zA-Z0-9_.-]`` become one ``-``,
    non-ASCII is transliterated and edge dashes are stripped: python-slugify with
    Prefect's arguments. ``max_length`` 0 cuts nothing; callers validate the result.
    """
    from slugify import slugify  # only dev builds and branch tags need it

    return slugify(text, lowercase=False, max_length=max_length, regex_pattern=r"[^a-zA-Z0-9_.-]+")


def get_prefect_image_name(
    prefect_version: str,
    python_version: str | None = None,
    flavor: str | None = None,
    *,
    sha: str | None = None,
) -> str:
    """The image name Prefect's client computes, as ``prefecthq/prefect:<tag>``.

    Same answer as ``prefect.utilities.dockerutils.get_prefect_image_name`` (3.4.16
    and later): a version with a local segment is a dev build, named
    ``prefecthq/prefect-dev:sha-<7 hex>-python<X.Y>[-flavor]``; any other version
    names ``prefecthq/prefect:<public version>-python<X.Y>[-flavor]``. Where Prefect
    asks git for the commit, this takes ``sha`` or the ``g<hex>`` of the local segment.
    Python defaults to the running interpreter, as in Prefect.
    """
    import sys

    from packaging.version import InvalidVersion, Version

    from matrix.errors import VersionError
    from matrix.versions import commit_from_local

    try:
        version = Version(prefect_version)
    except InvalidVersion:
        raise VersionError(f"invalid version {prefect_version!r}: not a PEP 440 version") from None
    if python_version is None:
        python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if version.local is None:
        name, prefix = "prefect", version.public
    else:
        commit = sha or commit_from_local(version)
        if not commit:
            raise VersionError(
                f"dev version {prefect_version!r} names no commit (g<hex>); pass sha="
            )
        name, prefix = "prefect-dev", f"sha-{commit[:7]}"
    text = f"{prefix}-python{python_version}" + (f"-{flavor}" if flavor else "")
    return f"prefecthq/{name}:{slugify_tag(text, MAX_TAG_LENGTH)}"
