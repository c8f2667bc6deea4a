"""The plan: every image of a release and every tag it must carry.

``plan_release`` is a pure function of versions.toml, the version, the commit and
the releases already known. Everything downstream (render, build, publish, verify)
works from its ``ImageSpec`` keys, the one identifier passed between stages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum

from packaging.version import Version

from matrix.config import Contents, LineFacts, LoadedConfig
from matrix.errors import PlanError
from matrix.tags import MAX_TAG_LENGTH, slugify_tag, validate_tag
from matrix.versions import Kind, commit_from_local, kind, newer_finals, parse_version

_COMMIT_RE = re.compile(r"[0-9a-f]{7,40}")


class TagKind(StrEnum):
    FULL = "full"  # 2.11.5-python3.10: immutable
    SHA = "sha"  # sha-abc1234-python3.10: immutable
    MINOR = "minor"  # 2.11-python3.10
    MAJOR = "major"  # 2-python3.10
    LATEST = "latest"  # 2-latest
    BRANCH = "branch"  # main-python3.10 in the dev repository

    @property
    def floating(self) -> bool:
        return self not in (TagKind.FULL, TagKind.SHA)


@dataclass(frozen=True, slots=True)
class TagTarget:
    repository: str
    tag: str
    kind: TagKind

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class ImageSpec:
    key: str  # prefect-python3.10-conda: unique within a plan
    image: str  # the [images] name: prefect, prefect-client
    repository: str  # where the full tag lives
    flavor: str
    python: str
    platforms: tuple[str, ...]
    template: str
    build_args: dict[str, str]
    labels: dict[str, str]
    targets: tuple[TagTarget, ...]
    contents: Contents = field(default_factory=Contents)  # what it holds besides Prefect

    @property
    def tags(self) -> list[str]:
        """Tag names in the image's own repository."""
        return [t.tag for t in self.targets if t.repository == self.repository]

    @property
    def full_target(self) -> TagTarget:
        return next(t for t in self.targets if t.kind in (TagKind.FULL, TagKind.SHA))


@dataclass(frozen=True)
class Plan:
    version: str
    kind: Kind
    commit: str | None
    registry: str
    line: str  # the versions.toml entry that applied, e.g. ">=2.10.20, <2.12.0"
    images: tuple[ImageSpec, ...]
    notes: tuple[str, ...] = field(default=())  # assumptions the plan made, for people
    mirrors: tuple[str, ...] = ()  # registries that get copies of every image
    config: str = ""  # the versions.toml the facts came from, and why that one

    @property
    def targets(self) -> list[TagTarget]:
        return [target for image in self.images for target in image.targets]


@dataclass(frozen=True)
class Newest:
    """Whether the release is the newest final of its minor line and of its major."""

    minor: bool
    major: bool
    note: str | None = None


def decide_newest(version: Version, known: Iterable[Version] | None, latest: bool | None) -> Newest:
    """Apply "newest in line": the planned version always counts as known."""
    if kind(version) is not Kind.FINAL:
        return Newest(False, False)
    if latest is not None and known is None:
        note = f"{'--latest' if latest else '--no-latest'}: floating tags decided by hand"
        return Newest(minor=True, major=latest, note=note)
    if known is None:
        return Newest(
            True,
            True,
            f"no known releases given: assuming {version} is the newest final release of "
            f"{version.major}.{version.minor} and of {version.major}.x "
            "(use --releases FILE, --registry, or --latest/--no-latest)",
        )
    newer_in_minor, newer_in_major = newer_finals(known, version)
    minor = not newer_in_minor
    major = minor and not newer_in_major
    if latest:
        # By hand, e.g. a rollback: newest of its minor line as of its major.
        return Newest(True, True, "--latest: treated as the newest release of its line")
    if latest is False:
        return Newest(minor, False, "--no-latest: the major and N-latest tags stay")
    return Newest(minor, major)


