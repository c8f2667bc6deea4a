"""The buildx driver, by the exact command line python-on-whales produces.

buildx cannot run here (no daemon, no plugin): `client_call` points at
fixtures/fake_docker.py, which records every argv and writes the metadata file
buildx would write, so the digest read-back is exercised too.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from matrix.config import load_config
from matrix.engines import BuildFailed, BuildRequest
from matrix.engines.buildx import BuildxEngine
from matrix.engines.mirrors import BaseMirrors, base_mirrors
from matrix.engines.requests import build_requests
from matrix.errors import UserError
from matrix.plan import plan_release
from tests.build.conftest import FAKE_DOCKER
from tests.conftest import SMALL_CONFIG

COMMIT = "a597971f7156"


def plan_and_contexts(tmp_path: Path, **filters):
    """2.11.5 of the suite's small versions.toml: five images, two Pythons, three flavors."""
    plan = plan_release(load_config(SMALL_CONFIG), "2.11.5", commit=COMMIT, **filters)
    contexts = {spec.key: tmp_path / "contexts" / spec.key for spec in plan.images}
    return plan, contexts


def engine(tmp_path: Path, **options) -> BuildxEngine:
    built = BuildxEngine(tmp_path / "work", client_call=[str(FAKE_DOCKER)], **options)
    built.prepare()
    return built


def test_full_release_pushes_every_image_for_both_platforms(tmp_path, recorder):
    plan, contexts = plan_and_contexts(tmp_path)
    requests = build_requests(plan, contexts, push=True)
    buildx = engine(tmp_path)
    results = [buildx.build(request, log=lambda line: None) for request in requests]

    calls = recorder.calls()
    assert len(calls) == len(plan.images) == 5
    by_key = dict(zip([r.key for r in requests], calls, strict=True))
    work = tmp_path / "work"
    assert by_key["prefect-python3.10"] == [
        "buildx",
        "build",
        "--progress",
        "plain",
        "--build-arg",
        "PYTHON_VERSION=3.10",
        "--build-arg",
        "PREFECT_VERSION=2.11.5",
        "--provenance=false",
        "--pull",
        "--push",
        "--sbom=false",
        "--metadata-file",
        f"{work}/metadata/prefect-python3.10.json",
        "--platform",
        "linux/amd64,linux/arm64",
        "--tag",
        "docker.io/prefecthq/prefect:2.11.5-python3.10",
        "--tag",
        "docker.io/prefecthq/prefect:sha-a597971-python3.10",
        str(contexts["prefect-python3.10"]),
    ]
    # Floating tags (2.11-…, 2-…, 2-latest) are never pushed by a build.
    tags = [call[i + 1] for call in calls for i, word in enumerate(call) if word == "--tag"]
    assert len(tags) == 10
    assert not [t for t in tags if ":2.11-" in t or ":2-" in t]
    kubernetes = by_key["prefect-python3.10-kubernetes"]
    assert (
        kubernetes[kubernetes.index("--build-arg") + 5] == "EXTRA_PIP_PACKAGES=prefect-kubernetes"
    )
    for result, request in zip(results, requests, strict=True):
        metadata = json.loads(buildx.metadata_path(request).read_text())
        assert result.digest == metadata["containerimage.digest"]
        assert result.media_type == "application/vnd.oci.image.index.v1+json"
        assert result.tags == request.tags
    assert len({result.digest for result in results}) == 5


def test_push_by_digest_builds_one_platform_without_tags(tmp_path, recorder):
    plan, contexts = plan_and_contexts(tmp_path, pythons=["3.10"], flavors=["conda"])
    (request,) = build_requests(
        plan, contexts, platforms=["linux/arm64"], push_by_digest=True, registry="ghcr.io"
    )
    result = engine(tmp_path, builder="arm-runner").build(request, log=lambda line: None)

    (call,) = recorder.calls()
    assert call == [
        "buildx",
        "build",
        "--progress",
        "plain",
        "--build-arg",
        "PYTHON_VERSION=3.10",
        "--build-arg",
        "PREFECT_VERSION=2.11.5",
        "--build-arg",
        "BASE_IMAGE=prefect-conda",
        "--builder",
        "arm-runner",
        "--provenance=false",
        "--pull",
        "--sbom=false",
        "--metadata-file",
        f"{tmp_path}/work/metadata/prefect-python3.10-conda-linux-arm64.json",
        "--output",
        "type=image,name=ghcr.io/prefecthq/prefect,push-by-digest=true,"
        "name-canonical=true,push=true",
        "--platform",
        "linux/arm64",
        str(contexts["prefect-python3.10-conda"]),
    ]
    assert result.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert result.platform_digests == {"linux/arm64": result.digest}
    assert result.tags == ()


