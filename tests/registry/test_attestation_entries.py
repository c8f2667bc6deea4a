"""BuildKit's attestation manifests sit in an image's index beside its platform images
(platform unknown/unknown): readers and merges keep them apart from the platforms."""

import json

from matrix.publish.state import read_image
from matrix.registry import assemble_index
from matrix.registry.manifests import (
    ATTESTATION_MANIFEST,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    REFERENCE_DIGEST,
    REFERENCE_TYPE,
    sha256_digest,
)
from tests.support.images import push_platform_images


def _push_attestation(client, ref, image_digest: str, media_type: str = OCI_MANIFEST) -> dict:
    """An attestation manifest for ``image_digest`` as BuildKit writes one; its index entry."""
    statement = json.dumps({"_type": "https://in-toto.io/Statement/v1", "subject": []}).encode()
    config = b"{}"
    layer = client.upload_blob(ref, statement)
    config_digest = client.upload_blob(ref, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": media_type,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.in-toto+json",
                    "digest": layer,
                    "size": len(statement),
                    "annotations": {"in-toto.io/predicate-type": "https://spdx.dev/Document"},
                }
            ],
        }
    ).encode()
    digest = client.put_manifest(ref.with_digest(sha256_digest(manifest)), manifest, media_type)
    return {
        "mediaType": media_type,
        "digest": digest,
        "size": len(manifest),
        "platform": {"architecture": "unknown", "os": "unknown"},
        "annotations": {REFERENCE_TYPE: ATTESTATION_MANIFEST, REFERENCE_DIGEST: image_digest},
    }


def _image_entry(client, ref, platform: str, digest: str, media_type: str) -> dict:
    head = client.head_manifest(ref.with_digest(digest))
    os_name, architecture = platform.split("/")
    return {
        "mediaType": media_type,
        "digest": digest,
        "size": head.size,
        "platform": {"architecture": architecture, "os": os_name},
        "annotations": {"io.prefect.matrix.key": "prefect-python3.12"},
    }


def test_attestation_entries_of_oci_and_docker_indexes_are_not_platforms(
    make_client, registry, repo
):
    client = make_client()
    for index_type, entry_type in (
        (OCI_INDEX, OCI_MANIFEST),
        (DOCKER_MANIFEST_LIST, DOCKER_MANIFEST),
    ):
        ref = repo(registry.host)
        images, _ = push_platform_images(client, ref, salt=index_type)
        entries = [_image_entry(client, ref, p, d, OCI_MANIFEST) for p, d in images.items()]
        entries += [_push_attestation(client, ref, d, entry_type) for d in images.values()]
        index = json.dumps({"schemaVersion": 2, "mediaType": index_type, "manifests": entries})
        client.put_manifest(ref, index.encode(), index_type)

        image = read_image(client, ref)

        assert image.platforms == {"linux/amd64", "linux/arm64"}
        assert dict(image.children) == images
        # podman annotates entries, not the index: the attestations' do not count
        assert image.annotations == {"io.prefect.matrix.key": "prefect-python3.12"}


def test_merging_one_platform_indexes_keeps_each_image_and_its_attestations(
    make_client, registry, repo
):
    """buildx --push-by-digest with attestations pushes an index per platform."""
    client = make_client()
    ref = repo(registry.host)
    images, _ = push_platform_images(client, ref)
    per_platform = {}
    for platform, digest in images.items():
        entries = [
            _image_entry(client, ref, platform, digest, OCI_MANIFEST),
            _push_attestation(client, ref, digest),
        ]
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
        per_platform[platform] = client.put_manifest(
            ref.with_digest(sha256_digest(index.encode())), index.encode(), OCI_INDEX
        )

    assemble_index(client, ref, [(d, p) for p, d in per_platform.items()])

    merged = json.loads(client.get_manifest(ref).content)
    kinds = [
        (entry["platform"]["architecture"], entry.get("annotations", {}).get(REFERENCE_DIGEST))
        for entry in merged["manifests"]
    ]
    assert kinds == [
        ("amd64", None),
        ("unknown", images["linux/amd64"]),
        ("arm64", None),
        ("unknown", images["linux/arm64"]),
    ]
    assert dict(read_image(client, ref).children) == images
