"""Lock figures: locking every cell of a release, and installing a lock against
resolving today's dependencies.

Run: python bench/bench_lock.py [--build]
Reaches the package index (PyPI unless MATRIX_INDEX_URL says otherwise).

1. Every cell of 3.4.25 (all Pythons, flavors, images, both platforms) locked with
   uv from a cold uv cache, then again from a warm one.
2. The install step of one image (prefect 3.4.25 on Python 3.11), in a fresh venv
   with pip and no pip cache, both in the same run: the lock installed with
   ``--require-hashes --no-deps`` against ``pip install prefect==3.4.25``, which
   resolves today's dependencies.
3. With --build: the real 2.11.5 and 3.4.25 images (Python 3.11, linux/amd64) built
   with podman on the stand-in base through a base mirror, their build time and
   size as `podman image ls` reports it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from matrix.config import load_config
from matrix.index import index_from
from matrix.lock import lock_plan
from matrix.plan import plan_release

VERSION = "3.4.25"


def lock_every_cell(cache: Path) -> dict:
    loaded = load_config()
    plan = plan_release(loaded, VERSION)
    index = index_from(None, os.environ, loaded.config.index_url)
    os.environ["UV_CACHE_DIR"] = str(cache)
    started = time.perf_counter()
    locks = lock_plan(plan, loaded, index)
    cold = time.perf_counter() - started
    started = time.perf_counter()
    lock_plan(plan, loaded, index)
    warm = time.perf_counter() - started
    cells = sum(len(lock.locks) for lock in locks.values())
    distinct = len({text for lock in locks.values() for text in lock.locks.values()})
    print(
        f"lock {VERSION}: {len(locks)} images, {cells} cells ({distinct} distinct locks): "
        f"cold uv cache {cold:.1f} s, warm {warm:.1f} s"
    )
    return locks


def install_seconds(work: Path, args: list[str]) -> float:
    venv = work / f"venv-{len(list(work.iterdir()))}"
    subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
    # This machine's own wheel folders and extra indexes would be measured too.
    local = ("PIP_FIND_LINKS", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")
    env = {k: v for k, v in os.environ.items() if k not in local}
    started = time.perf_counter()
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "--no-cache-dir", *args],
        check=True,
        env=env,
    )
    return time.perf_counter() - started


def install_step(locks: dict) -> None:
    lock = locks["prefect-python3.11"].locks["linux/amd64"]
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        (work / "requirements.lock").write_text(lock)
        locked = install_seconds(
            work, ["--require-hashes", "--no-deps", "-r", str(work / "requirements.lock")]
        )
        unlocked = install_seconds(work, [f"prefect=={VERSION}"])
    print(
        f"install step, prefect {VERSION} on Python 3.11: locked {locked:.1f} s, "
        f"unlocked (resolving today) {unlocked:.1f} s"
    )


def build_real_images() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support import registry_server, standin_base

    with (
        tempfile.TemporaryDirectory() as folder,
        registry_server.serving(Path(folder)) as server,
    ):
        standin_base.import_and_push(server.host)
        for version in ("2.11.5", VERSION):
            argv = [sys.executable, "-m", "matrix", "build", "--version", version]
            argv += ["--python", "3.11", "--flavor", "standard", "--image", "prefect"]
            argv += ["--platform", "linux/amd64", "--engine", "podman", "--push"]
            argv += ["--registry", server.host, "--base-mirror", f"docker.io={server.host}"]
            started = time.perf_counter()
            subprocess.run(
                argv,
                check=True,
                capture_output=True,
                env={**os.environ, "BUILDAH_ISOLATION": "chroot"},
            )
            took = time.perf_counter() - started
            image = f"{server.host}/prefecthq/prefect:{version}-python3.11"
            subprocess.run(
                ["podman", "pull", "--quiet", "--tls-verify=false", image],
                check=True,
                capture_output=True,
            )
            size = subprocess.run(
                ["podman", "image", "ls", "--format", "{{.Size}}", image],
                check=True,
                capture_output=True,
                text=True,
            ).stdout.strip()
            print(f"real image {version}-python3.11 linux/amd64: built in {took:.0f} s, {size}")


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        locks = lock_every_cell(Path(cache))
    install_step(locks)
    if "--build" in sys.argv[1:]:
        build_real_images()


if __name__ == "__main__":
    main()
