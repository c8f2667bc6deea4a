"""An OCI image layout (a folder) as a source for `matrix.registry.ensure`.

This is push-by-digest for engines that cannot do it themselves (podman pushes
only to tags): the engine writes the image to a layout folder, and its blobs and
manifest go to the registry with no tag, named by their digests. What the
repository already holds is not sent again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from matrix.errors import UserError
from matrix.platform import Platform
from matrix.reference import ImageReference
from matrix.registry.answers import BadAnswer
from matrix.registry.client import Manifest, RegistryClient
from matrix.registry.ensure import ensure
from matrix.registry.manifests import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    Descriptor,
    digest_matches,
    parse_manifest,
    validate_manifest,
)


@dataclass(frozen=True, slots=True)
class LayoutSource:
    """The one image manifest of a layout folder, and the blobs beside it."""

    path: Path

    def manifest(self, client: RegistryClient, digest: str | None = None) -> Manifest:
        manifest_path, descriptor = _only_manifest(self.path)
        if digest is not None and digest != descriptor.digest:
            raise UserError(f"{self.path}: holds no manifest {digest}")
        content = manifest_path.read_bytes()
        if not digest_matches(content, descriptor.digest):
            raise UserError(f"{manifest_path}: does not match its digest {descriptor.digest}")
        try:
            validate_manifest(content, descriptor.media_type)
        except BadAnswer as error:
            raise UserError(f"{manifest_path}: not an image manifest: {error}") from None
        return Manifest(content, descriptor.media_type, descriptor.digest)

    def holds(self, target: ImageReference) -> bool:
        return False

    def bring_blob(self, client: RegistryClient, target: ImageReference, digest: str) -> None:
        if not client.blob_exists(target, digest):
            client.upload_blob_file(target, _blob_path(self.path, digest), digest)


def push_layout(client: RegistryClient, layout: Path, repository: ImageReference) -> Descriptor:
    """Push the one image manifest of ``layout`` into ``repository``; its descriptor."""
    source = LayoutSource(layout)
    manifest = source.manifest(client)
    ensure(client, source, [repository.with_digest(manifest.digest)], manifest)
    return Descriptor(manifest.media_type, manifest.digest, len(manifest.content))


def image_platform(layout: Path) -> str:
    """os/arch[/variant] of the layout's image, from its config (a local file)."""
    manifest_path, _ = _only_manifest(layout)
    config = parse_manifest(manifest_path.read_bytes())["config"]
    image_config = json.loads(_blob_path(layout, config["digest"]).read_bytes())
    return str(Platform.from_json(image_config))


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
