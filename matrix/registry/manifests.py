"""Manifest media types, descriptors and the index a multi-platform image is named by."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from matrix.platform import Platform
from matrix.registry.answers import ImageManifestModel, IndexModel, parse_answer

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"

INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
MANIFEST_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST, *INDEX_TYPES})
# All four, always: a narrower Accept makes distribution answer 404 for OCI content
# or silently hand back one platform of a manifest list.
ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))


@dataclass(frozen=True, slots=True)
class Descriptor:
    """What a registry says about one piece of content: its type, digest and size."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = field(default=None, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Descriptor:
        platform = data.get("platform")
        return cls(
            media_type=data.get("mediaType", ""),
            digest=data["digest"],
            size=int(data["size"]),
            platform=Platform.from_json(platform) if platform else None,
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform:
            data["platform"] = self.platform.to_json()
        return data

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def sha256_digest(content: bytes) -> str:
    return "sha256:" + hashlib.sha256(content).hexdigest()


def digest_matches(content: bytes, digest: str) -> bool:
    algorithm, _, expected = digest.partition(":")
    if algorithm not in ("sha256", "sha384", "sha512"):
        return False
    return hashlib.new(algorithm, content).hexdigest() == expected


def validate_manifest(content: bytes, media_type: str) -> None:
    """Check ``content`` against the schema of ``media_type``; BadAnswer if it does not fit."""
    parse_answer(IndexModel if media_type in INDEX_TYPES else ImageManifestModel, content)


def parse_manifest(content: bytes) -> dict[str, Any]:
    document = json.loads(content)
    if not isinstance(document, dict):
        raise ValueError("a manifest must be a JSON object")
    return document


def children(index: dict[str, Any]) -> list[Descriptor]:
    """The manifests an index or manifest list names."""
    return [Descriptor.from_json(entry) for entry in index.get("manifests") or []]


def blobs(manifest: dict[str, Any]) -> list[Descriptor]:
    """The config and layers an image manifest needs in its repository."""
    found = [Descriptor.from_json(manifest["config"])] if manifest.get("config") else []
    found += [Descriptor.from_json(layer) for layer in manifest.get("layers") or []]
    return found


def build_index(entries: list[Descriptor], annotations: dict[str, str] | None = None) -> bytes:
    """An OCI index naming each platform manifest; its bytes are what gets pushed."""
    document: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [entry.to_json() for entry in entries],
    }
    if annotations:
        document["annotations"] = dict(sorted(annotations.items()))
    return json.dumps(document, indent=2).encode() + b"\n"
