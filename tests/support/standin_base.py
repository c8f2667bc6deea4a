"""Stand-ins for ``python:3.11-slim`` and ``continuumio/miniconda3`` for real-image
builds, and running an image here.

Docker Hub is out of reach in the tests, so the bases the real templates build on are
made locally from one Debian bookworm (whose Python is 3.11) made by debootstrap:

* python:3.11-slim: Debian's interpreter as the system interpreter, with its PEP 668
  marker (EXTERNALLY-MANAGED) removed, ``python`` and ``python3`` linked into
  /usr/local/bin, and pip 24.0 (what CPython 3.11's ensurepip gives the official image)
  installed into /usr/local, as the official image has a plain interpreter and its own
  pip there; Debian's older pip, slower to read an index page, is shadowed.
  pip and ``uv pip install --system`` (what the uv lines' entrypoint runs) both install
  into /usr/local/lib/python3.11/dist-packages, with commands in /usr/local/bin.
* continuumio/miniconda3: a conda layout at /opt/conda: a Python (Debian's interpreter
  and standard library copied there, with a pip of miniconda's era from /opt/conda/pkgs,
  which every env gets too), a ``conda`` command whose ``create
  --name NAME python=X.Y`` makes /opt/conda/envs/NAME the same way (a real interpreter,
  not a venv, so ``uv pip install --system`` installs into the env it finds first on
  PATH, as in a conda env), and conda's shell activation: /etc/profile.d/conda.sh
  defines the ``conda`` function whose ``activate`` sets PATH, CONDA_PREFIX and
  CONDA_DEFAULT_ENV, and root's ~/.bashrc activates base, as the miniconda image's does.
  DEB_PYTHON_INSTALL_LAYOUT=deb_system makes Debian's interpreter install into its own
  prefix (lib/python3/dist-packages, bin), where conda's puts what it installs.

The host's CA bundle goes in and each image's Env points pip and uv at it, because the
package index is reached through a TLS proxy that bundle trusts.

debootstrap takes about a minute, so its tarball and each rootfs are cached under
``~/.cache/matrix-tests`` (``MATRIX_TESTS_CACHE`` elsewhere), keyed by every input of
the steps, and one process at a time makes them; ``python -m tests.support.standin_base``
makes both ahead of the tests (scripts/test.sh starts it while it installs and lints).
The imported images are pushed once per test session.

``podman run`` does not work on these machines (cgroups); ``run_as_docker_would``
reads the image's config and runs Entrypoint + Cmd in a mounted container root under
``unshare`` + ``chroot``, with the image's Env and WorkingDir.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

SUITE = "bookworm"
PYTHON = "3.11"  # bookworm's
# python3-pip brings distutils, setuptools and wheel, python3-venv ensurepip and venv:
# python:slim's CPython has them all. Their pip is shadowed by the one below.
PACKAGES = ("python3", "python3-pip", "python3-venv", "ca-certificates")
# The pips the stand-ins carry, by sha256 of their wheel on PyPI: python:3.11-slim's
# (CPython 3.11's ensurepip), and one of miniconda 25's time for /opt/conda and its envs.
PIP_WHEELS = {
    "24.0": "ba0d021a166865d2265246961bec0152ff124de910c5cc39f1156ce3fa7c69dc",
    "25.1.1": "2913a38a2abf4ea6b64ab507bd9e967f3b53dc1ede74b01b0931e1ce548751af",
}
SLIM_PIP = "24.0"
CONDA_PIP = "25.1.1"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
# Where the image keeps the host's bundle: apart from the one Debian's
# ca-certificates regenerates, so an apt run in a build cannot drop the proxy's CA.
IMAGE_CA_BUNDLE = "/usr/local/share/matrix-tests-ca.crt"
REPOSITORY = "library/python"
TAG = "3.11-slim"
CONDA_REPOSITORY = "continuumio/miniconda3"
TRUST = {
    "SSL_CERT_FILE": IMAGE_CA_BUNDLE,
    "PIP_CERT": IMAGE_CA_BUNDLE,
    "REQUESTS_CA_BUNDLE": IMAGE_CA_BUNDLE,
    "UV_NATIVE_TLS": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
}
ENV = {
    "PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    **TRUST,
}
CONDA_ENV = {
    "PATH": "/opt/conda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "DEB_PYTHON_INSTALL_LAYOUT": "deb_system",
    **TRUST,
}
# Bumped when the steps below change in a way the keys do not see.
RECIPE = 2

# The stand-in's conda: what Prefect's conda stage runs of it, nothing more.
CONDA_COMMAND = """\
#!/opt/conda/bin/python3
\"\"\"conda as the stand-in miniconda has it: `create --name NAME python=X.Y` installs this
Python (the only one there is) with pip into /opt/conda/envs/NAME; `clean` has nothing
to clean. Anything else is refused, so a template that needs more is noticed.\"\"\"