def test_registry_cache_per_image_and_platform(tmp_path, recorder):
    plan, contexts = plan_and_contexts(tmp_path, pythons=["3.11"], flavors=["standard"])
    (request,) = build_requests(
        plan,
        contexts,
        platforms=["linux/amd64"],
        push_by_digest=True,
        cache_repository="prefecthq/prefect-dev",
        cache_mode="min",
    )
    engine(tmp_path).build(request, log=lambda line: None)

    (call,) = recorder.calls()
    cache = "docker.io/prefecthq/prefect-dev:buildcache-prefect-python3.11-linux-amd64"
    assert call[call.index("--cache-from") : call.index("--cache-to") + 2] == [
        "--cache-from",
        f"type=registry,ref={cache}",
        "--cache-to",
        f"type=registry,ref={cache},mode=min",
    ]


def test_cache_is_only_read_when_not_pushing(tmp_path, recorder):
    plan, contexts = plan_and_contexts(tmp_path, pythons=["3.11"], flavors=["standard"])
    (request,) = build_requests(plan, contexts, cache_repository="prefecthq/prefect-dev")
    result = engine(tmp_path).build(request, log=lambda line: None)

    (call,) = recorder.calls()
    assert "--cache-to" not in call
    assert "--push" not in call
    assert call[call.index("--cache-from") + 1] == (
        "type=registry,ref=docker.io/prefecthq/prefect-dev:buildcache-prefect-python3.11"
    )
    assert result.digest is None


def test_fresh_builder_for_a_loopback_registry(tmp_path, recorder):
    buildx = engine(tmp_path, create_builder=True, insecure_registries=["127.0.0.1:5000"])
    config = tmp_path / "work" / "buildkitd.toml"
    assert recorder.calls()[0] == [
        "buildx",
        "create",
        "--bootstrap",
        "--config",
        str(config),
        "--driver",
        "docker-container",
        "--driver-opt",
        "network=host",
        "--name",
        "matrix",
    ]
    assert config.read_text() == '[registry."127.0.0.1:5000"]\n  http = true\n'
    plan, contexts = plan_and_contexts(tmp_path, pythons=["3.11"], flavors=["standard"])
    (request,) = build_requests(plan, contexts, registry="127.0.0.1:5000", push=True)
    buildx.build(request, log=lambda line: None)
    build = recorder.calls()[-1]
    assert build[build.index("--builder") + 1] == "matrix"


def test_failed_build_names_the_image_and_keeps_the_log_tail(tmp_path, recorder, monkeypatch):
    monkeypatch.setenv("FAKE_DOCKER_FAIL", "prefect-python3.11")
    plan, contexts = plan_and_contexts(tmp_path, pythons=["3.11"], flavors=["standard"])
    (request,) = build_requests(plan, contexts, push=True)
    lines: list[str] = []
    with pytest.raises(BuildFailed) as caught:
        engine(tmp_path).build(request, log=lines.append)
    assert caught.value.key == "prefect-python3.11"
    assert "exited with 1" in str(caught.value)
    assert caught.value.log_tail[-1].endswith("exit code: 1")
    assert lines == list(caught.value.log_tail)


def test_dry_run_shows_the_python_on_whales_call_with_secrets_masked(tmp_path, recorder):
    request = BuildRequest(
        key="prefect-python3.12",
        context=Path("/ctx"),
        platforms=("linux/amd64",),
        tags=("docker.io/prefecthq/prefect:3.4.25-python3.12",),
        repository="docker.io/prefecthq/prefect",
        build_args={"PYTHON_VERSION": "3.12", "VITE_AMPLITUDE_API_KEY": "s3cr3t"},
        push=True,
    )
    buildx = BuildxEngine(Path("/work"), client_call=[str(FAKE_DOCKER)])
    (call,) = buildx.calls(request)
    shown = buildx.show(call)
    assert shown == (
        "docker.buildx.build('/ctx', platforms=['linux/amd64'], labels={}, "
        "build_args={'PYTHON_VERSION': '3.12', 'VITE_AMPLITUDE_API_KEY': '***'}, pull=True, "
        "provenance=False, sbom=False, metadata_file='/work/metadata/prefect-python3.12.json', "
        "progress='plain', stream_logs=True, "
        "tags=['docker.io/prefecthq/prefect:3.4.25-python3.12'], push=True)"
    )
    assert "s3cr3t" not in shown
    assert recorder.calls() == []


def test_push_by_digest_needs_exactly_one_platform(tmp_path):
    plan, contexts = plan_and_contexts(tmp_path, pythons=["3.11"], flavors=["standard"])
    with pytest.raises(UserError, match="one platform at a time"):
        build_requests(plan, contexts, push_by_digest=True)


