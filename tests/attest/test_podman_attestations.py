"""podman builds get their SBOM and provenance attached by matrix: real podman builds
of the FROM scratch fixture, pushed to the Debian registry (no referrers API), found
again through the fallback tag."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from matrix.attest.image import Attached, attest_image
from matrix.attest.provenance import PROVENANCE_MEDIA_TYPE, SLSA_PROVENANCE_V1
from matrix.attest.referrers import fallback_tag, read_document, referrers
from matrix.attest.sbom import SBOM_MEDIA_TYPE, python_packages
from matrix.config import load_config
from matrix.engines.podman import PodmanEngine
from matrix.engines.requests import build_requests
from matrix.lock import pins
from matrix.plan import plan_release
from matrix.reference import parse_reference
from matrix.render import render_plan
from tests.attest.test_sbom import LOCK, STATUS

FIXTURE_CONFIG = Path(__file__).parents[1] / "build" / "fixtures" / "scratch" / "versions.toml"


def _request(tmp_path, registry_host: str, dpkg_status: str = "", **changes):
    loaded = load_config(FIXTURE_CONFIG)
    plan = plan_release(loaded, "1.2.3", commit="abcdef1234567")
    contexts = render_plan(plan, loaded, tmp_path / "contexts")
    context = contexts[0]
    for arch in ("amd64", "arm64"):
        (context.path / "install").mkdir(exist_ok=True)
        (context.path / "install" / f"requirements-{arch}.lock").write_text(LOCK)
    if dpkg_status:
        (context.path / "status").write_text(dpkg_status)
        dockerfile = context.path / "Dockerfile"
        dockerfile.write_text(dockerfile.read_text() + "\nCOPY status /var/lib/dpkg/status\n")
    paths = {c.key: c.path for c in contexts}
    (request,) = [
        r
        for r in build_requests(plan, paths, registry=registry_host, push=True)
        if r.key == context.key
    ]
    annotations = {
        "org.opencontainers.image.version": "1.2.3",
        "org.opencontainers.image.revision": "abcdef1234567",
    }
    return dataclasses.replace(request, annotations=annotations, **changes)


def _build(tmp_path, request):
    """Build and push ``request`` with real podman, as publish's engine does."""
    engine = PodmanEngine(tmp_path / "work", tls_verify=False)
    engine.prepare()
    return engine.build(request, log=lambda line: None)


def test_every_platform_image_gets_an_sbom_and_a_provenance_statement(
    make_client, tmp_path, registry, podman
):
    request = _request(tmp_path, registry.host, sbom=True, provenance=True)
    result = _build(tmp_path, request)

    client = make_client()
    repository = parse_reference(request.repository)
    assert set(result.platform_digests) == {"linux/amd64", "linux/arm64"}
    for platform, digest in result.platform_digests.items():
        image = repository.with_digest(digest)
        found = {r.artifact_type: r for r in referrers(client, image)}
        assert set(found) == {SBOM_MEDIA_TYPE, PROVENANCE_MEDIA_TYPE}
        # served by the fallback tag: the Debian registry has no referrers API
        assert client.head_manifest(repository.with_tag(fallback_tag(digest))) is not None

        sbom = json.loads(read_document(client, image, found[SBOM_MEDIA_TYPE]))
        assert python_packages(sbom) == pins(LOCK)
        assert sbom["metadata"]["component"]["version"] == digest
        # FROM scratch: no dpkg status, so no Debian package
        assert not [c for c in sbom["components"] if c["purl"].startswith("pkg:deb/")]

        statement = json.loads(read_document(client, image, found[PROVENANCE_MEDIA_TYPE]))
        assert statement["predicateType"] == SLSA_PROVENANCE_V1
        assert statement["subject"][0]["digest"] == {"sha256": digest.removeprefix("sha256:")}
        definition = statement["predicate"]["buildDefinition"]
        assert definition["externalParameters"]["platform"] == platform
        command = definition["externalParameters"]["command"][0]
        assert " podman build --platform " in command  # podman's own command line
        names = {d["name"]: d for d in definition["resolvedDependencies"]}
        assert names["prefect"]["digest"] == {"gitCommit": "abcdef1234567"}
        assert names["lock"]["uri"] == f"install/requirements-{platform.split('/')[1]}.lock"
        artifact = json.loads(
            client.get_manifest(image.with_digest(found[SBOM_MEDIA_TYPE].digest)).content
        )
        assert artifact["subject"]["digest"] == digest
        assert artifact["artifactType"] == SBOM_MEDIA_TYPE


def test_attaching_again_to_the_same_image_writes_nothing(make_client, tmp_path, registry, podman):
    """A rerun, or a reproducible rebuild giving the same digest, finds both attached."""
    request = _request(tmp_path, registry.host, sbom=True, provenance=True)
    built = _build(tmp_path, request)
    client = make_client()
    repository = parse_reference(request.repository)
    platform, digest = sorted(built.platform_digests.items())[0]
    before = client.get_manifest(repository.with_tag(fallback_tag(digest))).digest
    client.requests.reset()

    again = attest_image(client, [podman], request, platform, "gone", digest, ["podman build"])

    assert again == Attached(sbom=None, provenance=None)
    assert client.requests.by_method.get("PUT", 0) == 0
    assert client.get_manifest(repository.with_tag(fallback_tag(digest))).digest == before


def test_the_debian_packages_are_read_from_the_built_images_dpkg_status(
    make_client, tmp_path, registry, podman
):
    request = _request(tmp_path, registry.host, dpkg_status=STATUS, sbom=True)
    result = _build(tmp_path, request)

    client = make_client()
    repository = parse_reference(request.repository)
    for digest in result.platform_digests.values():
        image = repository.with_digest(digest)
        (sbom_referrer,) = referrers(client, image)
        sbom = json.loads(read_document(client, image, sbom_referrer))
        debs = sorted(c["name"] for c in sbom["components"] if c["purl"].startswith("pkg:deb/"))
        assert debs == ["bash", "tzdata"]  # not the one removed