import glob
import os
import shutil
import subprocess
import sys

ROOT = "/opt/conda"
HAS = "%d.%d" % sys.version_info[:2]


def create(args):
    name, specs = None, []
    while args:
        word = args.pop(0)
        if word in ("--name", "-n"):
            name = args.pop(0)
        elif word.startswith("--name="):
            name = word.split("=", 1)[1]
        elif word in ("--yes", "-y", "--quiet", "-q"):
            continue
        else:
            specs.append(word)
    if not name:
        sys.exit("conda create: --name is required")
    for spec in specs:
        package, _, version = spec.partition("=")
        if package != "python" or (version and not (version + ".").startswith(HAS + ".")):
            sys.exit(
                "PackagesNotFoundError: The following packages are not available from "
                "current channels:\\n  - " + spec
            )
    prefix = os.path.join(ROOT, "envs", name)
    os.makedirs(os.path.join(prefix, "bin"))
    shutil.copy2(sys.executable, os.path.join(prefix, "bin", "python" + HAS))
    for link in ("python", "python3"):
        os.symlink("python" + HAS, os.path.join(prefix, "bin", link))
    shutil.copytree(
        os.path.join(ROOT, "lib", "python" + HAS),
        os.path.join(prefix, "lib", "python" + HAS),
        symlinks=True,
    )
    (wheel,) = glob.glob("/opt/conda/pkgs/pip-*.whl")
    subprocess.run(
        [os.path.join(prefix, "bin", "python"), wheel + "/pip", "install", "--quiet",
         "--no-index", "--no-cache-dir", "--root-user-action=ignore", wheel],
        check=True,
        env={**os.environ, "DEB_PYTHON_INSTALL_LAYOUT": "deb_system"},
    )
    print("# To activate this environment, use\\n#\\n#     $ conda activate " + name)


def main(args):
    if args[:1] == ["create"]:
        return create(args[1:])
    if args[:1] == ["clean"]:
        return None
    if args[:1] in (["--version"], ["-V"]):
        return print("conda 0.0 (matrix tests stand-in)")
    sys.exit("conda (stand-in): not supported: " + " ".join(args))


main(sys.argv[1:])
"""

# conda's shell hook: `conda activate [NAME]` and `conda deactivate` change the shell's
# own environment, everything else is the command's.
CONDA_SH = """\
# conda's shell function, as conda's profile.d script defines one.
CONDA_EXE=/opt/conda/bin/conda
export CONDA_EXE

_conda_leave() {
    if [ -n "${CONDA_PREFIX:-}" ]; then
        PATH=$(printf ':%s:' "$PATH" | sed "s|:${CONDA_PREFIX}/bin:|:|g; s|^:||; s|:\\$||")
    fi
}