def plan_release(
    loaded: LoadedConfig,
    version_text: str,
    *,
    commit: str | None = None,
    known: Sequence[Version] | None = None,
    latest: bool | None = None,
    pythons: Sequence[str] = (),
    flavors: Sequence[str] = (),
    images: Sequence[str] = (),
    branch: str | None = None,
) -> Plan:
    version = parse_version(version_text)
    facts = loaded.facts_for(version)
    release_kind = kind(version)
    commit = _commit(version, commit)
    if release_kind is Kind.DEV and commit is None:
        raise PlanError(
            f"dev build {version} names no commit: pass --sha, or use a local version "
            "with g<hex> such as 2.11.5+12.gabc1234"
        )
    if branch is not None and release_kind is not Kind.DEV:
        raise PlanError(
            "--branch is for dev builds (versions with a local segment such as +12.gabc1234)"
        )
    newest = decide_newest(version, known, latest)
    notes = [newest.note] if newest.note else []
    if facts.span.open_ended:
        notes.append(
            f"line {facts.versions} of versions.toml is open-ended: {version} is planned "
            f"with the newest {version.major}.x facts"
        )
    if commit is None and release_kind is Kind.FINAL and facts.release_sha_tags:
        notes.append("no commit given (--sha): sha tags are left out")

    normalized = str(version)  # once: a Version renders itself anew each time
    specs = []
    for image_name, flavor, python in _cells(loaded, facts, version, pythons, flavors, images):
        image = loaded.config.images[image_name]
        suffix = loaded.config.flavors[flavor].suffix
        targets = _targets(
            version,
            normalized,
            release_kind,
            facts,
            newest,
            commit,
            branch,
            repository=image.repository,
            dev_repository=image.dev_repository,
            python=python,
            suffix=suffix,
        )
        build_args = {"PYTHON_VERSION": python, "PREFECT_VERSION": normalized}
        build_args |= loaded.config.flavors[flavor].build_args
        build_args |= facts.build_args.get(flavor, {})
        contents = facts.contents
        if image.system_packages is not None:
            contents = replace(contents, system_packages=tuple(image.system_packages))
        # The line's default extras, unless the flavor names its own (kubernetes).
        if image.extras and contents.extras and "PREFECT_EXTRAS" not in build_args:
            build_args["PREFECT_EXTRAS"] = contents.extras
        labels = {
            "org.opencontainers.image.version": normalized,
            "org.opencontainers.image.source": image.source,
            "io.prefect.python-version": python,
            "io.prefect.flavor": flavor,
        }
        if commit:
            labels["org.opencontainers.image.revision"] = commit
        repository = image.dev_repository if release_kind is Kind.DEV else image.repository
        specs.append(
            ImageSpec(
                key=f"{image_name}-python{python}{suffix}",
                image=image_name,
                repository=repository,
                flavor=flavor,
                python=python,
                platforms=facts.platforms,
                template=image.template or loaded.config.flavors[flavor].template,
                build_args=build_args,
                labels=labels,
                targets=targets,
                contents=contents,
            )
        )
    _check_unique(specs)
    return Plan(
        version=normalized,
        kind=release_kind,
        commit=commit,
        registry=loaded.config.registry,
        line=facts.versions,
        images=tuple(specs),
        notes=tuple(notes),
        mirrors=facts.mirrors,
        config=loaded.described,
    )


def _commit(version: Version, commit: str | None) -> str | None:
    if commit is None:
        return commit_from_local(version)
    normalized = commit.strip().lower()
    if not _COMMIT_RE.fullmatch(normalized):
        raise PlanError(f"invalid commit {commit!r}: expected 7 to 40 hex characters")
    return normalized


