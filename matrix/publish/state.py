"""What the registry holds for a plan, read with manifest HEADs and GETs only.

No layer or config blob is ever read: an image's version and revision come from
the annotations matrix writes on every index it assembles, and its platforms from
the index itself. A pull needs each platform's own manifest too, which a registry's
clean-up of untagged manifests may have deleted under an index: one HEAD per
platform finds out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from packaging.version import Version

from matrix.errors import VersionError
from matrix.plan import ImageSpec, Plan, TagTarget
from matrix.platform import Platform
from matrix.publish.annotations import REVISION_ANNOTATION, VERSION_ANNOTATION
from matrix.reference import ImageReference
from matrix.registry.manifests import is_attestation
from matrix.versions import parse_version

if TYPE_CHECKING:
    from matrix.config import LoadedConfig
    from matrix.settings import ReleaseSelection


_INDEX_TYPES = frozenset(
    {
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    }
)


@dataclass(frozen=True)
class RemoteImage:
    """The content under an image's full tag."""

    digest: str
    platforms: frozenset[str]
    annotations: Mapping[str, str] = field(default_factory=dict)
    # The manifest's exact bytes: promote writes them to the other tags unchanged.
    content: bytes = field(default=b"", repr=False)
    media_type: str = ""
    # platform -> the digest of its manifest, as the index names it
    children: Mapping[str, str] = field(default_factory=dict)
    # The platforms whose manifest the registry no longer holds (checked on reading).
    missing: frozenset[str] = frozenset()

    @property
    def version(self) -> str | None:
        return self.annotations.get(VERSION_ANNOTATION)

    @property
    def revision(self) -> str | None:
        return self.annotations.get(REVISION_ANNOTATION)


@dataclass
class ReleaseState:
    """Per image key its full tag's content; per other tag the digest it names."""

    images: dict[str, RemoteImage | None]
    tags: dict[TagTarget, str | None]


def reference(registry: str, target: TagTarget) -> ImageReference:
    return ImageReference(registry, target.repository, target.tag)


def describe_image(content: bytes, media_type: str, digest: str) -> RemoteImage:
    """Platforms and annotations of a manifest; a plain image manifest has no platform list."""
    document = json.loads(content)
    if media_type not in _INDEX_TYPES:
        annotations = document.get("annotations") or {}
        return RemoteImage(digest, frozenset(), annotations, content, media_type)
    entries = document.get("manifests") or []
    children = {
        str(Platform.from_json(entry["platform"])): entry["digest"]
        for entry in entries
        if entry.get("platform") and entry.get("digest") and not is_attestation(entry)
    }
    platforms = frozenset(children)
    annotations = _annotations(document, [e for e in entries if not is_attestation(e)])
    return RemoteImage(digest, platforms, annotations, content, media_type, children)


def _annotations(index: Mapping, entries: list[Mapping]) -> dict[str, str]:
    """The index's own annotations, else those every entry carries alike.

    matrix writes them on the index when it assembles one; podman can only
    annotate the entries of the list it pushes.
    """
    if index.get("annotations"):
        return dict(index["annotations"])
    shared = [dict(entry.get("annotations") or {}) for entry in entries]
    if not shared:
        return {}
    return {k: v for k, v in shared[0].items() if all(e.get(k) == v for e in shared[1:])}


def read_image(client, ref: ImageReference) -> RemoteImage:
    """The manifest under ``ref`` (a tag or a digest), described: one GET, no blob."""
    manifest = client.get_manifest(ref)
    return describe_image(manifest.content, manifest.media_type, manifest.digest)


