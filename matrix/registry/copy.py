"""Copies by manifest: retag within a repository, copy across repositories and registries.

Digests never change: manifests are copied as the exact bytes received, never
re-serialized. Content goes first (blobs, then child manifests by digest) and the
tag last, so an interrupted copy leaves no tag naming something incomplete.
Within one registry blobs are mounted, so no layer byte moves; between registries
they are streamed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from matrix.errors import InvalidReference
from matrix.reference import ImageReference
from matrix.registry.client import Manifest, RegistryClient
from matrix.registry.errors import RegistryError
from matrix.registry.manifests import (
    INDEX_TYPES,
    OCI_INDEX,
    Descriptor,
    Platform,
    blobs,
    build_index,
    children,
    parse_manifest,
)


@dataclass(frozen=True, slots=True)
class TagChange:
    """What a retag does to one tag: create it, move it, or leave it."""

    target: ImageReference
    before: str | None
    after: str

    @property
    def action(self) -> str:
        if self.before is None:
            return "created"
        return "unchanged" if self.before == self.after else "moved"

    def __str__(self) -> str:
        if self.action == "created":
            return f"{self.target}: created at {self.after}"
        if self.action == "moved":
            return f"{self.target}: moved from {self.before} to {self.after}"
        return f"{self.target}: unchanged at {self.after}"


def retag(
    client: RegistryClient,
    source: ImageReference,
    targets: Sequence[ImageReference],
    *,
    dry_run: bool = False,
) -> list[TagChange]:
    """Point every target tag at ``source``'s manifest; return what changed (or would).

    The source manifest is read once; a tag in the source's repository then costs
    one PUT, and a new repository first gets the content (mounted blobs, child
    manifests) once, however many of its tags are written.
    """
    targets = _unique_tags(targets)
    manifest = client.get_manifest(source)
    changes = plan_retag(client, manifest.digest, targets)
    if dry_run:
        return changes
    pending = [change for change in changes if change.action != "unchanged"]
    prepared: set[tuple[str, str]] = set()
    for change in pending:
        repository = (change.target.registry, change.target.repository)
        if repository not in prepared:
            copy_content(client, source, change.target, manifest)
            prepared.add(repository)
    client.map(
        lambda change: client.put_manifest(change.target, manifest.content, manifest.media_type),
        pending,
    )
    return changes


def plan_retag(
    client: RegistryClient, digest: str, targets: Sequence[ImageReference]
) -> list[TagChange]:
    """Compare each target tag with ``digest``: one tags list per repository, then a
    HEAD only for the tags that already exist."""
    repositories = sorted({(t.registry, t.repository) for t in targets})
    listed = client.map(
        lambda repository: set(client.list_tags(ImageReference(*repository))), repositories
    )
    tags = dict(zip(repositories, listed, strict=True))
    existing = [t for t in targets if t.tag in tags[(t.registry, t.repository)]]
    heads = dict(zip(existing, client.map(client.head_manifest, existing), strict=True))
    return [
        TagChange(target, head.digest if (head := heads.get(target)) else None, digest)
        for target in targets
    ]


def copy(
    client: RegistryClient,
    source: ImageReference,
    target: ImageReference,
    manifest: Manifest | None = None,
) -> str:
    """Copy ``source`` (an image or an index and its children) to ``target``; its digest."""
    if manifest is None:
        manifest = client.get_manifest(source)
    copy_content(client, source, target, manifest)
    return client.put_manifest(target, manifest.content, manifest.media_type)


def copy_content(
    client: RegistryClient, source: ImageReference, target: ImageReference, manifest: Manifest
) -> None:
    """Put everything ``manifest`` needs into ``target``'s repository, but not the manifest."""
    if (source.registry, source.repository) == (target.registry, target.repository):
        return
    document = parse_manifest(manifest.content)
    if manifest.media_type not in INDEX_TYPES:
        _copy_blobs(client, source, target, blobs(document))
        return
    entries = children(document)
    present = client.map(
        lambda entry: client.head_manifest(target.with_digest(entry.digest)) is not None, entries
    )
    missing = [entry for entry, there in zip(entries, present, strict=True) if not there]
    fetched = client.map(
        lambda entry: client.get_manifest(source.with_digest(entry.digest)), missing
    )
    needed: list[Descriptor] = []
    for child in fetched:
        if child.media_type in INDEX_TYPES:
            copy_content(client, source, target, child)
        else:
            needed += blobs(parse_manifest(child.content))
    _copy_blobs(client, source, target, needed)
    client.map(
        lambda child: client.put_manifest(
            target.with_digest(child.digest), child.content, child.media_type
        ),
        fetched,
    )


def _copy_blobs(
    client: RegistryClient,
    source: ImageReference,
    target: ImageReference,
    descriptors: Iterable[Descriptor],
) -> None:
    digests = list(dict.fromkeys(descriptor.digest for descriptor in descriptors))
    if source.registry == target.registry:

        def transfer(digest: str) -> None:
            if not client.mount_blob(target, digest, source.repository):
                client.copy_blob(source, target, digest)
    else:

        def transfer(digest: str) -> None:
            if not client.blob_exists(target, digest):
                client.copy_blob(source, target, digest)

    client.map(transfer, digests)


def assemble_index(
    client: RegistryClient,
    target: ImageReference,
    entries: Iterable[tuple[str, Platform | str]],
    *,
    annotations: dict[str, str] | None = None,
) -> str:
    """Push an OCI index naming each platform's manifest (already in ``target``'s
    repository) under ``target``, with ``annotations`` on the index; its digest."""
    entries = [
        (digest, platform if isinstance(platform, Platform) else Platform.parse(platform))
        for digest, platform in entries
    ]
    if not entries:
        raise InvalidReference(f"{target}: an index needs at least one platform manifest")
    heads = client.map(lambda entry: client.head_manifest(target.with_digest(entry[0])), entries)
    descriptors = []
    for (digest, platform), head in zip(entries, heads, strict=True):
        if head is None:
            raise RegistryError(
                f"cannot name it for {platform} in an index: it is not in the repository",
                registry=target.registry,
                repository=target.repository,
                reference=digest,
            )
        if head.is_index:
            raise RegistryError(
                f"is an index, not the image of one platform ({platform})",
                registry=target.registry,
                repository=target.repository,
                reference=digest,
            )
        descriptors.append(Descriptor(head.media_type, head.digest, head.size, platform))
    return client.put_manifest(target, build_index(descriptors, annotations), OCI_INDEX)


def _unique_tags(targets: Sequence[ImageReference]) -> list[ImageReference]:
    for target in targets:
        if not target.tag or target.digest:
            raise InvalidReference(f"{target}: a retag target must be a tag, without digest")
    return list(dict.fromkeys(targets))
