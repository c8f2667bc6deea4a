"""The one way matrix writes to a registry: ensure a manifest is at a reference.

``ensure`` looks first (a HEAD per reference, unless the caller already looked) and
writes only what is missing, content before names: the blobs an image needs, then
an index's children by digest, then the manifest under each reference. A rerun
after any interruption therefore finishes the work and writes nothing twice, and
no tag ever names content the repository lacks. Manifests travel as the exact
bytes read, never re-serialized, so digests never change.

Content comes from a `Source`: a repository of a registry (blobs are mounted
within one registry, so no layer byte moves, and streamed between registries) or
an OCI image layout folder (`matrix.registry.layout`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

from matrix.errors import UserError
from matrix.reference import ImageReference
from matrix.registry.client import Manifest, RegistryClient
from matrix.registry.manifests import INDEX_TYPES, blobs, children, parse_manifest
from matrix.stopping import checkpoint


class Overtaken(UserError):
    """A reference changed between the caller's reading and this write: another writer
    got there first. Nothing was written over it."""

    def __init__(self, target: ImageReference, was: str | None, now: str | None) -> None:
        super().__init__(
            f"{target}: another writer got there first (it named {was or 'nothing'} when "
            f"this run read it, now {now or 'nothing'}); stopped without writing over it, "
            "a rerun decides afresh"
        )
        self.target, self.was, self.now = target, was, now


class Source(Protocol):
    """Where the content of a manifest can be read from."""

    def manifest(self, client: RegistryClient, digest: str | None = None) -> Manifest:
        """The manifest ``digest`` (by default the source's own), as its exact bytes."""
        ...

    def holds(self, target: ImageReference) -> bool:
        """Whether ``target``'s repository is the source itself (it has all the content)."""
        ...

    def bring_blob(self, client: RegistryClient, target: ImageReference, digest: str) -> None:
        """Make the blob ``digest`` part of ``target``'s repository, if it is not yet."""
        ...


@dataclass(frozen=True, slots=True)
class RegistrySource:
    """A reference in a registry (a tag or a digest) and the repository it is in."""

    ref: ImageReference

    def manifest(self, client: RegistryClient, digest: str | None = None) -> Manifest:
        return client.get_manifest(self.ref.with_digest(digest) if digest else self.ref)

    def holds(self, target: ImageReference) -> bool:
        return (target.registry, target.repository) == (self.ref.registry, self.ref.repository)

    def bring_blob(self, client: RegistryClient, target: ImageReference, digest: str) -> None:
        # A mount answers "already there" and "linked" alike, so it needs no HEAD first.
        if target.registry == self.ref.registry:
            if not client.mount_blob(target, digest, self.ref.repository):
                client.copy_blob(self.ref, target, digest)
        elif not client.blob_exists(target, digest):
            client.copy_blob(self.ref, target, digest)


def ensure(
    client: RegistryClient,
    source: Source,
    targets: Iterable[ImageReference],
    manifest: Manifest | None = None,
    *,
    current: Mapping[ImageReference, str | None] | None = None,
    expected: Mapping[ImageReference, str | None] | None = None,
    written: Callable[[ImageReference], None] | None = None,
) -> str:
    """Make every reference of ``targets`` name ``manifest`` (by default the source's
    own); its digest.

    ``current`` is what the caller already saw at some targets (the digest there, or
    None for nothing): those are not looked at again. The content goes to each
    target repository once, however many of its references are written. ``written``
    hears of each reference as soon as it names the manifest, so a run that fails
    half-way knows which it wrote.

    ``expected`` is what the caller saw at some targets when it decided: those are
    looked at again right before the write, and one that names anything else now (nor
    the manifest) raises `Overtaken` before anything is written. Registries have no
    conditional write, so this narrows the race between two writers to the time
    between a HEAD and its PUT.
    """
    if manifest is None:
        manifest = source.manifest(client)
    targets = list(dict.fromkeys(targets))
    recheck = dict(expected or {})
    seen = {t: d for t, d in (current or {}).items() if t not in recheck}
    unseen = [target for target in targets if target not in seen]
    for target, head in zip(unseen, client.map(client.head_manifest, unseen), strict=True):
        seen[target] = head.digest if head else None
    for target in targets:
        if target in recheck and seen[target] not in (recheck[target], manifest.digest):
            raise Overtaken(target, recheck[target], seen[target])
    pending = [target for target in targets if seen[target] != manifest.digest]
    first_of_repository: dict[tuple[str, str], ImageReference] = {}
    for target in pending:
        first_of_repository.setdefault((target.registry, target.repository), target)
    for target in first_of_repository.values():
        ensure_content(client, source, target, manifest)

    def put(target: ImageReference) -> None:
        checkpoint()  # a cancelled run stops between writes, never inside one
        client.put_manifest(target, manifest.content, manifest.media_type)
        if written is not None:
            written(target)

    client.map(put, pending)
    return manifest.digest


def ensure_content(
    client: RegistryClient, source: Source, target: ImageReference, manifest: Manifest
) -> None:
    """Put everything ``manifest`` needs into ``target``'s repository, but not the
    manifest itself: an image's blobs, or an index's children (and theirs)."""
    if source.holds(target):
        return
    document = parse_manifest(manifest.content)
    if manifest.media_type in INDEX_TYPES:
        digests = [entry.digest for entry in children(document)]
        client.map(lambda digest: _ensure_child(client, source, target, digest), digests)
    else:
        digests = list(dict.fromkeys(blob.digest for blob in blobs(document)))
        client.map(lambda digest: source.bring_blob(client, target, digest), digests)


def _ensure_child(
    client: RegistryClient, source: Source, target: ImageReference, digest: str
) -> None:
    at = target.with_digest(digest)
    if client.head_manifest(at) is not None:
        return
    child = source.manifest(client, digest)
    ensure_content(client, source, at, child)
    checkpoint()
    client.put_manifest(at, child.content, child.media_type)
