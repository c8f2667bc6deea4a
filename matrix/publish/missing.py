"""What the catch-up publishes: releases the package index has and the registry lacks
or holds incomplete.

A release whose first publish lost the race with its upload to the index, or died
halfway, is found here and published again (publish is idempotent). Cheap on
purpose, as a schedule runs it: one index read, one tag list per repository, and a
HEAD per tag of the releases whose full tags are all there (HEADs do not count
against Docker Hub's pull limit); what a pull needs is `verify`'s job, which every
publish runs.

A new line is noticed, not guessed: a final release that no [[lines]] entry was
written for (a minor after the one the open-ended newest line begins in, a new
major), or whose Requires-Python the index says otherwise than versions.toml, is
reported as needing a line in versions.toml and is not listed for publishing. Its
pre-releases are left out too, without a word: the final says it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from packaging.version import Version

from matrix.config import LoadedConfig
from matrix.errors import PlanError
from matrix.index import (
    Index,
    IndexFacts,
    first_uploads,
    package_release,
    packages_of,
    project_files,
)
from matrix.plan import Plan, TagKind, TagTarget, plan_release
from matrix.publish.holds import Holds, holdable, read_holds
from matrix.publish.state import known_releases, reference
from matrix.reference import ImageReference
from matrix.registry import RegistryClient
from matrix.versions import Kind, kind


@dataclass(frozen=True)
class MissingRelease:
    version: str
    uploaded: datetime | None
    state: str  # "missing": no full tag is there; "incomplete": some tag is absent or stale
    lacking: tuple[str, ...]  # the references that are absent or name another image

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "state": self.state,
            "uploaded": self.uploaded.isoformat() if self.uploaded else None,
            "lacking": list(self.lacking),
        }


@dataclass(frozen=True)
class NeedsLine:
    """A final release versions.toml has no facts for: nothing is published of it."""

    version: str
    uploaded: datetime | None
    reason: str

    def to_json(self) -> dict:
        return {
            "version": self.version,
            "uploaded": self.uploaded.isoformat() if self.uploaded else None,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Missing:
    releases: list[MissingRelease]  # what the catch-up publishes
    needs_line: list[NeedsLine]  # what waits for a new [[lines]] entry


def missing_releases(
    client: RegistryClient,
    loaded: LoadedConfig,
    index: Index,
    registry: str,
    *,
    since: datetime,
    project: str = "prefect",
) -> Missing:
    """The releases of ``project`` uploaded since ``since`` that versions.toml has facts
    for and ``registry`` lacks or holds incomplete, oldest first, and the final ones it
    has none for. Sha tags are left out (the commit is the caller's to find); floating
    tags are judged against every release the index or the registry knows, so a
    release that is no longer newest moves none."""
    files = {name: project_files(index, name) for name in {project, *packages_of(loaded)}}
    uploaded = first_uploads(files[project])
    recent = sorted(
        version
        for version, when in uploaded.items()
        if not version.local and (when is None or when >= since)
    )
    plans: dict[Version, Plan] = {}
    needs_line = []
    known: Registered | None = None
    for version in recent:
        reason = _unwritten(loaded, version)
        if reason is None:
            facts = IndexFacts(
                index.shown, {name: package_release(f, version) for name, f in files.items()}
            )
            if known is None:
                known = _known(client, loaded, registry, uploaded)
            try:
                plans[version] = plan_release(
                    loaded, str(version), known=known.releases, index=facts
                )
                continue
            except PlanError as error:
                reason = str(error)
        if kind(version) is Kind.FINAL:
            needs_line.append(NeedsLine(str(version), uploaded[version], reason))
    found = []
    for version, plan in plans.items():
        assert known is not None  # read before the first plan
        lacking = _lacking(client, plan, registry, known.tags, known.holds)
        if lacking:
            full = [t for t in plan.targets if t.kind is TagKind.FULL]
            absent = all(str(reference(registry, t)) in lacking for t in full)
            state = "missing" if absent else "incomplete"
            found.append(MissingRelease(plan.version, uploaded[version], state, lacking))
    return Missing(found, needs_line)


def _unwritten(loaded: LoadedConfig, version: Version) -> str | None:
    """Why versions.toml has no facts for ``version``, or None when it has."""
    try:
        facts = loaded.facts_for(version)
    except PlanError as error:
        return f"{error}: write a [[lines]] entry for it"
    if facts.span.written_for(version):
        return None
    low = facts.span.low
    return (
        f"only the open-ended line {facts.versions} of {loaded.source} covers it, written for "
        f"{low.major}.{low.minor}: write a [[lines]] entry for {version.major}.{version.minor}"
    )


class Registered(NamedTuple):
    """What the registry says, read once per catch-up."""

    releases: list[Version]  # every release the index or the registry knows
    tags: dict[str, set[str]]  # repository -> its tags
    holds: dict[str, Holds]  # repository -> the floating tags a rollback holds


def _known(
    client: RegistryClient, loaded: LoadedConfig, registry: str, uploaded: Iterable[Version]
) -> Registered:
    """Every release the index or the registry knows, the tags of each repository an
    image of versions.toml may tag (dev repositories included), and their holds."""
    images = loaded.config.images.values()
    repositories = sorted({r for i in images for r in (i.repository, i.dev_repository)})
    tag_lists = client.map(
        lambda repository: client.list_tags(ImageReference(registry, repository)), repositories
    )
    tags = dict(zip(repositories, map(set, tag_lists), strict=True))
    # A floating tag a rollback holds was moved on purpose: it lacks nothing.
    holds = {
        repository: read_holds(client, registry, repository, tags[repository])
        for repository in repositories
    }
    return Registered(sorted({*known_releases(tag_lists), *uploaded}), tags, holds)


def _lacking(
    client: RegistryClient,
    plan: Plan,
    registry: str,
    tags: dict[str, set[str]],
    holds: dict[str, Holds],
) -> tuple[str, ...]:
    """References of ``plan`` the registry lacks, or whose tag names another image than
    the full tag of the same image; floating tags a rollback holds are not judged."""

    def held(target: TagTarget) -> bool:
        hold = holds.get(target.repository, {}).get(target.tag)
        return holdable(target) and hold is not None and hold.keeps(plan.version)

    lacking: list[str] = []
    for spec in plan.images:
        targets = [t for t in spec.targets if t.kind is not TagKind.SHA and not held(t)]
        absent = [t for t in targets if t.tag not in tags.get(t.repository, set())]
        lacking += [str(reference(registry, t)) for t in absent]
        if absent:
            continue
        heads = client.map(lambda t: client.head_manifest(reference(registry, t)), targets)
        named = {t: head.digest if head else None for t, head in zip(targets, heads, strict=True)}
        image = named[spec.full_target]
        lacking += [str(reference(registry, t)) for t, digest in named.items() if digest != image]
    return tuple(lacking)