conda() {
    case "${1:-}" in
        activate)
            _conda_target=/opt/conda
            if [ -n "${2:-}" ] && [ "$2" != base ]; then
                _conda_target="/opt/conda/envs/$2"
            fi
            if [ ! -d "$_conda_target" ]; then
                echo "EnvironmentNameNotFound: Could not find conda environment: $2" >&2
                return 1
            fi
            _conda_leave
            PATH="$_conda_target/bin:$PATH"
            CONDA_PREFIX=$_conda_target
            CONDA_DEFAULT_ENV=${2:-base}
            CONDA_SHLVL=$((${CONDA_SHLVL:-0} + 1))
            export PATH CONDA_PREFIX CONDA_DEFAULT_ENV CONDA_SHLVL
            ;;
        deactivate)
            _conda_leave
            unset CONDA_PREFIX CONDA_DEFAULT_ENV
            CONDA_SHLVL=0
            export PATH CONDA_SHLVL
            ;;
        *)
            "$CONDA_EXE" "$@"
            ;;
    esac
}
"""


def cache_dir() -> Path:
    root = os.environ.get("MATRIX_TESTS_CACHE") or Path.home() / ".cache" / "matrix-tests"
    return Path(root)


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps([RECIPE, *parts]).encode()).hexdigest()[:16]


def cache_key() -> str:
    """Every input of the python:3.11-slim rootfs: suite, packages, the CA bundle and
    the recipe."""
    ca = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.is_file() else b""
    return _key(SUITE, PACKAGES, hashlib.sha256(ca).hexdigest(), "python", PIP_WHEELS[SLIM_PIP])


def conda_cache_key() -> str:
    ca = HOST_CA_BUNDLE.read_bytes() if HOST_CA_BUNDLE.is_file() else b""
    return _key(
        SUITE,
        PACKAGES,
        hashlib.sha256(ca).hexdigest(),
        "conda",
        CONDA_COMMAND,
        CONDA_SH,
        PIP_WHEELS[CONDA_PIP],
    )


def debootstrap_tarball() -> Path:
    """Debian with the packages both stand-ins start from, made once per key."""
    tarball = cache_dir() / f"debootstrap-{SUITE}-{_key(SUITE, PACKAGES)}.tar"
    if tarball.is_file():
        return tarball
    if shutil.which("debootstrap") is None:
        raise RuntimeError("debootstrap is not installed: run scripts/test.sh, which installs it")
    with _one_maker():
        if tarball.is_file():
            return tarball
        _debootstrap(tarball)
    return tarball


def _debootstrap(tarball: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="debootstrap-", dir=tarball.parent) as work:
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
        _pack(root, tarball)


def rootfs_tarball() -> Path:
    """The python:3.11-slim stand-in's root filesystem, made once per cache key."""
    return _derived(f"python-{TAG}-{cache_key()}.tar", _as_python_slim)


def conda_rootfs_tarball() -> Path:
    """The miniconda3 stand-in's root filesystem, made once per cache key."""
    return _derived(f"miniconda3-{conda_cache_key()}.tar", _as_miniconda)


def _derived(name: str, shape: Callable[[Path], None]) -> Path:
    tarball = cache_dir() / name
    if tarball.is_file():
        return tarball
    base = debootstrap_tarball()
    with _one_maker():
        if not tarball.is_file():
            _derive(base, tarball, shape)
    return tarball


def _derive(base: Path, tarball: Path, shape: Callable[[Path], None]) -> None:
    with tempfile.TemporaryDirectory(prefix="standin-", dir=tarball.parent) as work:
        root = Path(work) / "root"
        root.mkdir()
        _run(["tar", "--numeric-owner", "-C", str(root), "-xf", str(base)])
        shape(root)
        if HOST_CA_BUNDLE.is_file():
            shutil.copyfile(HOST_CA_BUNDLE, root / IMAGE_CA_BUNDLE.lstrip("/"))
        # What the slim images leave out and a build would otherwise carry along.
        for folder in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for entry in (root / folder).glob("*"):
                if entry.is_file():
                    entry.unlink()
        _pack(root, tarball)


@contextlib.contextmanager
def _one_maker() -> Iterator[None]:
    """One process at a time makes what the cache lacks (xdist workers, and the early
    start in scripts/test.sh): the others wait, then find it made. Not reentrant."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with (cache_dir() / "making.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield


def prepare() -> None:
    """Both stand-ins' root filesystems, made ahead of the tests that build on them."""
    rootfs_tarball()
    conda_rootfs_tarball()


def _as_python_slim(root: Path) -> None:
    """Debian's interpreter as python:slim's: no PEP 668 marker, its commands and pip's in
    /usr/local/bin."""
    (root / f"usr/lib/python{PYTHON}/EXTERNALLY-MANAGED").unlink()
    local = root / "usr/local/bin"
    for name in ("python", "python3"):
        (local / name).symlink_to("/usr/bin/python3")
    # Outside Debian's deb_system layout its interpreter installs into /usr/local, which
    # comes first on its sys.path: pip and pip3 there are this pip.
    cached = pip_wheel(SLIM_PIP)
    wheel = root / "tmp" / cached.name
    shutil.copyfile(cached, wheel)
    _install_pip(root, "/usr/bin/python3", f"/tmp/{wheel.name}")
    wheel.unlink()


