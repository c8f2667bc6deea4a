"""`verify --sizes`: each platform image's compressed size and largest layers, read from
a real registry holding a published release whose layers and history the test wrote."""

from __future__ import annotations

import json

import pytest

from matrix.cli import main
from matrix.config import load_config
from matrix.plan import plan_release
from matrix.publish.digests import write_digest
from matrix.publish.sizes import PlatformSize
from matrix.publish.state import reference
from matrix.reference import ImageReference
from matrix.registry import RegistryClient
from matrix.registry.manifests import OCI_INDEX, OCI_MANIFEST, sha256_digest
from tests.support.images import push_platform_images
from tests.support.publishing import COMMIT, VERSION, Release

_CONFIG = "application/vnd.oci.image.config.v1+json"
_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
BUILD_ESSENTIAL = "apt-get install -y build-essential"


def _push_layered(client: RegistryClient, ref: ImageReference, platform: str, seed: int):
    """A platform image of three layers (the second the largest) whose config's history
    has a step that made no layer, as BuildKit writes it: (manifest digest, what the
    registry should report for it)."""
    steps = [
        ("/bin/sh -c #(nop) ADD file:4f5e in / ", 2000 + seed),
        (f"RUN |1 PYTHON_VERSION=3.10 /bin/sh -c {BUILD_ESSENTIAL} # buildkit", 9000 + seed),
        ("COPY /opt/prefect /opt/prefect # buildkit", 300 + seed),
    ]
    layers = []
    for number, (_, size) in enumerate(steps):
        content = f"{platform} {seed} {number} ".encode().ljust(size, b".")
        layers.append(
            {"mediaType": _LAYER, "digest": client.upload_blob(ref, content), "size": size}
        )
    history = [{"created_by": steps[0][0]}, {"created_by": "ENV LANG=C.UTF-8", "empty_layer": True}]
    history += [{"created_by": step} for step, _ in steps[1:]]
    os_name, architecture = platform.split("/")
    config = json.dumps(
        {
            "architecture": architecture,
            "os": os_name,
            "rootfs": {"type": "layers"},
            "history": history,
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": _CONFIG,
                "digest": client.upload_blob(ref, config),
                "size": len(config),
            },
            "layers": layers,
        }
    ).encode()
    digest = client.put_manifest(ref.with_digest(sha256_digest(manifest)), manifest, OCI_MANIFEST)
    expected = {
        "compressed_bytes": len(config) + sum(size for _, size in steps),
        "config_bytes": len(config),
        "layers": 3,
        "largest": [
            {
                "digest": layers[1]["digest"],
                "bytes": steps[1][1],
                "created_by": f"RUN {BUILD_ESSENTIAL}",
            },
            {
                "digest": layers[0]["digest"],
                "bytes": steps[0][1],
                "created_by": "ADD file:4f5e in /",
            },
            {
                "digest": layers[2]["digest"],
                "bytes": steps[2][1],
                "created_by": "COPY /opt/prefect /opt/prefect",
            },
        ],
    }
    return digest, expected


@pytest.fixture
def published(tmp_path, registry, capsys):
    """The release published from layered platform images; per (image key, platform),
    what its size report should say."""
    release = Release(tmp_path, registry.host, "sizes")
    expected = {}
    with RegistryClient() as client:
        for seed, spec in enumerate(release.plan.images):
            for platform in spec.platforms:
                ref = ImageReference(registry.host, release.repository)
                digest, expected[spec.key, platform] = _push_layered(client, ref, platform, seed)
                write_digest(release.digests, spec.key, platform, digest)
    assert main(release.args(registry.host)) == 0, capsys.readouterr().err
    capsys.readouterr()
    return release, expected


def _verify(release: Release, *more: str) -> list[str]:
    return [
        "verify",
        *("--version", VERSION, "--sha", COMMIT, "--config", str(release.config)),
        *("--registry", release.host, *more),
    ]


def test_sizes_are_the_sums_of_the_layers_pushed_with_the_steps_that_made_the_largest(
    published, capsys
):
    release, expected = published
    assert main(_verify(release, "--format", "json")) == 0
    assert "sizes" not in json.loads(capsys.readouterr().out)

    assert main(_verify(release, "--format", "json", "--sizes")) == 0
    sizes = json.loads(capsys.readouterr().out)["sizes"]
    assert sizes["registry"] == release.host
    found = {(entry["image"], entry["platform"]): entry for entry in sizes["images"]}
    assert len(found) == len(sizes["images"]) == len(expected) == 8
    for (key, platform), entry in found.items():
        spec = next(s for s in release.plan.images if s.key == key)
        assert entry["reference"] == str(spec.full_target)
        assert {k: entry[k] for k in expected[key, platform]} == expected[key, platform]
    # A manifest GET and a config blob GET per platform image, nothing else.
    assert (sizes["requests"], sizes["blob_reads"]) == (16, 8)


