"""verify's attestation check: both documents on every platform image, and the SBOM's
Python packages equal to the lock recorded on the image; attested by matrix (podman,
referrers under the fallback tag) or by BuildKit (attestation manifests in the index)."""

from __future__ import annotations

import json

from matrix.attest.verify import platform_problems
from matrix.engines.podman import PodmanEngine
from matrix.publish.annotations import PINS_ANNOTATION
from matrix.reference import parse_reference
from matrix.registry.manifests import (
    ATTESTATION_MANIFEST,
    OCI_INDEX,
    OCI_MANIFEST,
    REFERENCE_DIGEST,
    REFERENCE_TYPE,
    sha256_digest,
)
from tests.attest.test_podman_attestations import _request
from tests.support.images import push_platform_images

PINS = "anyio==4.4.0;prefect==3.9.1;typing-extensions==4.12.2"
RECORDED = {PINS_ANNOTATION: f"amd64:{PINS}+arm64:{PINS}"}


def _built(tmp_path, registry, **changes):
    request = _request(tmp_path, registry.host, **changes)
    engine = PodmanEngine(tmp_path / "work", tls_verify=False)
    engine.prepare()
    result = engine.build(request, log=lambda line: None)
    return parse_reference(request.repository), result


def test_a_podman_release_with_both_documents_and_its_lock_passes(
    make_client, tmp_path, registry, podman
):
    repository, result = _built(tmp_path, registry, sbom=True, provenance=True)
    client = make_client()
    index = client.get_manifest(repository.with_digest(result.digest)).content

    assert platform_problems(client, repository, index, result.platform_digests, RECORDED) == []

    other = {PINS_ANNOTATION: f"amd64:anyio==4.3.0;prefect==3.9.1+arm64:{PINS}"}
    assert platform_problems(client, repository, index, result.platform_digests, other) == [
        "linux/amd64's SBOM differs from its lock: anyio 4.4.0 where the lock has 4.3.0, "
        "typing-extensions 4.12.2 not in the lock"
    ]


def test_a_platform_image_without_an_sbom_fails(make_client, tmp_path, registry, podman):
    repository, result = _built(tmp_path, registry, provenance=True)
    client = make_client()
    index = client.get_manifest(repository.with_digest(result.digest)).content

    assert platform_problems(client, repository, index, result.platform_digests, RECORDED) == [
        "linux/amd64 has no SBOM",
        "linux/arm64 has no SBOM",
    ]


def _statement_layer(client, ref, predicate_type: str, predicate: dict) -> dict:
    statement = json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "predicateType": predicate_type,
            "predicate": predicate,
            "subject": [],
        }
    ).encode()
    return {
        "mediaType": "application/vnd.in-toto+json",
        "digest": client.upload_blob(ref, statement),
        "size": len(statement),
        "annotations": {"in-toto.io/predicate-type": predicate_type},
    }


def _spdx(*purls: str) -> dict:
    return {
        "spdxVersion": "SPDX-2.3",
        "packages": [
            {"name": p, "externalRefs": [{"referenceType": "purl", "referenceLocator": p}]}
            for p in purls
        ],
    }


def test_buildkits_attestation_manifests_in_the_index_are_read(make_client, registry):
    client = make_client()
    ref = parse_reference(f"{registry.host}/attest/buildkit:1")
    images, _ = push_platform_images(client, ref, salt="buildkit")
    entries = []
    for platform, digest in images.items():
        os_name, architecture = platform.split("/")
        head = client.head_manifest(ref.with_digest(digest))
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": digest,
                "size": head.size,
                "platform": {"os": os_name, "architecture": architecture},
            }
        )
        # BuildKit's scanner also finds the base image's pip; amd64's lacks typing-extensions
        purls = ["pkg:pypi/anyio@4.4.0", "pkg:pypi/prefect@3.9.1", "pkg:pypi/pip@24.0"]
        if architecture == "arm64":
            purls.append("pkg:pypi/typing-extensions@4.12.2")
        config = b"{}"
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": client.upload_blob(ref, config),
                    "size": 2,
                },
                "layers": [
                    _statement_layer(client, ref, "https://spdx.dev/Document", _spdx(*purls)),
                    _statement_layer(client, ref, "https://slsa.dev/provenance/v0.2", {}),
                ],
            }
        ).encode()
        attestation = client.put_manifest(
            ref.with_digest(sha256_digest(manifest)), manifest, OCI_MANIFEST
        )
        entries.append(
            {
                "mediaType": OCI_MANIFEST,
                "digest": attestation,
                "size": len(manifest),
                "platform": {"os": "unknown", "architecture": "unknown"},
                "annotations": {REFERENCE_TYPE: ATTESTATION_MANIFEST, REFERENCE_DIGEST: digest},
            }
        )
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})

    problems = platform_problems(client, ref, index.encode(), images, RECORDED)

    assert problems == [
        "linux/amd64's SBOM differs from its lock: typing-extensions 4.12.2 not listed"
    ]


def test_an_sbom_that_is_not_json_is_a_problem_not_a_crash(make_client, registry):
    from matrix.attest.referrers import attach
    from matrix.attest.sbom import SBOM_MEDIA_TYPE

    client = make_client()
    ref = parse_reference(f"{registry.host}/attest/broken:1")
    images, _ = push_platform_images(client, ref, platforms=("linux/amd64",), salt="broken")
    image = ref.with_digest(images["linux/amd64"])
    attach(client, image, SBOM_MEDIA_TYPE, b"{not json", SBOM_MEDIA_TYPE)

    (problem,) = platform_problems(client, ref, b"", images, RECORDED)

    assert problem.startswith("linux/amd64 has an attestation that cannot be read (")
