"""End to end with real parts: render a FROM scratch fixture, build it with podman for
linux/amd64 and linux/arm64, push to a real registry on 127.0.0.1, and check through
the registry client that the registry holds what the engine reported."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from matrix.config import load_config
from matrix.engines.podman import PodmanEngine
from matrix.engines.requests import build_requests
from matrix.plan import plan_release
from matrix.reference import parse_reference
from matrix.registry import RegistryClient
from matrix.registry.manifests import children, parse_manifest
from matrix.render import render_plan
from tests.support.configs import scratch_release
from tests.support.real_images import is_the_pushed_image

FIXTURE_CONFIG = Path(__file__).with_name("fixtures") / "scratch" / "versions.toml"
PLATFORMS = {"linux/amd64", "linux/arm64"}


def test_podman_builds_both_platforms_and_the_registry_holds_them(
    make_client, tmp_path, registry, podman
):
    loaded = load_config(FIXTURE_CONFIG)
    plan = plan_release(loaded, "1.2.3", commit="abcdef1234567")
    contexts = {c.key: c.path for c in render_plan(plan, loaded, tmp_path / "contexts")}
    requests = build_requests(
        plan,
        contexts,
        registry=registry.host,
        push=True,
        labels={"org.opencontainers.image.url": "https://example.invalid/run/1"},
    )
    requests = [
        dataclasses.replace(r, annotations={"org.opencontainers.image.version": "1.2.3"})
        for r in requests
    ]
    engine = PodmanEngine(tmp_path / "work", tls_verify=False)
    engine.prepare()

    results = [engine.build(request, log=lambda line: None) for request in requests]

    client = make_client()
    for spec, request, result in zip(plan.images, requests, results, strict=True):
        assert len(request.tags) == 2  # full and sha: floating tags are not a build's
        for tag in request.tags:
            index = client.get_manifest(parse_reference(tag))
            assert index.digest == result.digest
        assert index.media_type == "application/vnd.oci.image.index.v1+json"
        index_json = parse_manifest(index.content)
        for entry_json in index_json["manifests"]:
            assert entry_json["annotations"]["org.opencontainers.image.version"] == "1.2.3"
        entries = children(index_json)
        assert {str(e.platform) for e in entries} == PLATFORMS
        assert {str(e.platform): e.digest for e in entries} == dict(result.platform_digests)

        for entry in entries:
            image_ref = parse_reference(f"{request.repository}@{entry.digest}")
            image = parse_manifest(client.get_manifest(image_ref).content)
            config = _config_blob(client, image_ref, image["config"]["digest"])
            assert f"{config['os']}/{config['architecture']}" == str(entry.platform)
            labels = config["config"]["Labels"]
            assert {k: labels[k] for k in spec.labels} == spec.labels
            assert labels["org.opencontainers.image.url"] == "https://example.invalid/run/1"
            assert labels["org.opencontainers.image.revision"] == "abcdef1234567"
            extra = spec.build_args.get("EXTRA_PIP_PACKAGES", "")
            assert labels["io.prefect.extra-packages"] == extra

    # What was pushed is not left behind in podman's local storage.
    assert not engine.client.image.exists(engine.local_image(requests[0], "linux/amd64"))


def _config_blob(client: RegistryClient, ref, digest: str) -> dict:
    # The registry client reads manifests; a config blob is one plain GET away.
    response = client.session(ref.registry).get(
        f"/v2/{ref.repository}/blobs/{digest}", follow_redirects=True
    )
    response.raise_for_status()
    return json.loads(response.content)


def test_push_by_digest_writes_no_tag_and_publish_merges_the_digests(
    make_client, tmp_path, registry, podman, capsys
):
    from matrix.cli import main

    versions, repository = scratch_release(tmp_path / "config", "bydigest")
    common = ["--version", "1.2.3", "--sha", "abcdef1234567", "--config", str(versions)]
    common += ["--registry", registry.host]
    digests = tmp_path / "digests"
    for platform in sorted(PLATFORMS):
        # One job of the GitHub matrix: one image, one platform, its own runner.
        code = main(
            [
                "build",
                *common,
                "--flavor",
                "standard",
                "--platform",
                platform,
                "--engine",
                "podman",
                "--push-by-digest",
                "--digests-out",
                str(digests / platform.replace("/", "-")),
            ]
        )
        assert code == 0, capsys.readouterr().err

    records = [json.loads(p.read_text()) for p in sorted(digests.rglob("*.json"))]
    assert {(r["key"], r["platform"]) for r in records} == {
        ("scratch-python3.12", p) for p in PLATFORMS
    }
    client = make_client()
    # By digest: no image tag; only each image's referrers tag (its SBOM and provenance,
    # on a registry without the referrers API).
    assert sorted(client.list_tags(f"{registry.host}/{repository}")) == sorted(
        r["digest"].replace("sha256:", "sha256-") for r in records
    )
    for record in records:
        image_ref = parse_reference(f"{registry.host}/{repository}@{record['digest']}")
        image = parse_manifest(client.get_manifest(image_ref).content)
        config_json = _config_blob(client, image_ref, image["config"]["digest"])
        assert f"{config_json['os']}/{config_json['architecture']}" == record["platform"]

    code = main(["publish", *common, "--flavor", "standard", "--digests", str(digests), "--yes"])
    assert code == 0, capsys.readouterr().err
    assert main(["verify", *common, "--flavor", "standard"]) == 0
    client = make_client()
    full = client.get_manifest(parse_reference(f"{registry.host}/{repository}:1.2.3-python3.12"))
    entries = children(parse_manifest(full.content))
    assert {str(e.platform): e.digest for e in entries} == {
        r["platform"]: r["digest"] for r in records
    }


def test_keep_local_leaves_the_pushed_image_under_its_tags_to_run(
    tmp_path, registry, podman, capsys
):
    from matrix.cli import main

    versions, repository = scratch_release(tmp_path / "config", "keep")
    code = main(
        [
            "build", "--version", "1.2.3", "--sha", "abcdef1234567", "--config", str(versions),
            "--registry", registry.host, "--flavor", "standard", "--platform", "linux/arm64",
            "--engine", "podman", "--push", "--keep-local",
            # Reproducible builds of the fixture share an image id with other tests'
            # builds in podman's storage: a label of its own keeps this one apart.
            "--label", f"test.image={repository}",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err

    tags = [
        f"{registry.host}/{repository}:{t}" for t in ("1.2.3-python3.12", "sha-abcdef1-python3.12")
    ]
    for tag in tags:
        # The local image is the pushed one: its id is the config digest the registry holds.
        assert is_the_pushed_image(tag)
        (local,) = json.loads(
            subprocess.run(
                [podman, "image", "inspect", tag], capture_output=True, check=True
            ).stdout
        )
        assert (local["Os"], local["Architecture"]) == ("linux", "arm64")
        # Only the pushed tags name it: matrix's local name is gone.
        assert sorted(local["RepoTags"]) == sorted(tags)
    subprocess.run([podman, "image", "rm", *tags], capture_output=True, check=True)


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ("--engine podman", "--keep-local keeps the image --push pushed to its tags: add --push"),
        ("--engine buildx --push", "--keep-local is for --engine podman"),
        ("--engine podman --push --dry-run", "keeps one platform's image under the tags"),
    ],
)
def test_keep_local_is_refused_where_it_cannot_keep_one_pushed_image(flags, message, capsys):
    from matrix.cli import main

    common = ["build", "--version", "1.2.3", "--config", str(FIXTURE_CONFIG), "--keep-local"]
    code = main([*common, *flags.split()])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert message in err
