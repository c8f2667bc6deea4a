"""A real image pushed by matrix carries what a security reviewer reads: an SBOM of
its Debian packages and of exactly the Python packages its lock pins, and a
provenance statement naming the base image digest it was built on."""

from __future__ import annotations

import json

import pytest

from matrix.attest.provenance import PROVENANCE_MEDIA_TYPE
from matrix.attest.referrers import read_document, referrers
from matrix.attest.sbom import SBOM_MEDIA_TYPE, python_packages
from matrix.attest.verify import platform_problems
from matrix.reference import parse_reference


@pytest.mark.parametrize(("version", "image", "flavor"), [("2.11.5", "prefect", "standard")])
def test_a_real_image_has_an_sbom_equal_to_its_lock_and_a_provenance_naming_its_base(
    real_images, standin_python, make_client, version, image, flavor
):
    reference = parse_reference(real_images.build(version, image, flavor))
    client = make_client()
    index = client.get_manifest(reference)
    (entry,) = json.loads(index.content)["manifests"]
    assert entry["platform"]["architecture"] == "amd64"
    platform_image = reference.with_digest(entry["digest"])

    # What `matrix verify --attestations` checks: both documents, the SBOM equal to the lock.
    assert (
        platform_problems(
            client, reference, index.content, {"linux/amd64": entry["digest"]}, entry["annotations"]
        )
        == []
    )

    found = {r.artifact_type: r for r in referrers(client, platform_image)}
    sbom = json.loads(read_document(client, platform_image, found[SBOM_MEDIA_TYPE]))
    python = python_packages(sbom)
    assert python["prefect"] == "2.11.5"
    assert python["griffe"] == "0.35.0"  # what 2.11.5 shipped with, not today's griffe
    debian = {c["name"] for c in sbom["components"] if c["purl"].startswith("pkg:deb/")}
    assert {"tini", "git", "build-essential"} <= debian

    statement = json.loads(read_document(client, platform_image, found[PROVENANCE_MEDIA_TYPE]))
    assert statement["subject"][0]["digest"] == {"sha256": entry["digest"].split(":")[1]}
    dependencies = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
    (base,) = [d for d in dependencies if d["name"] == "base"]
    assert base["uri"].endswith("library/python:3.11-slim")
    pushed_base = client.get_manifest(parse_reference(standin_python))
    candidates = {pushed_base.digest.split(":")[1]}
    if b'"manifests"' in pushed_base.content:
        candidates |= {
            m["digest"].split(":")[1] for m in json.loads(pushed_base.content)["manifests"]
        }
    assert base["digest"]["sha256"] in candidates