def _as_miniconda(root: Path) -> None:
    """/opt/conda with a Python, pip, the conda command and its shell activation."""
    conda = root / "opt/conda"
    (conda / "bin").mkdir(parents=True)
    shutil.copy2(root / f"usr/bin/python{PYTHON}", conda / f"bin/python{PYTHON}")
    for link in ("python", "python3"):
        (conda / "bin" / link).symlink_to(f"python{PYTHON}")
    (conda / "lib").mkdir()
    shutil.copytree(root / f"usr/lib/python{PYTHON}", conda / f"lib/python{PYTHON}", symlinks=True)
    (conda / f"lib/python{PYTHON}/EXTERNALLY-MANAGED").unlink()
    (conda / "pkgs").mkdir()
    cached = pip_wheel(CONDA_PIP)
    wheel = conda / "pkgs" / cached.name
    shutil.copyfile(cached, wheel)
    _install_pip(
        root,
        f"/opt/conda/bin/python{PYTHON}",
        f"/opt/conda/pkgs/{wheel.name}",
        env=["DEB_PYTHON_INSTALL_LAYOUT=deb_system"],
    )
    command = conda / "bin/conda"
    command.write_text(CONDA_COMMAND)
    command.chmod(0o755)
    (conda / "etc/profile.d").mkdir(parents=True)
    (conda / "etc/profile.d/conda.sh").write_text(CONDA_SH)
    (root / "etc/profile.d/conda.sh").symlink_to("/opt/conda/etc/profile.d/conda.sh")
    with (root / "root/.bashrc").open("a") as bashrc:
        bashrc.write(". /opt/conda/etc/profile.d/conda.sh\nconda activate\n")


def pip_wheel(version: str) -> Path:
    """pip ``version``'s wheel from the package index, checked against PIP_WHEELS and
    cached with the stand-ins."""
    wheel = cache_dir() / "wheels" / f"pip-{version}-py3-none-any.whl"
    if wheel.is_file():
        return wheel
    wheel.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pip-", dir=wheel.parent) as work:
        _run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                "--only-binary=:all:", "--index-url", "https://pypi.org/simple",
                "--dest", work, f"pip=={version}",
            ]
        )  # fmt: skip
        downloaded = Path(work) / wheel.name
        digest = hashlib.sha256(downloaded.read_bytes()).hexdigest()
        if digest != PIP_WHEELS[version]:
            raise RuntimeError(f"{wheel.name}: sha256 {digest}, expected {PIP_WHEELS[version]}")
        downloaded.rename(wheel)
    return wheel


def _install_pip(root: Path, python: str, wheel: str, env: Sequence[str] = ()) -> None:
    """pip from ``wheel`` (a path inside ``root``) installed by ``python`` in ``root``,
    running pip straight from its wheel, with no index and no bytecode (the official
    images keep none)."""
    _run(
        [
            "chroot", str(root), "/usr/bin/env", *env, python, f"{wheel}/pip", "install",
            "--quiet", "--no-index", "--no-cache-dir", "--no-compile",
            "--root-user-action=ignore", wheel,
        ]
    )  # fmt: skip


def _pack(root: Path, tarball: Path) -> None:
    partial = tarball.with_suffix(".partial")
    _run(["tar", "--numeric-owner", "-C", str(root), "-cf", str(partial), "."])
    partial.rename(tarball)


def import_and_push(registry_host: str, podman: str = "podman") -> str:
    """Import the python stand-in into podman and push it as
    ``REGISTRY/library/python:3.11-slim``; the pushed reference."""
    return _import_and_push(
        rootfs_tarball(),
        f"localhost/matrix-tests/python:{TAG}-{cache_key()}",
        f"{registry_host}/{REPOSITORY}:{TAG}",
        ENV,
        ["python3"],
        podman,
    )


def import_and_push_conda(registry_host: str, tag: str, podman: str = "podman") -> str:
    """Import the miniconda stand-in and push it as ``REGISTRY/continuumio/miniconda3:TAG``
    (the tag the planned line's conda_base names); the pushed reference."""
    return _import_and_push(
        conda_rootfs_tarball(),
        f"localhost/matrix-tests/miniconda3:{conda_cache_key()}",
        f"{registry_host}/{CONDA_REPOSITORY}:{tag}",
        CONDA_ENV,
        ["/bin/bash"],
        podman,
    )


def _import_and_push(
    tarball: Path, local: str, target: str, env: Mapping[str, str], cmd: list[str], podman: str
) -> str:
    changes = [f"ENV {name}={value}" for name, value in env.items()]
    changes.append(f"CMD {json.dumps(cmd)}")
    argv = [podman, "import"]
    for change in changes:
        argv += ["--change", change]
    _run([*argv, str(tarball), local])
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


if __name__ == "__main__":
    prepare()