def test_a_platform_the_line_does_not_build_is_refused(tmp_path):
    plan = plan_release(load_config(), "2.5.0", pythons=["3.10"], flavors=["standard"])
    contexts = {spec.key: tmp_path for spec in plan.images}
    with pytest.raises(UserError, match="linux/amd64 only, not linux/arm64"):
        build_requests(plan, contexts, platforms=["linux/arm64"])


def test_annotations_go_into_the_image_output(tmp_path, recorder):
    plan, contexts = plan_and_contexts(tmp_path, pythons=["3.11"], flavors=["standard"])
    (request,) = build_requests(plan, contexts, push=True)
    request = dataclasses.replace(
        request, annotations={"org.opencontainers.image.version": "2.11.5"}
    )
    engine(tmp_path).build(request, log=lambda line: None)

    (call,) = recorder.calls()
    assert "--push" not in call
    assert call[call.index("--output") + 1] == (
        "type=image,push=true,annotation.org.opencontainers.image.version=2.11.5,"
        "annotation-index.org.opencontainers.image.version=2.11.5"
    )
    assert call.count("--tag") == 2


def test_base_mirror_goes_into_the_new_builders_registry_config(tmp_path, recorder):
    mirrors = BaseMirrors.parse(["docker.io=127.0.0.1:5000", "ghcr.io=mirror.example:443"])
    buildx = engine(
        tmp_path,
        create_builder=True,
        insecure_registries=["127.0.0.1:5000"],
        base_mirrors=mirrors,
    )
    config = tmp_path / "work" / "buildkitd.toml"
    create = recorder.calls()[0]
    assert create[create.index("--config") + 1] == str(config)
    assert create[create.index("--driver-opt") + 1] == "network=host"
    assert config.read_text() == (
        '[registry."docker.io"]\n  mirrors = ["127.0.0.1:5000"]\n'
        '[registry."ghcr.io"]\n  mirrors = ["mirror.example:443"]\n'
        '[registry."127.0.0.1:5000"]\n  http = true\n'
    )
    assert buildx.base_mirrors is mirrors


def test_base_mirror_needs_a_builder_matrix_creates(tmp_path):
    with pytest.raises(
        UserError, match="--base-mirror with --engine buildx needs --create-builder"
    ):
        BuildxEngine(tmp_path, base_mirrors=BaseMirrors.parse(["docker.io=127.0.0.1:5000"]))


@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        ("docker.io", "expected REGISTRY=HOST"),
        ("docker.io=", "expected REGISTRY=HOST"),
        ("docker.io=plain-name", "is not a registry"),
        ("docker.io=http://x", "is not a registry"),
    ],
)
def test_bad_base_mirror_is_one_clear_error(entry, reason):
    with pytest.raises(UserError, match=reason):
        BaseMirrors.parse([entry])


def test_base_mirror_settings_command_line_then_environment_then_config():
    environ = {"MATRIX_BASE_MIRRORS": "docker.io=env.example:5000"}
    configured = ["docker.io=config.example"]
    assert base_mirrors(["index.docker.io=flag.example"], environ, configured).mirrors == {
        "docker.io": "flag.example"
    }
    assert base_mirrors([], environ, configured).mirrors == {"docker.io": "env.example:5000"}
    assert base_mirrors([], {}, configured).mirrors == {"docker.io": "config.example"}


def test_pushed_builds_carry_an_sbom_and_max_provenance_in_the_index(tmp_path, recorder):
    from matrix.settings import BuildSettings

    settings = BuildSettings(push=True)
    assert (settings.attest_sbom, settings.attest_provenance) == (True, True)
    assert not BuildSettings().attest_sbom  # a local build has nothing to attach to
    assert not BuildSettings(push=True, sbom=False).attest_sbom  # --no-sbom
    plan, contexts = plan_and_contexts(tmp_path, pythons=["3.11"], flavors=["standard"])
    (request,) = build_requests(
        plan, contexts, push=True, provenance=settings.attest_provenance, sbom=settings.attest_sbom
    )

    engine(tmp_path).build(request, log=lambda line: None)

    (call,) = recorder.calls()
    assert call[call.index("--provenance") + 1] == "mode=max"
    assert "--sbom=true" in call


def test_a_one_platform_push_with_attestations_annotates_the_index_it_becomes(tmp_path, recorder):
    plan, contexts = plan_and_contexts(tmp_path, pythons=["3.11"], flavors=["standard"])
    (request,) = build_requests(plan, contexts, push=True, platforms=["linux/amd64"], sbom=True)
    request = dataclasses.replace(
        request, annotations={"org.opencontainers.image.version": "2.11.5"}
    )

    engine(tmp_path).build(request, log=lambda line: None)

    (call,) = recorder.calls()
    output = call[call.index("--output") + 1]
    assert "annotation-index.org.opencontainers.image.version=2.11.5" in output.split(",")
