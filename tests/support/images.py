"""Small multi-platform test images, pushed through matrix's own client (no daemon)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from matrix.reference import ImageReference
from matrix.registry import RegistryClient, assemble_index
from matrix.registry.manifests import OCI_MANIFEST, sha256_digest

PLATFORMS = ("linux/amd64", "linux/arm64")
_CONFIG = "application/vnd.oci.image.config.v1+json"
_LAYER = "application/vnd.oci.image.layer.v1.tar"


@dataclass(frozen=True)
class PushedImage:
    digest: str  # the index
    platforms: dict[str, str]  # platform -> manifest digest
    blobs: frozenset[str]  # every config and layer digest


def push_index(
    client: RegistryClient,
    ref: ImageReference,
    platforms=PLATFORMS,
    salt: str = "",
    annotations: dict[str, str] | None = None,
    untagged: bool = False,
) -> PushedImage:
    """Push one small image per platform and an OCI index naming them to ``ref`` (to
    its repository by digest alone, if ``untagged``)."""
    children, blobs = push_platform_images(client, ref, platforms, salt=f"{ref} {salt}")
    index = assemble_index(
        client,
        ref,
        list(zip(children.values(), children, strict=True)),
        annotations=annotations,
        untagged=untagged,
    )
    return PushedImage(index, children, frozenset(blobs))


def push_platform_images(
    client: RegistryClient, ref: ImageReference, platforms=PLATFORMS, salt: str = ""
) -> tuple[dict[str, str], set[str]]:
    """One small image per platform into ``ref``'s repository by digest, with no tag:
    (platform -> manifest digest, every blob digest). Same salt, same digests."""
    children: dict[str, str] = {}
    blobs: set[str] = set()
    for platform in platforms:
        os_name, architecture = platform.split("/")[:2]
        layer = f"layer for {platform} {salt}".encode()
        config = json.dumps(
            {"architecture": architecture, "os": os_name, "rootfs": {"type": "layers"}}
        ).encode()
        layer_digest = client.upload_blob(ref, layer)
        config_digest = client.upload_blob(ref, config)
        blobs |= {layer_digest, config_digest}
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": _CONFIG, "digest": config_digest, "size": len(config)},
                "layers": [{"mediaType": _LAYER, "digest": layer_digest, "size": len(layer)}],
            }
        ).encode()
        children[platform] = client.put_manifest(
            ref.with_digest(sha256_digest(manifest)), manifest, OCI_MANIFEST
        )
    return children, blobs
