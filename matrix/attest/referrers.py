"""Documents attached to an image as OCI 1.1 artifacts, and finding them again.

An artifact is an image manifest with an ``artifactType``, the empty config, the
document as its one layer, and ``subject`` naming the image. A registry with the
referrers API (``GET /v2/<name>/referrers/<digest>``) lists it by itself; for one
without (Debian's distribution 2.8), the OCI distribution spec's "referrers tag
schema" applies: the tag ``sha256-<hex>`` of the image's digest holds an index of
its referrers, which the writer keeps up to date. oras and cosign read both.

Every write goes through `matrix.registry.ensure`: the document and the artifact
first, then the fallback tag, re-checked right before it is written, so a second
writer adding its own referrer is never overwritten silently.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from matrix.reference import ImageReference
from matrix.registry.client import Manifest, RegistryClient
from matrix.registry.ensure import RegistrySource, ensure
from matrix.registry.manifests import OCI_INDEX, OCI_MANIFEST, Descriptor, sha256_digest
from matrix.registry.transport import Where

EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
_EMPTY = b"{}"


@dataclass(frozen=True)
class Referrer:
    """One artifact naming an image as its subject, as a referrers list describes it."""

    digest: str
    media_type: str
    size: int
    artifact_type: str
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
            "artifactType": self.artifact_type,
        }
        if self.annotations:
            data["annotations"] = dict(sorted(self.annotations.items()))
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Referrer:
        return cls(
            data["digest"],
            data.get("mediaType", ""),
            int(data.get("size", 0)),
            data.get("artifactType", ""),
            dict(data.get("annotations") or {}),
        )


@dataclass(frozen=True)
class _MemorySource:
    """A manifest made here and the blobs it needs, held in memory."""

    manifest_: Manifest
    blobs: Mapping[str, bytes]

    def manifest(self, client: RegistryClient, digest: str | None = None) -> Manifest:
        return self.manifest_

    def holds(self, target: ImageReference) -> bool:
        return False

    def bring_blob(self, client: RegistryClient, target: ImageReference, digest: str) -> None:
        if not client.blob_exists(target, digest):
            client.upload_blob(target, self.blobs[digest])


def fallback_tag(digest: str) -> str:
    """``sha256:<hex>`` -> ``sha256-<hex>``, the referrers tag schema's tag."""
    algorithm, _, value = digest.partition(":")
    return f"{algorithm}-{value}"


def artifact_manifest(
    subject: Descriptor,
    artifact_type: str,
    document: bytes,
    media_type: str,
    annotations: Mapping[str, str] | None = None,
) -> Manifest:
    """The artifact manifest carrying ``document`` for ``subject``."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": {
            "mediaType": EMPTY_MEDIA_TYPE,
            "digest": sha256_digest(_EMPTY),
            "size": len(_EMPTY),
            "data": base64.b64encode(_EMPTY).decode(),
        },
        "layers": [
            {"mediaType": media_type, "digest": sha256_digest(document), "size": len(document)}
        ],
        "subject": {
            "mediaType": subject.media_type,
            "digest": subject.digest,
            "size": subject.size,
        },
    }
    if annotations:
        manifest["annotations"] = dict(sorted(annotations.items()))
    content = json.dumps(manifest, indent=2).encode() + b"\n"
    return Manifest(content, OCI_MANIFEST, sha256_digest(content))


def attach(
    client: RegistryClient,
    image: ImageReference,
    artifact_type: str,
    document: bytes,
    media_type: str,
    annotations: Mapping[str, str] | None = None,
) -> Referrer:
    """Attach ``document`` to ``image`` (a reference by digest) and list it under the
    fallback tag; what is already there is not written again."""
    head = client.head_manifest(image)
    if head is None:
        raise ValueError(f"{image}: no such image to attach to")
    subject = Descriptor(head.media_type, head.digest, head.size)
    manifest = artifact_manifest(subject, artifact_type, document, media_type, annotations)
    blobs = {sha256_digest(_EMPTY): _EMPTY, sha256_digest(document): document}
    ensure(client, _MemorySource(manifest, blobs), [image.with_digest(manifest.digest)], manifest)
    referrer = Referrer(
        manifest.digest, OCI_MANIFEST, len(manifest.content), artifact_type, annotations or {}
    )
    _list_under_fallback_tag(client, image.with_digest(head.digest), referrer)
    return referrer


def _list_under_fallback_tag(
    client: RegistryClient, image: ImageReference, referrer: Referrer
) -> None:
    tag = image.with_tag(fallback_tag(image.digest or ""))
    head = client.head_manifest(tag)
    listed: list[dict[str, Any]] = []
    if head is not None:
        listed = json.loads(client.get_manifest(tag.with_digest(head.digest)).content).get(
            "manifests", []
        )
    if any(entry.get("digest") == referrer.digest for entry in listed):
        return
    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [*listed, referrer.to_json()],
    }
    content = json.dumps(index, indent=2).encode() + b"\n"
    manifest = Manifest(content, OCI_INDEX, sha256_digest(content))
    current = head.digest if head else None
    ensure(client, RegistrySource(tag), [tag], manifest, expected={tag: current})


def referrers(client: RegistryClient, image: ImageReference) -> list[Referrer]:
    """The artifacts naming ``image`` (a reference by digest): the registry's referrers
    API if it has one, else the fallback tag's index; [] when neither lists any."""
    digest = image.digest or ""
    answer = client.transport.request(
        Where.of(image, digest),
        "list referrers",
        "GET",
        f"/v2/{image.repository}/referrers/{digest}",
        headers={"Accept": OCI_INDEX},
        missing_ok=True,
    )
    if answer is not None:
        listed = json.loads(answer.body).get("manifests") or []
    else:
        tag = image.with_tag(fallback_tag(digest))
        if client.head_manifest(tag) is None:
            return []
        listed = json.loads(client.get_manifest(tag).content).get("manifests") or []
    return [Referrer.from_json(entry) for entry in listed]


def read_document(client: RegistryClient, image: ImageReference, referrer: Referrer) -> bytes:
    """The one document an artifact carries (its first layer), checked against its digest."""
    manifest = json.loads(client.get_manifest(image.with_digest(referrer.digest)).content)
    layer = manifest["layers"][0]
    return read_blob(client, image, layer["digest"])


def read_blob(client: RegistryClient, image: ImageReference, digest: str) -> bytes:
    from matrix.registry.manifests import digest_matches

    answer = client.transport.request(
        Where.of(image, digest),
        "get blob",
        "GET",
        f"/v2/{image.repository}/blobs/{digest}",
        limit=64 * 1024 * 1024,
    )
    assert answer is not None
    if not digest_matches(answer.body, digest):
        raise answer.where.error(f"the blob received does not match its digest {digest}")
    return answer.body


def copy_referrers(
    client: RegistryClient,
    source: ImageReference,
    target: ImageReference,
    digests: Iterable[str],
) -> int:
    """Bring the referrers of each image ``digest`` from ``source``'s repository to
    ``target``'s (a mirror), fallback tag and artifacts alike; how many tags it wrote.
    One HEAD per image when there are none."""
    wanted = [(source.with_tag(fallback_tag(d)), target.with_tag(fallback_tag(d))) for d in digests]
    heads = client.map(lambda pair: client.head_manifest(pair[0]), wanted)
    copied = 0
    for (there, here), head in zip(wanted, heads, strict=True):
        if head is None:
            continue
        manifest = client.get_manifest(there.with_digest(head.digest))
        ensure(client, RegistrySource(there), [here], manifest)
        copied += 1
    return copied
