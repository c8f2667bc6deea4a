"""Retag within a repository, copy across repositories and registries, assemble an
index: each is `matrix.registry.ensure` with its own source and targets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from matrix.errors import InvalidReference
from matrix.reference import ImageReference
from matrix.registry.client import Manifest, RegistryClient
from matrix.registry.ensure import RegistrySource, ensure, ensure_content
from matrix.registry.errors import RegistryError
from matrix.registry.manifests import (
    OCI_INDEX,
    REFERENCE_DIGEST,
    Descriptor,
    Platform,
    build_index,
    children,
    parse_manifest,
    platform_children,
    sha256_digest,
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
    current = {change.target: change.before for change in changes}
    ensure(client, RegistrySource(source), targets, manifest, current=current)
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
    *,
    expected: Mapping[ImageReference, str | None] | None = None,
) -> str:
    """Copy ``source`` (an image or an index and its children) to ``target``; its digest.
    ``expected``: as for `ensure`."""
    return ensure(client, RegistrySource(source), [target], manifest, expected=expected)


def copy_content(
    client: RegistryClient, source: ImageReference, target: ImageReference, manifest: Manifest
) -> None:
    """Put everything ``manifest`` needs into ``target``'s repository, but not the manifest."""
    ensure_content(client, RegistrySource(source), target, manifest)


def assemble_index(
    client: RegistryClient,
    target: ImageReference,
    entries: Iterable[tuple[str, Platform | str]],
    *,
    annotations: dict[str, str] | None = None,
    expected: Mapping[ImageReference, str | None] | None = None,
    untagged: bool = False,
) -> str:
    """Push an OCI index naming each platform's manifest (already in ``target``'s
    repository) under ``target``, with ``annotations`` on the index; its digest.
    ``expected``: as for `ensure`. ``untagged``: pushed by its digest alone, in
    ``target``'s repository, for a tag to name once it is verified."""
    entries = [
        (digest, platform if isinstance(platform, Platform) else Platform.parse(platform))
        for digest, platform in entries
    ]
    if not entries:
        raise InvalidReference(f"{target}: an index needs at least one platform manifest")
    heads = client.map(lambda entry: client.head_manifest(target.with_digest(entry[0])), entries)
    descriptors: list[Descriptor] = []
    for (digest, platform), head in zip(entries, heads, strict=True):
        if head is None:
            raise RegistryError(
                f"cannot name it for {platform} in an index: it is not in the repository",
                registry=target.registry,
                repository=target.repository,
                reference=digest,
            )
        if head.is_index:
            descriptors += _platform_with_attestations(client, target, digest, platform)
        else:
            descriptors.append(Descriptor(head.media_type, head.digest, head.size, platform))
    index = build_index(descriptors, annotations)
    manifest = Manifest(index, OCI_INDEX, sha256_digest(index))
    if untagged:
        target = target.with_digest(manifest.digest)
    return ensure(client, RegistrySource(target), [target], manifest, expected=expected)


def _platform_with_attestations(
    client: RegistryClient, target: ImageReference, digest: str, platform: Platform
) -> list[Descriptor]:
    """A one-platform build pushed as an index (buildx with attestations): its image,
    then the attestation manifests that name it, as they go into the merged index."""
    index = parse_manifest(client.get_manifest(target.with_digest(digest)).content)
    images = platform_children(index)
    if len(images) != 1:
        raise RegistryError(
            f"is an index of {len(images)} images, not the image of one platform ({platform})",
            registry=target.registry,
            repository=target.repository,
            reference=digest,
        )
    (image,) = images
    image = Descriptor(image.media_type, image.digest, image.size, platform, image.annotations)
    attestations = [
        entry
        for entry in children(index)
        if entry.is_attestation and entry.annotations.get(REFERENCE_DIGEST) == image.digest
    ]
    return [image, *attestations]


def _unique_tags(targets: Sequence[ImageReference]) -> list[ImageReference]:
    for target in targets:
        if not target.tag or target.digest:
            raise InvalidReference(f"{target}: a retag target must be a tag, without digest")
    return list(dict.fromkeys(targets))