def _cells(
    loaded: LoadedConfig,
    facts: LineFacts,
    version: Version,
    pythons: Sequence[str],
    flavors: Sequence[str],
    images: Sequence[str],
) -> list[tuple[str, str, str]]:
    """(image, flavor, python) of every image the line publishes, after the filters."""
    for name in images:
        if name not in facts.images:
            offered = ", ".join(facts.images)
            raise PlanError(f"{version} publishes no image {name!r} (it has: {offered})")
    for flavor in flavors:
        if flavor not in facts.python:
            raise PlanError(
                f"{version} has no {flavor!r} flavor (it has: {', '.join(facts.python)})"
            )
    cells = []
    for image_name in facts.images:
        if images and image_name not in images:
            continue
        for flavor in loaded.config.images[image_name].flavors:
            if flavor not in facts.python or (flavors and flavor not in flavors):
                continue
            for python in facts.python[flavor]:
                if not pythons or python in pythons:
                    cells.append((image_name, flavor, python))
    missing = [p for p in pythons if not any(cell[2] == p for cell in cells)]
    if missing or not cells:
        # Said of the combination asked for: with --flavor, only those flavors' Pythons.
        shown = [f for f in facts.python if not flavors or f in flavors]
        offered = ", ".join(f"{f}: {' '.join(facts.python[f])}" for f in shown)
        asked = ", ".join(missing or pythons) or "the filters given"
        which = f"{' or '.join(flavors)} image" if flavors else "image"
        raise PlanError(f"{version} has no {which} for Python {asked} ({offered})")
    return cells


def _targets(
    version: Version,
    normalized: str,
    release_kind: Kind,
    facts: LineFacts,
    newest: Newest,
    commit: str | None,
    branch: str | None,
    *,
    repository: str,
    dev_repository: str,
    python: str,
    suffix: str,
) -> tuple[TagTarget, ...]:
    tail = f"-python{python}{suffix}"
    sha = f"sha-{commit[: facts.sha_length]}{tail}" if commit else None
    if commit and len(commit) < facts.sha_length:
        raise PlanError(f"commit {commit!r} is shorter than sha_length {facts.sha_length}")
    full = f"{normalized}{tail}"
    targets: list[tuple[str, str, TagKind]] = []
    if release_kind is Kind.DEV:
        targets.append((dev_repository, sha, TagKind.SHA))
        if branch is not None:
            targets.append((dev_repository, _branch_tag(branch, tail), TagKind.BRANCH))
    elif release_kind is Kind.PRERELEASE:
        targets.append((repository, full, TagKind.FULL))
        if facts.prerelease_dev_tags == "dev-repository":
            targets.append((dev_repository, full, TagKind.FULL))
            if sha:
                targets.append((dev_repository, sha, TagKind.SHA))
        elif facts.prerelease_dev_tags == "release-repository" and sha:
            targets.append((repository, sha, TagKind.SHA))
    else:
        targets.append((repository, full, TagKind.FULL))
        if sha and facts.release_sha_tags:
            targets.append((repository, sha, TagKind.SHA))
        if newest.minor:
            targets.append((repository, f"{version.major}.{version.minor}{tail}", TagKind.MINOR))
        if newest.major:
            targets.append((repository, f"{version.major}{tail}", TagKind.MAJOR))
            if python == facts.latest_python:
                targets.append((repository, f"{version.major}-latest{suffix}", TagKind.LATEST))
    return tuple(TagTarget(repo, validate_tag(tag), tag_kind) for repo, tag, tag_kind in targets)


def _branch_tag(branch: str, tail: str) -> str:
    """The tag of --branch; what is wrong with it is said of the branch the user typed."""
    slug = slugify_tag(branch)
    shown = repr(branch) if len(branch) <= 40 else f"{branch[:40]!r}..."
    if not slug or not (slug[0].isalnum() or slug[0] == "_"):
        raise PlanError(f"--branch {shown}: a branch tag must begin with a letter or digit")
    room = MAX_TAG_LENGTH - len(tail)
    if len(slug) > room:
        raise PlanError(
            f"--branch {shown}: {len(slug)} characters, at most {room} fit in a tag beside '{tail}'"
        )
    return f"{slug}{tail}"


def _check_unique(specs: list[ImageSpec]) -> None:
    """Exactly one image may write each tag: no two build jobs race for it."""
    writers: dict[str, str] = {}
    for spec in specs:
        for target in spec.targets:
            other = writers.setdefault(str(target), spec.key)
            if other != spec.key:
                raise PlanError(f"{target} would be written by both {other} and {spec.key}")
