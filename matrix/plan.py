"""The plan: every image of a release and every tag it must carry.

``plan_release`` is a pure function of versions.toml, the version, the commit, the
releases already known and, when a command reads the package index, what the index
says of the release. Everything downstream (render, build, publish, verify) works
from its ``ImageSpec`` keys, the one identifier passed between stages.

No plan offers an image that cannot install: each image's Pythons are bounded by its
distribution's Requires-Python, and an image whose distribution the release lacks is
left out. Those facts come from the index when the command has one, else from
versions.toml; when both speak and disagree, versions.toml is wrong for the release,
and the plan stops with the fix.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import TYPE_CHECKING

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from matrix.config import Contents, LineFacts, LoadedConfig
from matrix.errors import PlanError
from matrix.tags import MAX_TAG_LENGTH, slugify_tag, validate_tag
from matrix.versions import Kind, commit_from_local, kind, newer_finals, parse_version

if TYPE_CHECKING:
    from matrix.index import IndexFacts

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
    index: IndexFacts | None = None,
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
    if not facts.span.written_for(version):
        notes.append(
            f"line {facts.versions} of versions.toml is open-ended: {version} is planned "
            f"with the newest {version.major}.x facts"
        )
    # A dev build is no release of the index: its facts are versions.toml's.
    offered = _installable(
        loaded, facts, version, index if release_kind is not Kind.DEV else None, notes
    )
    if commit is None and release_kind is Kind.FINAL and facts.release_sha_tags:
        notes.append("no commit given (--sha): sha tags are left out")

    normalized = str(version)  # once: a Version renders itself anew each time
    specs = []
    for image_name, flavor, python in _cells(
        loaded, facts, offered, version, pythons, flavors, images
    ):
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


Offered = dict[str, dict[str, tuple[str, ...]]]  # image -> flavor -> Pythons


def _installable(
    loaded: LoadedConfig,
    facts: LineFacts,
    version: Version,
    index: IndexFacts | None,
    notes: list[str],
) -> Offered:
    """The images of the line that can install ``version``, each with the Pythons its
    distribution's Requires-Python allows; what is left out is said in ``notes``."""
    offered: Offered = {}
    main = loaded.config.images[facts.images[0]].package
    if index is not None and main and not index.of(main).present:
        # Not uploaded yet, or never (a yanked release): the index is silent on the
        # release, and versions.toml says what Prefect's pipeline published of it.
        notes.append(
            f"{main} {version} is not on the package index {index.shown}: its images are "
            "planned from versions.toml"
        )
        index = None
    for name in facts.images:
        image = loaded.config.images[name]
        package = image.package or name
        said = index.of(package) if index is not None and image.package else None
        listed = {f: facts.python[f] for f in image.flavors if f in facts.python}
        if said is not None and not said.present:
            notes.append(
                f"no {name} image: the package index {index.shown} has no {package} {version}"
            )
            continue
        if said is None and any(parse_version(v) == version for v in image.not_on_index):
            notes.append(
                f"no {name} image: versions.toml says the package index has no {package} {version}"
            )
            continue
        bound = facts.requires_python
        if said is not None and said.requires_python is not None:
            _agree(loaded, facts, version, package, said.requires_python, listed, index.shown)
            bound = said.requires_python
        if bound is not None:
            kept = {f: tuple(p for p in ps if _installs(bound, p)) for f, ps in listed.items()}
            dropped = sorted(
                {p for f, ps in listed.items() for p in ps if p not in kept[f]}, key=_minor
            )
            if dropped:
                notes.append(
                    f"no {name} image for Python {', '.join(dropped)}: {package} {version} "
                    f"requires Python {_spelled(bound)}"
                )
            listed = {f: ps for f, ps in kept.items() if ps}
        offered[name] = listed
    return offered


def _agree(
    loaded: LoadedConfig,
    facts: LineFacts,
    version: Version,
    package: str,
    declared: SpecifierSet,
    listed: dict[str, tuple[str, ...]],
    index: str,
) -> None:
    """The index's Requires-Python must keep the Pythons versions.toml's would: else the
    file is wrong for this release, and planning on would build what it does not say."""
    every = {p for ps in listed.values() for p in ps}
    recorded = facts.requires_python
    by_index = {p for p in every if _installs(declared, p)}
    by_file = {p for p in every if recorded is None or _installs(recorded, p)}
    if by_index == by_file:
        return
    extra = sorted(by_file - by_index, key=_minor)
    lacking = sorted(by_index - by_file, key=_minor)
    differs = (
        f"would build Python {', '.join(extra)}"
        if extra
        else f"leaves out Python {', '.join(lacking)}"
    )
    records = (
        f"requires_python {_spelled(recorded)!r}" if recorded is not None else "no requires_python"
    )
    raise PlanError(
        f"{package} {version} requires Python {_spelled(declared)!r} on the package index "
        f"{index}, but versions.toml's line {facts.versions} ({records}) {differs}: give "
        f'{version} a [[lines]] entry with requires_python = "{_spelled(declared)}" in '
        f"{loaded.source}"
    )


def _spelled(requires: SpecifierSet) -> str:
    """``>=3.11,<3.16`` rather than packaging's ``<3.16,>=3.11``: lower bounds first."""
    return ",".join(sorted((str(s) for s in requires), key=lambda s: (not s.startswith(">"), s)))


def _installs(requires: SpecifierSet, python: str) -> bool:
    """Whether an interpreter of minor ``python`` (any patch) satisfies ``requires``."""
    return requires.contains(f"{python}.99", prereleases=True) or requires.contains(
        f"{python}.0", prereleases=True
    )


def _minor(python: str) -> tuple[int, ...]:
    return tuple(int(part) for part in python.split("."))


def _cells(
    loaded: LoadedConfig,
    facts: LineFacts,
    offered: Offered,
    version: Version,
    pythons: Sequence[str],
    flavors: Sequence[str],
    images: Sequence[str],
) -> list[tuple[str, str, str]]:
    """(image, flavor, python) of every image the line publishes and the release can
    install, after the filters."""
    for name in images:
        if name not in offered:
            has = ", ".join(offered) or "none"
            raise PlanError(f"{version} publishes no image {name!r} (it has: {has})")
    for flavor in flavors:
        if flavor not in facts.python:
            raise PlanError(
                f"{version} has no {flavor!r} flavor (it has: {', '.join(facts.python)})"
            )
    cells = []
    for image_name, by_flavor in offered.items():
        if images and image_name not in images:
            continue
        for flavor, flavor_pythons in by_flavor.items():
            if flavors and flavor not in flavors:
                continue
            for python in flavor_pythons:
                if not pythons or python in pythons:
                    cells.append((image_name, flavor, python))
    missing = [p for p in pythons if not any(cell[2] == p for cell in cells)]
    if missing or not cells:
        # Said of the combination asked for: with --flavor, only those flavors' Pythons.
        most = max(offered.values(), key=len, default={})
        shown = [f for f in most if not flavors or f in flavors]
        offered_text = ", ".join(f"{f}: {' '.join(most[f])}" for f in shown)
        asked = ", ".join(missing or pythons) or "the filters given"
        which = f"{' or '.join(flavors)} image" if flavors else "image"
        raise PlanError(f"{version} has no {which} for Python {asked} ({offered_text})")
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
