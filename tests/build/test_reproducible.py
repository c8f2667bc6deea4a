"""Reproducible digests: the same inputs and epoch give the same pushed digest.

podman builds for real (twice, and once with another epoch) and pushes to the real
registry on 127.0.0.1; buildx cannot run here, so its command line and environment
are recorded by fixtures/fake_docker.py behind a small wrapper that notes the epoch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from matrix.config import load_config
from matrix.engines.buildx import BuildxEngine
from matrix.engines.podman import PodmanEngine
from matrix.engines.requests import build_epoch, build_requests
from matrix.errors import UserError
from matrix.plan import plan_release
from matrix.reference import parse_reference
from matrix.registry import RegistryClient
from matrix.render import render_plan
from tests.build.conftest import FAKE_DOCKER, FIXTURES
from tests.support.configs import scratch_release

SCRATCH = FIXTURES / "scratch" / "versions.toml"
EPOCH = 1692907329  # 2023-08-24T20:02:09Z: a second after 2.11.5's upload


@pytest.mark.podman
@pytest.mark.registry
def test_two_podman_builds_of_one_cell_push_the_same_digest(tmp_path, registry, podman):
    loaded = load_config(SCRATCH)
    plan = plan_release(loaded, "1.2.3", commit="abcdef1234567", flavors=["standard"])
    contexts = {c.key: c.path for c in render_plan(plan, loaded, tmp_path / "contexts")}
    (request,) = build_requests(plan, contexts, registry=registry.host, push=True)
    repository = f"{registry.host}/repro-{uuid.uuid4().hex[:8]}/scratch"

    def build(name: str, epoch: int):
        engine = PodmanEngine(tmp_path / "work", tls_verify=False)
        engine.prepare()
        pushed = dataclasses.replace(
            request, tags=(f"{repository}:{name}",), repository=repository, source_date_epoch=epoch
        )
        return engine.build(pushed, log=lambda line: None)

    first, second = build("first", EPOCH), build("second", EPOCH)
    later = build("later", EPOCH + 1)

    assert first.digest == second.digest
    assert dict(first.platform_digests) == dict(second.platform_digests)
    assert later.digest != first.digest
    with RegistryClient() as client:
        for name, result in (("first", first), ("second", second), ("later", later)):
            pushed = client.get_manifest(parse_reference(f"{repository}:{name}"))
            assert pushed.digest == result.digest


def test_buildx_sets_the_epoch_and_rewrites_the_layers_timestamps(tmp_path, recorder):
    epochs = tmp_path / "epochs.jsonl"
    docker = tmp_path / "docker"
    # Notes what SOURCE_DATE_EPOCH the build process sees, then is fake_docker.py.
    docker.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        "if sys.argv[1:3] == ['buildx', 'build']:\n"
        f"    with open({str(epochs)!r}, 'a') as handle:\n"
        "        handle.write(json.dumps(os.environ.get('SOURCE_DATE_EPOCH')) + '\\n')\n"
        f"os.execv({str(FAKE_DOCKER)!r}, [{str(FAKE_DOCKER)!r}, *sys.argv[1:]])\n"
    )
    docker.chmod(0o755)
    plan = plan_release(load_config(), "2.11.5", commit="a597971f7156", pythons=["3.10"])
    contexts = {spec.key: tmp_path / "contexts" / spec.key for spec in plan.images}
    requests = {
        r.key: dataclasses.replace(r, source_date_epoch=EPOCH)
        for r in build_requests(plan, contexts, push=True)
    }
    engine = BuildxEngine(tmp_path / "work", client_call=[str(docker)])
    engine.prepare()
    before = os.environ.get("SOURCE_DATE_EPOCH")

    engine.build(requests["prefect-python3.10"], log=lambda line: None)

    (call,) = recorder.calls()
    work = tmp_path / "work"
    assert call == [
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
        "--sbom=false",
        "--metadata-file",
        f"{work}/metadata/prefect-python3.10.json",
        "--output",
        "type=image,push=true,rewrite-timestamp=true",
        "--platform",
        "linux/amd64,linux/arm64",
        "--tag",
        "docker.io/prefecthq/prefect:2.11.5-python3.10",
        "--tag",
        "docker.io/prefecthq/prefect:sha-a597971-python3.10",
        str(contexts["prefect-python3.10"]),
    ]
    assert [json.loads(line) for line in epochs.read_text().splitlines()] == [str(EPOCH)]
    assert os.environ.get("SOURCE_DATE_EPOCH") == before  # set for the build only


def test_buildx_puts_rewrite_timestamp_beside_annotations_and_push_by_digest(tmp_path):
    plan = plan_release(load_config(), "2.11.5", commit="a597971f7156", pythons=["3.10"])
    contexts = {spec.key: tmp_path / spec.key for spec in plan.images}
    engine = BuildxEngine(tmp_path / "work", client_call=[str(FAKE_DOCKER)])
    (by_digest, *_) = build_requests(plan, contexts, platforms=["linux/arm64"], push_by_digest=True)
    (annotated, *_) = build_requests(
        plan, contexts, push=True, annotations={"prefect-python3.10": {"a.b": "c"}}
    )
    for request, output in (
        (
            by_digest,
            "type=image,name=docker.io/prefecthq/prefect,push-by-digest=true,"
            "name-canonical=true,push=true,rewrite-timestamp=true",
        ),
        (
            annotated,
            "type=image,push=true,annotation.a.b=c,annotation-index.a.b=c,rewrite-timestamp=true",
        ),
    ):
        (call,) = engine.calls(dataclasses.replace(request, source_date_epoch=EPOCH))
        assert call.env == {"SOURCE_DATE_EPOCH": str(EPOCH)}
        assert engine.show(call).endswith(f"# env: SOURCE_DATE_EPOCH={EPOCH}")
        assert _output(call.kwargs["output"]) == output


def _output(fields: dict[str, str]) -> str:
    return ",".join(f"{name}={value}" for name, value in fields.items())


def test_without_an_epoch_buildx_keeps_its_plain_push(tmp_path):
    plan = plan_release(load_config(), "2.11.5", commit="a597971f7156", pythons=["3.10"])
    contexts = {spec.key: tmp_path / spec.key for spec in plan.images}
    (request, *_) = build_requests(plan, contexts, push=True)
    (call,) = BuildxEngine(tmp_path / "work", client_call=[str(FAKE_DOCKER)]).calls(request)
    assert call.env == {}
    assert "output" not in call.kwargs
    assert call.kwargs["push"] is True


def test_a_buildx_build_that_pushes_nothing_keeps_the_default_output(tmp_path):
    plan = plan_release(load_config(), "2.11.5", commit="a597971f7156", pythons=["3.10"])
    contexts = {spec.key: tmp_path / spec.key for spec in plan.images}
    (request, *_) = build_requests(plan, contexts)
    request = dataclasses.replace(request, source_date_epoch=EPOCH)
    (call,) = BuildxEngine(tmp_path / "work", client_call=[str(FAKE_DOCKER)]).calls(request)
    assert call.env == {"SOURCE_DATE_EPOCH": str(EPOCH)}
    assert "output" not in call.kwargs
    assert call.kwargs["push"] is False


def test_the_epoch_is_the_given_one_else_the_lock_date_else_zero():
    lock_date = datetime(2023, 8, 24, 20, 2, 9, tzinfo=UTC)
    assert build_epoch(1700000000, lock_date) == 1700000000
    assert build_epoch(None, lock_date) == EPOCH
    assert build_epoch(None, None) == 0


def test_a_build_takes_its_lock_date_unless_source_date_epoch_is_set(monkeypatch, capsys):
    from matrix.cli import main

    common = ["build", "--version", "2.11.5", "--python", "3.10", "--flavor", "standard"]
    common += ["--engine", "podman", "--dry-run"]
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    assert main(common) == 0
    builds = [line for line in capsys.readouterr().out.splitlines() if " build " in line]
    assert len(builds) == 2
    assert all(f"--timestamp {EPOCH} " in line for line in builds)

    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    assert main(common) == 0
    builds = [line for line in capsys.readouterr().out.splitlines() if " build " in line]
    assert all("--timestamp 1700000000 " in line for line in builds)


def test_a_negative_epoch_is_refused(tmp_path):
    plan = plan_release(load_config(), "2.11.5", commit="a597971f7156", pythons=["3.10"])
    (request, *_) = build_requests(plan, {s.key: tmp_path for s in plan.images})
    with pytest.raises(UserError, match="must not be negative"):
        dataclasses.replace(request, source_date_epoch=-1)


def test_secret_build_args_stay_masked_in_podmans_command_line():
    from matrix.engines.base import BuildRequest

    request = BuildRequest(
        key="k",
        context=Path("/ctx"),
        platforms=("linux/amd64",),
        tags=(),
        repository="127.0.0.1:5000/m/s",
        build_args={"PIP_INDEX_TOKEN": "hunter2", "PYTHON_VERSION": "3.12"},
    )
    engine = PodmanEngine(Path("/work"), run_id="r1")
    shown = engine.show(engine.calls(request)[0])
    assert "--build-arg 'PIP_INDEX_TOKEN=***' --build-arg PYTHON_VERSION=3.12" in shown
    assert "hunter2" not in shown


@pytest.mark.podman
@pytest.mark.registry
def test_check_reproducible_pushes_two_builds_to_a_check_tag_only(
    tmp_path, registry, podman, capsys
):

    from matrix.cli import main

    versions, repository = scratch_release(tmp_path / "config", "check")
    code = main(
        [
            "build",
            "--config",
            str(versions),
            "--version",
            "1.2.3",
            "--flavor",
            "standard",
            "--engine",
            "podman",
            "--registry",
            registry.host,
            "--check-reproducible",
            "--format",
            "json",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    (checked,) = json.loads(captured.out)["checked"]
    tag = f"{registry.host}/{repository}:reproducible-check-1.2.3-python3.12"
    assert checked["tag"] == tag
    assert checked["first"] == checked["second"]
    assert checked["reproducible"] is True
    with RegistryClient() as client:
        assert client.get_manifest(parse_reference(tag)).digest == checked["first"]
        # No release tag moves: the check tag is the only one written.
        # Besides the check tag, only the referrers' fallback tags (sha256-<hex>) of
        # the attestations attached to each build: no release tag.
        listed = client.list_tags(f"{registry.host}/{repository}")
        assert [t for t in listed if not t.startswith("sha256-")] == [tag.rpartition(":")[2]]


@pytest.mark.parametrize("flag", ["--push", "--push-by-digest", "--keep-local", "--dry-run"])
def test_check_reproducible_refuses_a_real_push(flag, capsys):
    from matrix.cli import main

    code = main(["build", "--version", "2.11.5", "--check-reproducible", flag])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip().splitlines() == [
        "matrix: error: --check-reproducible pushes its two builds to check tags only: drop "
        "--push, --push-by-digest, --keep-local and --dry-run"
    ]


@pytest.mark.podman
@pytest.mark.registry
def test_check_reproducible_fails_when_the_two_builds_differ(tmp_path, registry, podman, capsys):
    """A build that fetches something that changes (here a URL answering a new body each
    time) gives two digests: exit 1, and the check says which image."""
    import http.server
    import threading

    from matrix.cli import main

    class Changing(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = uuid.uuid4().hex.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Changing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    versions, _ = scratch_release(tmp_path / "config", "check")
    template = versions.parent / "dockerfiles" / "scratch.Dockerfile.j2"
    url = f"http://127.0.0.1:{server.server_address[1]}/nonce"
    template.write_text(
        template.read_text().replace(
            "COPY hello.txt /hello.txt", f"COPY hello.txt /hello.txt\nADD {url} /nonce"
        )
    )
    try:
        code = main(
            [
                *("build", "--config", str(versions), "--version", "1.2.3"),
                *("--flavor", "standard", "--engine", "podman", "--registry", registry.host),
                *("--check-reproducible", "--format", "json"),
            ]
        )
    finally:
        server.shutdown()
    captured = capsys.readouterr()
    assert code == 1, captured.err
    (checked,) = json.loads(captured.out)["checked"]
    assert checked["reproducible"] is False
    assert checked["first"] != checked["second"]
