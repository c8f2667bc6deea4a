"""The package index a release's images install from, read through its JSON simple API.

matrix asks the index three things, all answered by one ``GET <index>/<project>/``
with ``Accept: application/vnd.pypi.simple.v1+json`` (PEP 691), whose file entries
carry ``upload-time`` (PEP 700) and ``requires-python``: whether a release is there
yet, when it was uploaded (the date a lock resolves its dependencies as of), and
which Pythons it installs on (the plan offers no image of another).

The index URL may hold credentials (``https://user:token@host/simple``); ``Index.shown``
is the URL without them, the only form any message, log or command line carries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import httpx
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from matrix.errors import UserError

if TYPE_CHECKING:
    from matrix.config import LoadedConfig

DEFAULT_INDEX_URL = "https://pypi.org/simple"
ENVIRONMENT = "MATRIX_INDEX_URL"
SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"


@dataclass(frozen=True)
class Index:
    url: str  # may hold credentials: never print it

    @property
    def shown(self) -> str:
        """The URL with any user name and password left out."""
        url = httpx.URL(self.url)
        return str(url.copy_with(username=None, password=None)) if url.userinfo else self.url

    def project_url(self, project: str) -> str:
        return f"{self.url.rstrip('/')}/{canonicalize_name(project)}/"


def index_from(flag: str | None, environ: Mapping[str, str], configured: str | None) -> Index:
    """The run's index: --index-url, else the environment's, else versions.toml's, else PyPI."""
    url = flag or environ.get(ENVIRONMENT, "").strip() or configured or DEFAULT_INDEX_URL
    parsed = httpx.URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        shown = Index(url).shown if parsed.host else url
        raise UserError(f"index URL {shown!r}: expected http(s)://HOST/PATH")
    return Index(url)


@dataclass(frozen=True)
class ReleaseFile:
    filename: str
    version: Version
    upload_time: datetime | None
    requires_python: str | None = None  # as the index gives it, unchecked


@dataclass(frozen=True)
class PackageRelease:
    """What the index says of one distribution at one version."""

    present: bool  # a file that is not yanked
    requires_python: SpecifierSet | None = None  # None: the index gives none


@dataclass(frozen=True)
class IndexFacts:
    """What the index says of a release, for each distribution its images install."""

    shown: str  # the index, without credentials
    packages: Mapping[str, PackageRelease]  # canonical name -> facts

    def of(self, package: str) -> PackageRelease:
        return self.packages[canonicalize_name(package)]


def package_release(files: list[ReleaseFile], version: Version) -> PackageRelease:
    """The facts of ``version`` among a project's ``files``. A wheel's Requires-Python
    wins over the sdist's (installers take the wheel); an unreadable one counts as none."""
    mine = sorted(
        (f for f in files if f.version == version), key=lambda f: not f.filename.endswith(".whl")
    )
    if not mine:
        return PackageRelease(present=False)
    for file in mine:
        if file.requires_python:
            try:
                return PackageRelease(True, SpecifierSet(file.requires_python))
            except InvalidSpecifier:
                continue
    return PackageRelease(True)


def index_facts(
    index: Index,
    packages: Iterable[str],
    version: Version,
    *,
    client: httpx.Client | None = None,
) -> IndexFacts:
    """The index's facts of ``version`` of each of ``packages``: one read per package."""
    found = {}
    for package in dict.fromkeys(canonicalize_name(p) for p in packages):
        found[package] = package_release(project_files(index, package, client=client), version)
    return IndexFacts(index.shown, found)


def packages_of(loaded: LoadedConfig) -> list[str]:
    """The distributions the images of versions.toml install."""
    return [image.package for image in loaded.config.images.values() if image.package]


def project_files(
    index: Index, project: str, *, client: httpx.Client | None = None
) -> list[ReleaseFile]:
    """Every file of ``project`` the index serves, yanked ones left out; empty when the
    index has no such project."""
    own = client or httpx.Client(timeout=30.0, follow_redirects=True)
    try:
        answer = own.get(index.project_url(project), headers={"Accept": SIMPLE_JSON})
    except httpx.HTTPError as error:
        raise UserError(f"package index {index.shown}: {type(error).__name__}: {error}") from None
    finally:
        if client is None:
            own.close()
    if answer.status_code == 404:
        return []
    if answer.status_code != 200:
        raise UserError(
            f"package index {index.shown} answered {answer.status_code} for project {project}"
        )
    try:
        files = answer.json()["files"]
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f"package index {index.shown} sent no PEP 691 JSON for {project} "
            f"(Content-Type {answer.headers.get('content-type')!r})"
        ) from None
    found = []
    for entry in files if isinstance(files, list) else ():
        name = entry.get("filename", "") if isinstance(entry, dict) else ""
        version = _version_of(name)
        if version is None or entry.get("yanked"):
            continue
        uploaded = entry.get("upload-time")
        requires = entry.get("requires-python")
        found.append(
            ReleaseFile(
                name,
                version,
                _timestamp(uploaded) if uploaded else None,
                requires if isinstance(requires, str) and requires.strip() else None,
            )
        )
    return found


def release_files(
    index: Index, project: str, version: str, *, client: httpx.Client | None = None
) -> list[ReleaseFile]:
    """The index's files of ``project`` at ``version``: empty when the release is not there."""
    wanted = Version(version)
    return [f for f in project_files(index, project, client=client) if f.version == wanted]


def releases_uploaded(index: Index, project: str) -> dict[Version, datetime | None]:
    """Every release of ``project`` on the index, with its first file's upload time."""
    return first_uploads(project_files(index, project))


def first_uploads(files: Iterable[ReleaseFile]) -> dict[Version, datetime | None]:
    """Each release among ``files``, with its first file's upload time."""
    first: dict[Version, datetime | None] = {}
    for file in files:
        earlier = first.get(file.version)
        if file.version not in first or (
            file.upload_time is not None and (earlier is None or file.upload_time < earlier)
        ):
            first[file.version] = file.upload_time
    return first


def upload_time(
    index: Index,
    project: str,
    version: str,
    *,
    wait: float = 0.0,
    progress: Callable[[str], None] | None = None,
    poll: float | None = None,
) -> datetime:
    """When ``project`` ``version`` was uploaded (its newest file's ``upload-time``).

    A release the index lacks is a UserError naming version and index, unless
    ``wait`` seconds are given: then the index is asked again every ``poll`` seconds
    until then, each wait reported to ``progress``.
    """
    deadline = time.monotonic() + wait
    # About ten looks over the wait, none closer than a second nor further than 15 s.
    poll = poll if poll is not None else min(15.0, max(wait / 10, 1.0))
    while True:
        files = release_files(index, project, version)
        if files:
            break
        left = deadline - time.monotonic()
        if left <= 0:
            waited = f" after waiting {wait:.0f} s" if wait else ""
            raise UserError(
                f"{project} {version} is not on the package index {index.shown}{waited}: "
                "build from a dist with --dist, or wait for the upload (--wait-for-index)"
            )
        if progress:
            progress(
                f"{project} {version} is not on {index.shown} yet; asking again ({left:.0f} s left)"
            )
        time.sleep(min(poll, left))
    times = [f.upload_time for f in files if f.upload_time is not None]
    if not times:
        raise UserError(
            f"package index {index.shown} gives no upload-time (PEP 700) for {project} "
            f"{version}: the lock's date cannot be known"
        )
    return max(times)


def _version_of(filename: str) -> Version | None:
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(filename)[1]
        return parse_sdist_filename(filename)[1]
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None


def _timestamp(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"package index: unreadable upload-time {text!r}") from None
