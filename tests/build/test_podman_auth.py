"""publish --engine podman to a registry behind basic auth: podman gets matrix's
credentials in a private temporary auth file, and the password shows up nowhere."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from matrix.cli import main
from matrix.reference import ImageReference
from tests.conftest import BASIC_USERS
from tests.support.configs import scratch_release
from tests.support.publishing import tags_of


def test_podman_pushes_with_matrixs_credentials_and_leaks_no_password(
    tmp_path, basic_registry, podman, monkeypatch, capsys
):
    ((user, password),) = BASIC_USERS.items()
    monkeypatch.setenv("MATRIX_REGISTRY_USERNAME", user)
    monkeypatch.setenv("MATRIX_REGISTRY_PASSWORD", password)
    monkeypatch.setenv("MATRIX_REGISTRY_HOSTS", basic_registry.host)
    # Every podman process's argv and auth file, as podman itself saw them.
    bin_dir, log = tmp_path / "bin", tmp_path / "podman-argv.log"
    bin_dir.mkdir()
    wrapper = bin_dir / "podman"
    wrapper.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$*" >> {log}\n'
        f'if [ -n "$REGISTRY_AUTH_FILE" ]; then stat -c "%a %n" "$REGISTRY_AUTH_FILE" '
        f'"$(dirname "$REGISTRY_AUTH_FILE")" >> {log}.modes; fi\n'
        f'exec {podman} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    versions, repository = scratch_release(tmp_path / "config", "auth")
    workdir = tmp_path / "work"
    args = ["publish", "--version", "1.2.3", "--sha", "abcdef1234567", "--config", str(versions)]
    args += ["--registry", basic_registry.host, "--engine", "podman", "--yes"]
    code = main([*args, "--workdir", str(workdir)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "1.2.3-python3.12" in tags_of(ImageReference(basic_registry.host, repository))

    argv = log.read_text()
    assert "manifest push" in argv
    assert password not in argv and password not in captured.out + captured.err
    modes = (Path(f"{log}.modes")).read_text().split("\n")
    assert modes[0].startswith("600 ") and modes[1].startswith("700 ")
    assert list(temp.iterdir()) == [], "the auth file must not outlive the build"
    for path in workdir.rglob("*"):
        if path.is_file() and stat.S_ISREG(path.stat().st_mode):
            assert password.encode() not in path.read_bytes(), path