def read_images(
    client, plan: Plan, registry: str, at: Mapping[str, str] | None = None
) -> dict[str, RemoteImage | None]:
    """Every image's full tag, or the digest ``at`` names for its key (an image still
    to go under its full tag): one GET each (a 404 is simply absent), and one HEAD per
    platform manifest its index names."""
    from matrix.registry import RegistryError

    at = at or {}

    def full_image(spec: ImageSpec) -> RemoteImage | None:
        ref = reference(registry, spec.full_target)
        if spec.key in at:
            ref = ref.with_digest(at[spec.key])
        try:
            image = read_image(client, ref)
        except RegistryError as error:
            if error.status == 404:
                return None
            raise
        return with_missing_children(client, ref, image)

    images = client.map(full_image, plan.images)
    return dict(zip((spec.key for spec in plan.images), images, strict=True))


def with_missing_children(client, ref: ImageReference, image: RemoteImage) -> RemoteImage:
    """``image`` with the platforms whose manifest ``ref``'s repository lacks."""
    missing = frozenset(
        platform
        for platform, digest in image.children.items()
        if client.head_manifest(ref.with_digest(digest)) is None
    )
    return replace(image, missing=missing) if missing else image


def read_state(client, plan: Plan, registry: str) -> ReleaseState:
    """One GET per image (its full tag) and a HEAD per platform it names, and one HEAD
    per other planned tag."""

    def digest_of(target: TagTarget) -> str | None:
        head = client.head_manifest(reference(registry, target))
        return head.digest if head else None

    others = [t for spec in plan.images for t in spec.targets if t != spec.full_target]
    tags = dict(zip(others, client.map(digest_of, others), strict=True))
    return ReleaseState(read_images(client, plan, registry), tags)


def releases_of(client, registry: str, changes) -> dict[str, str]:
    """digest -> the release version its index is annotated with, for the tags a change
    moves away from (one GET per distinct digest; unannotated ones are left out)."""
    wanted = {(c.target.repository, c.current) for c in changes if c.current}

    def version(item: tuple[str, str]) -> str | None:
        repository, digest = item
        return read_image(client, ImageReference(registry, repository, None, digest)).version

    found = client.map(version, sorted(wanted))
    return {digest: v for (_, digest), v in zip(sorted(wanted), found, strict=True) if v}


def known_releases(tag_lists: Iterable[Iterable[str]]) -> list[Version]:
    """Release versions named by full tags (``2.11.5-python3.10[-conda]``) in tag lists.

    Floating tags (``2.11-python3.10``), sha tags and foreign tags do not parse as a
    three-number version and are passed over.
    """
    found: set[Version] = set()
    for tags in tag_lists:
        for tag in tags:
            version_text, marker, _ = tag.partition("-python")
            if not marker:
                continue
            try:
                found.add(parse_version(version_text))
            except VersionError:
                continue
    return sorted(found)


# (registry, repository) -> its tags, as a run listed them: read once, used by all.
TagLists = dict[tuple[str, str], list[str]]


def releases_on(
    client, registry: str, repositories: Iterable[str], listed: TagLists | None = None
) -> list[Version]:
    """The releases the full tags in ``repositories`` of ``registry`` name; each tag
    list read goes into ``listed``, for the rest of the run."""
    repositories = list(repositories)
    tag_lists = client.map(lambda r: client.list_tags(ImageReference(registry, r)), repositories)
    if listed is not None:
        for repository, tags in zip(repositories, tag_lists, strict=True):
            listed[(registry, repository)] = tags
    return known_releases(tag_lists)


def plan_on_registry(
    client,
    loaded: LoadedConfig,
    selection: ReleaseSelection,
    registry: str,
    listed: TagLists | None = None,
) -> Plan:
    """The selected release planned with ``loaded``. Unless the command line settled
    "newest in line", the known releases are the full tags in the release repositories
    of ``registry`` (their lists go into ``listed``), and a note says so."""
    plan = selection.plan(loaded)
    if selection.knows_newest:
        return plan
    repositories = sorted({spec.repository for spec in plan.images})
    plan = selection.plan(loaded, known=releases_on(client, registry, repositories, listed))
    note = f"known releases read from the tags of {', '.join(repositories)} on {registry}"
    return replace(plan, notes=(*plan.notes, note))
