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

# BuildKit lists an image's attestations (SBOM, provenance) in its index, one manifest
# per platform image, with platform unknown/unknown and these annotations: they are
# not platforms of the image.
REFERENCE_TYPE = "vnd.docker.reference.type"
REFERENCE_DIGEST = "vnd.docker.reference.digest"
ATTESTATION_MANIFEST = "attestation-manifest"


@dataclass(frozen=True, slots=True)
class Descriptor:
    """What a registry says about one piece of content: its type, digest and size."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = field(default=None, compare=False)
    annotations: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Descriptor:
        platform = data.get("platform")
        return cls(
            media_type=data.get("mediaType", ""),
            digest=data["digest"],
            size=int(data["size"]),
            platform=Platform.from_json(platform) if platform else None,
            annotations=dict(data.get("annotations") or {}),
        )

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform:
            data["platform"] = self.platform.to_json()
        if self.annotations:
            data["annotations"] = dict(sorted(self.annotations.items()))
        return data

    @property
    def is_attestation(self) -> bool:
        return is_attestation(self.to_json())

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES


def is_attestation(entry: dict[str, Any]) -> bool:
    """Whether an index entry is an attestation manifest rather than a platform's image."""
    annotations = entry.get("annotations") or {}
    if annotations.get(REFERENCE_TYPE) == ATTESTATION_MANIFEST:
        return True
    platform = entry.get("platform") or {}
    return platform.get("os") == "unknown" and platform.get("architecture") == "unknown"


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
    """The manifests an index or manifest list names, attestation manifests included."""
    return [Descriptor.from_json(entry) for entry in index.get("manifests") or []]


def platform_children(index: dict[str, Any]) -> list[Descriptor]:
    """The platform images an index names: not its attestation manifests."""
    return [entry for entry in children(index) if not entry.is_attestation]


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
