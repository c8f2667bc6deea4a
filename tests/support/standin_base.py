"""A stand-in ``python:3.11-slim`` for real-image builds, and running an image here.

Docker Hub is out of reach in the tests, so the base the real templates build on is
made locally: Debian bookworm (whose Python is 3.11) by debootstrap, with a venv at
/usr/local so ``python``, ``python3`` and ``pip`` are in /usr/local/bin as in the
official image. The host's CA bundle goes in and the image's Env points pip and uv
at it, because the package index is reached through a TLS proxy that bundle trusts.

debootstrap takes about a minute, so the rootfs tarball is cached under
``~/.cache/matrix-tests`` (``MATRIX_TESTS_CACHE`` elsewhere), keyed by every input of
the script; the imported image is pushed once per test session.

``podman run`` does not work on these machines (cgroups); ``run_as_docker_would``
reads the image's config and runs Entrypoint + Cmd in a mounted container root under
``unshare`` + ``chroot``, with the image's Env and WorkingDir.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
PACKAGES = ("python3", "python3-venv", "ca-certificates")
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Where the image keeps the host's bundle: apart from the one Debian's
# ca-certificates regenerates, so an apt run in a build cannot drop the proxy's CA.
IMAGE_CA_BUNDLE = "/usr/local/share/matrix-tests-ca.crt"
REPOSITORY = "library/python"
TAG = "3.11-slim"
ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "SSL_CERT_FILE": IMAGE_CA_BUNDLE,
    "PIP_CERT": IMAGE_CA_BUNDLE,
    "REQUESTS_CA_BUNDLE": IMAGE_CA_BUNDLE,
    "UV_NATIVE_TLS": "1",
    # The stand-in's python is a venv over Debian's, and `uv pip install --system`
    # passes venvs by; the official image's /usr/local python is a plain install.
    "UV_PYTHON": "/usr/local/bin/python",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}
# Bumped when the steps below change in a way the key does not see.
RECIPE = 1


def cache_dir() -> Path:
    root = os.environ.get("MATRIX_TESTS_CACHE") or Path.home() / ".cache" / "matrix-tests"
    return Path(root)


def cache_key() -> str:
    """Every input of the rootfs: suite, packages, the CA bundle and the recipe."""
    ca = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.is_file() else b""
    text = json.dumps([RECIPE, SUITE, PACKAGES, hashlib.sha256(ca).hexdigest()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def rootfs_tarball() -> Path:
    """The stand-in's root filesystem as a tarball, made once per cache key."""
    tarball = cache_dir() / f"python-3.11-slim-{cache_key()}.tar"
    if tarball.is_file():
        return tarball
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed: run scripts/test.sh, which installs it")
    tarball.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="standin-", dir=tarball.parent) as work:
        root = Path(work) / "root"
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(root),
            ]
        )
        _run(["chroot", str(root), "python3", "-m", "venv", "/usr/local"])
        if HOST_CA_BUNDLE.is_file():
            shutil.copyfile(HOST_CA_BUNDLE, root / IMAGE_CA_BUNDLE.lstrip("/"))
        # What the slim image leaves out and a build would otherwise carry along.
        for folder in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / folder).glob("*"):
                if entry.is_file():
                    entry.unlink()
        partial = tarball.with_suffix(".partial")
        _run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."])
        partial.rename(tarball)
    return tarball


def import_and_push(registry_host: str, podman: str = "podman") -> str:
    """Import the rootfs into podman and push it as ``REGISTRY/library/python:3.11-slim``;
    the pushed reference."""
    local = f"localhost/matrix-tests/python:{TAG}-{cache_key()}"
    changes = [f"ENV {name}={value}" for name, value in ENV.items()]
    changes.append('CMD ["python3"]')
    argv = [podman, "import"]
    for change in changes:
        argv += ["--change", change]
    _run([*argv, str(rootfs_tarball()), local])
    target = f"{registry_host}/{REPOSITORY}:{TAG}"
    _run([podman, "push", "--tls-verify=false", local, f"docker://{target}"])
    return target


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


def run_as_docker_would(
    image: str,
    command: Sequence[str] = (),
    *,
    env: Mapping[str, str] | None = None,
    stdin: str = "",
    podman: str = "podman",
    timeout: float = 600,
) -> Ran:
    """Run ``image`` as ``docker run [-e K=V] IMAGE [command]`` would: Entrypoint + (command
    or Cmd), the image's Env (``env`` on top) and WorkingDir, in a container's root."""
    exists = subprocess.run([podman, "image", "exists", image], capture_output=True)
    if exists.returncode != 0:
        # Test registries are plain HTTP on loopback.
        _run([podman, "pull", "--quiet", "--tls-verify=false", image])
    config = json.loads(_run([podman, "image", "inspect", image]).stdout)[0]["Config"]
    entrypoint = config.get("Entrypoint") or []
    argv = [*entrypoint, *(command or config.get("Cmd") or [])]
    if not argv:
        raise ValueError(f"{image} has neither Entrypoint nor Cmd, and no command was given")
    variables = dict(item.partition("=")[::2] for item in config.get("Env") or [])
    variables.update(env or {})
    workdir = config.get("WorkingDir") or "/"
    container = _run([podman, "create", image]).stdout.strip()
    try:
        root = _run([podman, "mount", container]).stdout.strip()
        inner = (
            'mount --rbind /dev "$ROOT/dev" && mount -t proc proc "$ROOT/proc" && '
            'touch "$ROOT/etc/resolv.conf" && '
            'mount --bind /etc/resolv.conf "$ROOT/etc/resolv.conf" && '
            'exec chroot "$ROOT" /usr/bin/env -i "$@"'
        )
        cd_then = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', workdir, *argv]
        words = [f"{k}={v}" for k, v in variables.items()]
        process = subprocess.run(
            [
                "unshare",
                "--mount",
                "--fork",
                "--pid",
                "sh",
                "-c",
                inner,
                "sh",
                *words,
                *cd_then,
            ],
            env={**os.environ, "ROOT": root},
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Ran(process.returncode, process.stdout, process.stderr)
    finally:
        subprocess.run([podman, "umount", container], capture_output=True)
        subprocess.run([podman, "rm", "--force", container], capture_output=True)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    process = subprocess.run(argv, capture_output=True, text=True)
    if process.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited with {process.returncode}: {process.stderr[-3000:]}"
        )
    return process
