"""Does every platform image of a release carry an SBOM and a provenance statement, and
does the SBOM list exactly the Python packages of the lock recorded on the image?

Two places are read, whichever holds them: attestation manifests inside the image's
index (buildx: in-toto statements, an SPDX SBOM and SLSA provenance), else the
artifacts that name the platform image as their subject (matrix on the podman path:
CycloneDX and an in-toto statement; the referrers API, else the fallback tag).

The lock is what ``io.prefect.matrix.lock-pins`` records on the image. matrix's own SBOM
is made from that lock and must list exactly its packages; BuildKit's scanner also
finds what the base image brings (pip, say), so there every locked package must be
listed with its version, and more is allowed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from matrix.attest.provenance import PREDICATE_TYPE_ANNOTATION, PROVENANCE_MEDIA_TYPE
from matrix.attest.referrers import read_blob, read_document, referrers
from matrix.attest.sbom import SBOM_MEDIA_TYPE, python_packages
from matrix.lock import decode_pins
from matrix.platform import Platform
from matrix.publish.annotations import PINS_ANNOTATION
from matrix.reference import ImageReference
from matrix.registry.client import RegistryClient
from matrix.registry.manifests import REFERENCE_DIGEST, children, is_attestation, parse_manifest

SPDX_PREDICATES = ("https://spdx.dev/Document",)
CYCLONEDX_PREDICATES = ("https://cyclonedx.org/bom",)
PROVENANCE_PREDICATES = ("https://slsa.dev/provenance/v1", "https://slsa.dev/provenance/v0.2")


@dataclass
class Found:
    """What one platform image carries: its SBOM (as a document), whether it has a
    provenance statement, and whether the SBOM is matrix's own (exact lock)."""

    sbom: dict[str, Any] | None = None
    provenance: bool = False
    exact: bool = False


def _in_index(client: RegistryClient, ref: ImageReference, index: dict, digest: str) -> Found:
    found = Found()
    for entry in children(index):
        if not entry.is_attestation or entry.annotations.get(REFERENCE_DIGEST) != digest:
            continue
        manifest = parse_manifest(client.get_manifest(ref.with_digest(entry.digest)).content)
        for layer in manifest.get("layers") or []:
            predicate = (layer.get("annotations") or {}).get(PREDICATE_TYPE_ANNOTATION, "")
            if predicate in PROVENANCE_PREDICATES:
                found.provenance = True
            elif predicate in SPDX_PREDICATES + CYCLONEDX_PREDICATES:
                statement = json.loads(read_blob(client, ref, layer["digest"]))
                found.sbom = statement.get("predicate") or {}
    return found


def _referred(client: RegistryClient, image: ImageReference) -> Found:
    found = Found()
    for referrer in referrers(client, image):
        predicate = referrer.annotations.get(PREDICATE_TYPE_ANNOTATION, "")
        if referrer.artifact_type == SBOM_MEDIA_TYPE and found.sbom is None:
            found.sbom = json.loads(read_document(client, image, referrer))
            found.exact = True
        elif referrer.artifact_type == PROVENANCE_MEDIA_TYPE and (
            predicate in PROVENANCE_PREDICATES
        ):
            found.provenance = True
    return found


def platform_problems(
    client: RegistryClient,
    repository: ImageReference,
    index_content: bytes,
    platform_digests: Mapping[str, str],
    annotations: Mapping[str, str],
) -> list[str]:
    """What the platform images of one index lack: ``linux/amd64 has no SBOM``, ..."""
    index = json.loads(index_content) if index_content else {}
    inline = any(is_attestation(entry) for entry in index.get("manifests") or [])
    locks = decode_pins(annotations.get(PINS_ANNOTATION, ""))
    problems = []
    for platform, digest in sorted(platform_digests.items()):
        image = repository.with_digest(digest)
        try:
            found = _in_index(client, repository, index, digest) if inline else Found()
            if found.sbom is None and not found.provenance:
                found = _referred(client, image)
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            problems.append(f"{platform} has an attestation that cannot be read ({error})")
            continue
        if not found.provenance:
            problems.append(f"{platform} has no provenance statement")
        if found.sbom is None:
            problems.append(f"{platform} has no SBOM")
            continue
        lock = locks.get(Platform.parse(platform).architecture)
        if lock is None:
            continue  # no lock recorded on the image: nothing to compare with
        listed = python_packages(found.sbom)
        if not found.exact:
            listed = {name: listed[name] for name in lock if name in listed}
        changes = _differences(lock, listed)
        if changes:
            problems.append(f"{platform}'s SBOM differs from its lock: {', '.join(changes)}")
    return problems


def _differences(lock: Mapping[str, str], listed: Mapping[str, str]) -> list[str]:
    found = []
    for name in sorted(lock.keys() | listed.keys()):
        if name not in listed:
            found.append(f"{name} {lock[name]} not listed")
        elif name not in lock:
            found.append(f"{name} {listed[name]} not in the lock")
        elif lock[name] != listed[name]:
            found.append(f"{name} {listed[name]} where the lock has {lock[name]}")
    return found
