"""What the catch-up publishes: releases the package index has and the registry lacks
or holds incomplete.

A release whose first publish lost the race with its upload to the index, or died
halfway, is found here and published again (publish is idempotent). Cheap on
purpose, as a schedule runs it: one index read, one tag list per repository, and a
HEAD per tag of the releases whose full tags are all there (HEADs do not count
against Docker Hub's pull limit); what a pull needs is `verify`'s job, which every
publish runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from matrix.config import LoadedConfig
from matrix.index import Index, releases_uploaded
from matrix.plan import Plan, TagKind, TagTarget, plan_release
from matrix.publish.holds import Holds, holdable, read_holds
from matrix.publish.state import known_releases, reference
from matrix.reference import ImageReference
from matrix.registry import RegistryClient


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


def missing_releases(
    client: RegistryClient,
    loaded: LoadedConfig,
    index: Index,
    registry: str,
    *,
    since: datetime,
    project: str = "prefect",
) -> list[MissingRelease]:
    """The releases of ``project`` uploaded since ``since`` that versions.toml covers and
    ``registry`` lacks or holds incomplete, oldest first. Sha tags are left out (the
    commit is the caller's to find); floating tags are judged against every release the
    index or the registry knows, so a release that is no longer newest moves none."""
    uploaded = releases_uploaded(index, project)
    recent = sorted(
        version
        for version, when in uploaded.items()
        if not version.local and loaded.covers(version) and (when is None or when >= since)
    )
    if not recent:
        return []
    # Every repository an image of versions.toml may tag, dev repositories included.
    images = loaded.config.images.values()
    repositories = sorted({r for i in images for r in (i.repository, i.dev_repository)})
    tag_lists = client.map(
        lambda repository: client.list_tags(ImageReference(registry, repository)), repositories
    )
    tags = dict(zip(repositories, map(set, tag_lists), strict=True))
    known = sorted({*known_releases(tag_lists), *uploaded})
    # A floating tag a rollback holds was moved on purpose: it lacks nothing.
    holds = {
        repository: read_holds(client, registry, repository, tags[repository])
        for repository in repositories
    }
    found = []
    for version in recent:
        plan = plan_release(loaded, str(version), known=known)
        lacking = _lacking(client, plan, registry, tags, holds)
        if lacking:
            full = [t for t in plan.targets if t.kind is TagKind.FULL]
            absent = all(str(reference(registry, t)) in lacking for t in full)
            state = "missing" if absent else "incomplete"
            found.append(MissingRelease(plan.version, uploaded[version], state, lacking))
    return found


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
