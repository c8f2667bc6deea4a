"""The run's settings: resolved once, checked before any work."""

from __future__ import annotations

import pytest

from matrix.cli import main
from matrix.config import load_config
from matrix.data import PACKAGED_CONFIG
from matrix.settings import BuildSettings, registries


def test_the_target_registry_is_the_command_lines_else_versions_tomls():
    loaded = load_config(PACKAGED_CONFIG)
    assert registries(loaded, None).target.host == loaded.config.registry == "docker.io"
    assert registries(loaded, "ghcr.io").target.host == "ghcr.io"


def test_plain_http_only_for_loopback_and_named_insecure_registries():
    found = registries(
        None, "127.0.0.1:5000", mirrors=["lan:5000", "ghcr.io"], insecure=["lan:5000"]
    )
    assert found.target.plain_http
    assert [(m.host, m.plain_http) for m in found.named_mirrors] == [
        ("lan:5000", True),
        ("ghcr.io", False),
    ]
    hub = registries(None, "docker.io").target
    assert not hub.plain_http and hub.endpoint == "registry-1.docker.io"
    assert hub.rate_limit is not None  # Docker Hub is paced from the first request


@pytest.mark.parametrize("flag", ["--registry", "--mirror"])
def test_a_registry_that_is_no_host_is_refused(flag):
    with pytest.raises(ValueError, match=f"{flag}: expected a registry host"):
        registries(None, "https://x" if flag == "--registry" else None, mirrors=["a/b"])


def test_build_settings_refuse_what_does_not_go_together(tmp_path):
    with pytest.raises(ValueError, match="--digests-out records"):
        BuildSettings(digests_out=tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="not a folder"):
        BuildSettings(push_by_digest=True, digests_out=tmp_path / "file")


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--digests", "no-such-folder"], "--digests no-such-folder: not a directory"),
        (["--report", "no/such/folder/report.json"], "--report no/such/folder/report.json"),
        (["--mirror", "not a host"], "--mirror: expected a registry host"),
    ],
)
def test_publish_refuses_bad_flags_before_contacting_a_registry(tmp_path, capsys, flags, message):
    # Port 9 (discard) on loopback: any request would fail with another message.
    code = main(["publish", "--version", "2.11.5", "--registry", "127.0.0.1:9", "--yes", *flags])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.splitlines()) == 1