def test_the_table_gives_megabytes_layers_and_the_largest_layers_step(published, capsys):
    release, expected = published
    assert main(_verify(release, "--sizes")) == 0
    out = capsys.readouterr().out
    spec = release.plan.images[0]
    row = next(
        line.split()
        for line in out.splitlines()
        if line.split()[:2] == [str(spec.full_target), "arm64"]
    )
    total = expected[spec.key, "linux/arm64"]["compressed_bytes"]
    assert row[2:6] == [f"{total / 1e6:.1f}", "3", "0.0", "MB"]
    assert " ".join(row[6:]) == f"RUN {BUILD_ESSENTIAL}"
    assert "sizes: 16 requests, 8 of them blob reads" in out


def test_an_attestation_manifest_in_an_index_is_not_a_platform(make_client, published, capsys):
    release, _ = published
    spec = release.plan.images[0]
    client = make_client()
    full = reference(release.host, spec.full_target)
    index = json.loads(client.get_manifest(full).content)
    children, _ = push_platform_images(client, full, ("unknown/unknown",), salt="attestation")
    attestation = children["unknown/unknown"]
    head = client.head_manifest(full.with_digest(attestation))
    index["manifests"].append(
        {
            "mediaType": OCI_MANIFEST,
            "digest": attestation,
            "size": head.size,
            "platform": {"architecture": "unknown", "os": "unknown"},
            "annotations": {
                "vnd.docker.reference.type": "attestation-manifest",
                "vnd.docker.reference.digest": index["manifests"][0]["digest"],
            },
        }
    )
    client.put_manifest(full, json.dumps(index).encode(), OCI_INDEX)

    main(_verify(release, "--format", "json", "--sizes"))
    sizes = json.loads(capsys.readouterr().out)["sizes"]
    platforms = sorted(e["platform"] for e in sizes["images"] if e["image"] == spec.key)
    assert platforms == sorted(spec.platforms)
    assert all(e["digest"] != attestation for e in sizes["images"])
    assert sizes["blob_reads"] == 8


def _publish_earlier(release: Release, tmp_path, capsys, version: str) -> dict:
    """``version`` of the same line published after it from layered images each layer
    100 KB larger, its Python 3.10 images only: per (image key, platform), its sizes."""
    plan = plan_release(load_config(release.config), version, known=[], pythons=["3.10"])
    digests = tmp_path / f"{version}-digests"
    expected = {}
    with RegistryClient() as client:
        for spec in plan.images:
            for platform in spec.platforms:
                ref = ImageReference(release.host, release.repository)
                digest, expected[spec.key, platform] = _push_layered(client, ref, platform, 100_000)
                write_digest(digests, spec.key, platform, digest)
    args = ["publish", "--version", version, "--python", "3.10", "--config", str(release.config)]
    args += ["--registry", release.host, "--digests", str(digests), "--yes"]
    assert main(args) == 0, capsys.readouterr().err
    capsys.readouterr()
    return expected


def test_compare_gives_each_images_size_in_the_other_release_and_the_change(
    published, tmp_path, capsys
):
    release, now = published
    before = _publish_earlier(release, tmp_path, capsys, "2.11.3")

    assert main(_verify(release, "--format", "json", "--compare", "2.11.3")) == 0
    sizes = json.loads(capsys.readouterr().out)["sizes"]
    assert sizes["compared_with"] == "2.11.3" and sizes["dropped"] == []
    assert len(sizes["images"]) == 8
    for entry in sizes["images"]:
        key = entry["image"], entry["platform"]
        assert entry["compressed_bytes"] == now[key]["compressed_bytes"]
        if key in before:
            assert entry["before_bytes"] == before[key]["compressed_bytes"]
            assert entry["change_bytes"] == entry["compressed_bytes"] - entry["before_bytes"]
        else:
            assert entry["before_bytes"] is None and entry["change_bytes"] is None
    assert sum(entry["before_bytes"] is not None for entry in sizes["images"]) == len(before) == 4
    # Both releases' platform images read: 8 now and 4 before, each a config blob.
    assert sizes["blob_reads"] == 12

    # The other way round: 2.11.3 lacks its Python 3.11 images, which 2.11.4 has.
    args = _verify(release, "--compare", "2.11.4")
    args[args.index(VERSION)] = "2.11.3"
    assert main(args) == 1
    out = capsys.readouterr().out
    dropped = [line for line in out.splitlines() if line.endswith("in 2.11.4, not in this release")]
    assert len(dropped) == 4 and all("python3.11" in line for line in dropped)
    row = next(line.split() for line in out.splitlines() if line.split()[1:2] == ["amd64"])
    assert row[0].endswith("2.11.3-python3.10") and row[2:4] == ["0.3", "+0.3"]


def test_an_image_is_compared_with_the_same_platform_however_its_index_spells_it():
    def size(platform: str) -> PlatformSize:
        return PlatformSize(
            "prefect-python3.12", "prefecthq/prefect:3", platform, "sha256:0", 1, ()
        )

    assert size("linux/arm64/v8").key == size("linux/arm64").key
    assert size("linux/arm/v7").key != size("linux/arm64").key
