"""Push an image from an OCI image layout (a folder) to a registry by digest alone.

This is push-by-digest for engines that cannot do it themselves (podman pushes
only to tags): the engine writes the image to a layout folder, and its blobs and
manifest go to the registry with no tag, named by their digests. Blobs the
repository already holds are not sent again.
"""

from __future__ import annotations

import json
from pathlib import Path

from matrix.errors import UserError
from matrix.reference import ImageReference
from matrix.registry.client import RegistryClient
from matrix.registry.manifests import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    Descriptor,
    blobs,
    digest_matches,
    parse_manifest,
)


def push_layout(client: RegistryClient, layout: Path, repository: ImageReference) -> Descriptor:
    """Push the one image manifest of ``layout`` into ``repository``; its descriptor."""
    manifest_path, descriptor = _only_manifest(layout)
    content = manifest_path.read_bytes()
    if not digest_matches(content, descriptor.digest):
        raise UserError(f"{manifest_path}: does not match its digest {descriptor.digest}")
    needed = [d.digest for d in blobs(parse_manifest(content))]

    def send(digest: str) -> None:
        if not client.blob_exists(repository, digest):
            client.upload_blob_file(repository, _blob_path(layout, digest), digest)

    client.map(send, list(dict.fromkeys(needed)))
    client.put_manifest(repository.with_digest(descriptor.digest), content, descriptor.media_type)
    return descriptor


def image_platform(layout: Path) -> str:
    """os/arch[/variant] of the layout's image, from its config (a local file)."""
    manifest_path, _ = _only_manifest(layout)
    config = parse_manifest(manifest_path.read_bytes())["config"]
    platform = json.loads(_blob_path(layout, config["digest"]).read_bytes())
    parts = (platform.get("os"), platform.get("architecture"), platform.get("variant"))
    return "/".join(part for part in parts if part)


def _only_manifest(layout: Path) -> tuple[Path, Descriptor]:
    try:
        index = json.loads((layout / "index.json").read_text(encoding="utf-8"))
        entries = [Descriptor.from_json(entry) for entry in index["manifests"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(f"{layout}: not an OCI image layout ({error})") from None
    if len(entries) != 1:
        raise UserError(f"{layout}: expected one image, found {len(entries)}")
    (entry,) = entries
    if entry.media_type in INDEX_TYPES or entry.media_type not in MANIFEST_TYPES:
        raise UserError(f"{layout}: expected one image manifest, found {entry.media_type!r}")
    return _blob_path(layout, entry.digest), entry


def _blob_path(layout: Path, digest: str) -> Path:
    algorithm, _, hex_digest = digest.partition(":")
    return layout / "blobs" / algorithm / hex_digest
