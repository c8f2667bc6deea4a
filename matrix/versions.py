"""Prefect release versions: PEP 440 parsing and the questions the tag rules ask.

A release version has exactly three release numbers (``2.11.5``), so that its full
tag can never be mistaken for a floating one (``2.11`` is the minor tag). A leading
``v`` is accepted and dropped, as is everything PEP 440 normalizes
(``3.0.0-RC.1`` is ``3.0.0rc1``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from packaging.version import InvalidVersion, Version

from matrix.errors import VersionError

_COMMIT_IN_LOCAL = re.compile(r"(?:^|\.)g([0-9a-f]{7,40})(?:\.|$)")
_LINE_SELECTOR = re.compile(r"([0-9]+)\.([0-9]+|x)")  # 2.20, or 3.x for major 3's newest line


class Kind(StrEnum):
    FINAL = "final"  # includes post releases, which supersede their base
    PRERELEASE = "prerelease"  # a, b, rc or .devN
    DEV = "dev"  # a local segment: an untagged build, e.g. 2.11.5+12.gabc1234


# A full tag is the version and at least -pythonX.Y in 128 characters; a longer text
# is no version matrix can publish, and is refused before packaging parses its numbers
# (a long digit run exceeds Python's int conversion limit).
MAX_VERSION_LENGTH = 100


def parse_version(text: str) -> Version:
    """Parse a Prefect release version or raise VersionError saying why not."""
    if isinstance(text, str) and len(text) > MAX_VERSION_LENGTH:
        raise VersionError(
            f"invalid version {text[:20]!r}...: {len(text)} characters, a Prefect version "
            f"has at most {MAX_VERSION_LENGTH}"
        )
    try:
        version = Version(text)
    except (InvalidVersion, TypeError):
        raise VersionError(
            f"invalid version {text!r}: not a PEP 440 version (expected e.g. 2.11.5, "
            "3.0.0rc1, 2.6.9.post1 or 2.11.5+12.gabc1234)"
        ) from None
    if version.epoch:
        raise VersionError(f"invalid version {text!r}: Prefect versions have no epoch")
    if len(version.release) != 3:
        raise VersionError(
            f"invalid version {text!r}: a release has exactly three numbers X.Y.Z, "
            f"got {len(version.release)}"
        )
    return version


def kind(version: Version) -> Kind:
    if version.local is not None:
        return Kind.DEV
    if version.is_prerelease:
        return Kind.PRERELEASE
    return Kind.FINAL


def commit_from_local(version: Version) -> str | None:
    """The commit of a versioneer-style local segment: ``abc1234`` from ``+12.gabc1234``."""
    if version.local is None:
        return None
    match = _COMMIT_IN_LOCAL.search(version.local)
    return match.group(1) if match else None


def parse_known_releases(lines: Iterable[str], source: str) -> list[Version]:
    """Versions listed one per line (blank lines and ``#`` comments allowed)."""
    known = []
    for number, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            known.append(parse_version(text))
        except VersionError as error:
            raise VersionError(f"{source}:{number}: {error}") from None
    return known


def newest_final(
    versions: Iterable[Version], major: int, minor: int | None = None
) -> Version | None:
    """The newest final release of a major (or of one minor line) among ``versions``."""
    candidates = [
        v
        for v in versions
        if kind(v) is Kind.FINAL and v.major == major and (minor is None or v.minor == minor)
    ]
    return max(candidates, default=None)


def newer_finals(versions: Iterable[Version], version: Version) -> tuple[bool, bool]:
    """Whether ``versions`` hold a final release newer than ``version`` in its minor
    line, and in its major. One pass: a releases file holds a project's whole history."""
    in_minor = in_major = False
    for other in versions:
        if other > version and other.major == version.major and kind(other) is Kind.FINAL:
            in_major = True
            if other.minor == version.minor:
                in_minor = True
                break
    return in_minor, in_major


LineSelector = tuple[int, int | None]  # (3, 8) for 3.8, (3, None) for 3.x


def parse_lines(text: str | None) -> list[LineSelector]:
    """``"2.20,3.x"`` -> [(2, 20), (3, None)]; None or blank -> []."""
    selectors = []
    for part in (text or "").split(","):
        if not part.strip():
            continue
        match = _LINE_SELECTOR.fullmatch(part.strip())
        if match is None:
            raise VersionError(f"invalid line {part.strip()!r}: expected X.Y (2.20) or X.x (3.x)")
        minor = None if match.group(2) == "x" else int(match.group(2))
        selectors.append((int(match.group(1)), minor))
    return selectors


def newest_of_lines(
    known: Iterable[Version], selectors: Iterable[LineSelector] = (), *, missing_ok: bool = False
) -> list[Version]:
    """The newest final release of each selected line, oldest first; with no selector,
    the newest minor line of every major among ``known``. A line with no release is
    an error, or passed over if ``missing_ok``."""
    finals = [v for v in known if kind(v) is Kind.FINAL]
    wanted = list(selectors) or [(major, None) for major in sorted({v.major for v in finals})]
    chosen: set[Version] = set()
    for major, minor in wanted:
        newest = newest_final(finals, major, minor)
        if newest is None and missing_ok:
            continue
        if newest is None:
            line = f"{major}.{'x' if minor is None else minor}"
            raise VersionError(f"no final release of line {line} is known")
        chosen.add(newest)
    return sorted(chosen)
