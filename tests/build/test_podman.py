"""The podman driver's steps, as --dry-run shows them, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from matrix.engines import BuildFailed, BuildRequest, CacheSettings
from matrix.engines.mirrors import BaseMirrors
from matrix.engines.podman import PodmanEngine, _check_platforms
from matrix.errors import UserError

REQUEST = BuildRequest(
    key="scratch-python3.12",
    context=Path("/ctx"),
    platforms=("linux/amd64", "linux/arm64"),
    tags=("127.0.0.1:5000/m/s:1.2.3-python3.12", "127.0.0.1:5000/m/s:sha-abcdef1-python3.12"),
    repository="127.0.0.1:5000/m/s",
    labels={"a.b": "c"},
    build_args={"PYTHON_VERSION": "3.12"},
    annotations={"org.opencontainers.image.version": "1.2.3"},
    push=True,
    source_date_epoch=1692907329,
)


def test_steps_as_the_dry_run_shows_them():
    engine = PodmanEngine(Path("/work"), tls_verify=False, run_id="r1")
    shown = [engine.show(call) for call in engine.calls(REQUEST)]
    local = "localhost/matrix/scratch-python3.12:r1"
    build = (
        "BUILDAH_LAYERS=false CONTAINERS_REGISTRIES_CONF=/work/registries.conf podman build "
        "--platform linux/{arch} --tag {local}-linux-{arch} --label a.b=c "
        "--build-arg PYTHON_VERSION=3.12 --pull=true --no-cache --network host "
        "--timestamp 1692907329 /ctx"
    )
    assert shown == [
        build.format(arch="amd64", local=local),
        build.format(arch="arm64", local=local),
        f"podman.manifest.create('{local}', [])",
        "podman manifest add --annotation=org.opencontainers.image.version=1.2.3 "
        f"{local} containers-storage:{local}-linux-amd64",
        "podman manifest add --annotation=org.opencontainers.image.version=1.2.3 "
        f"{local} containers-storage:{local}-linux-arm64",
        f"podman.manifest.inspect('{local}')",
        "podman manifest push --all --tls-verify=false --digestfile "
        f"/work/digests/127.0.0.1_5000_m_s_1.2.3-python3.12 {local} "
        "docker://127.0.0.1:5000/m/s:1.2.3-python3.12",
        "podman manifest push --all --tls-verify=false --digestfile "
        f"/work/digests/127.0.0.1_5000_m_s_sha-abcdef1-python3.12 {local} "
        "docker://127.0.0.1:5000/m/s:sha-abcdef1-python3.12",
        "# matrix reads 127.0.0.1:5000/m/s@<digest> back from the registry",
        f"podman.manifest.remove('{local}')",
        f"podman.image.remove(['{local}-linux-amd64', '{local}-linux-arm64'])",
    ]


def test_without_push_the_list_stays_local():
    engine = PodmanEngine(Path("/work"), run_id="r1")
    request = BuildRequest(**{**REQUEST.__dict__, "push": False})
    assert [call.target for call in engine.calls(request)] == [
        "run",
        "run",
        "manifest.create",
        "run",
        "run",
        "manifest.inspect",
    ]


def test_push_by_digest_goes_through_a_layout_and_writes_no_tag():
    engine = PodmanEngine(Path("/work"), tls_verify=False, run_id="r1")
    request = BuildRequest(
        **{**REQUEST.__dict__, "push_by_digest": True, "platforms": ("linux/arm64",), "tags": ()}
    )
    image = "localhost/matrix/scratch-python3.12:r1-linux-arm64"
    layout = "/work/layouts/scratch-python3.12-linux-arm64-r1"
    shown = [engine.show(call) for call in engine.calls(request)]
    assert shown == [
        "BUILDAH_LAYERS=false CONTAINERS_REGISTRIES_CONF=/work/registries.conf podman build "
        f"--platform linux/arm64 --tag {image} --label a.b=c --build-arg PYTHON_VERSION=3.12 "
        "--pull=true --no-cache --network host --timestamp 1692907329 /ctx",
        f"podman push --format oci {image} oci:{layout}:image",
        f"# matrix uploads {layout} to 127.0.0.1:5000/m/s by digest, with no tag",
        f"podman.image.remove(['{image}'])",
    ]


def test_a_registry_cache_is_refused():
    request = BuildRequest(**{**REQUEST.__dict__, "cache": CacheSettings(("r/c:x",))})
    with pytest.raises(UserError, match="cannot do a registry cache: use --engine buildx"):
        PodmanEngine(Path("/work")).calls(request)


def test_a_dropped_platform_fails_the_build():
    with pytest.raises(BuildFailed, match="the list lacks linux/arm64 \\(it has: linux/amd64\\)"):
        _check_platforms(REQUEST, {"linux/amd64"}, "the list")


def test_an_annotation_that_would_break_buildx_output_is_refused():
    with pytest.raises(UserError, match="may not hold a comma"):
        BuildRequest(**{**REQUEST.__dict__, "annotations": {"a.b": "x,push=false"}})


def test_base_mirror_and_isolation_reach_every_build():
    mirrors = BaseMirrors.parse(["docker.io=127.0.0.1:6000", "quay.io=mirror.example"])
    engine = PodmanEngine(
        Path("/work"), tls_verify=False, run_id="r1", base_mirrors=mirrors, isolation="chroot"
    )
    assert engine.registries_conf(REQUEST) == (
        '[[registry]]\nlocation = "127.0.0.1:5000"\ninsecure = true\n'
        '[[registry]]\nprefix = "docker.io"\nlocation = "docker.io"\n'
        '[[registry.mirror]]\nlocation = "127.0.0.1:6000"\ninsecure = true\n'
        '[[registry]]\nprefix = "quay.io"\nlocation = "quay.io"\n'
        '[[registry.mirror]]\nlocation = "mirror.example"\n'
    )
    builds = [c for c in engine.calls(REQUEST) if c.target == "run" and c.args[0][1] == "build"]
    assert len(builds) == 2
    for call in builds:
        assert call.env["CONTAINERS_REGISTRIES_CONF"] == "/work/registries.conf"
        assert call.env["BUILDAH_ISOLATION"] == "chroot"
        assert call.args[0][-5:-3] == ["--network", "host"]


def test_mirror_alone_writes_a_registries_conf(tmp_path):
    engine = PodmanEngine(
        tmp_path, base_mirrors=BaseMirrors.parse(["docker.io=mirror.example:5000"])
    )
    request = BuildRequest(**{**REQUEST.__dict__, "push": False, "context": tmp_path})
    (build, *_) = engine.calls(request)
    assert build.env["CONTAINERS_REGISTRIES_CONF"] == str(tmp_path / "registries.conf")
    engine._write_registries_conf(request)
    assert "mirror.example:5000" in (tmp_path / "registries.conf").read_text()
    assert "insecure" not in (tmp_path / "registries.conf").read_text()


def test_a_dry_run_shows_the_attestations_attached_before_the_clean_up():
    engine = PodmanEngine(Path("/work"), tls_verify=False, run_id="r1")
    request = BuildRequest(
        **{**REQUEST.__dict__, "push_by_digest": True, "platforms": ("linux/arm64",), "tags": ()}
    )
    request = BuildRequest(**{**request.__dict__, "sbom": True, "provenance": True})
    shown = [engine.show(call) for call in engine.calls(request)]
    assert shown[-2:] == [
        "# matrix attaches an SBOM and provenance to each pushed platform image (OCI referrers)",
        "podman.image.remove(['localhost/matrix/scratch-python3.12:r1-linux-arm64'])",
    ]
