"""Locks: the exact, hash-checked dependency set each cell installs.

A cell (image key x platform) installs its image's package (``prefect`` or
``prefect-client``) at the planned version with the line's extras, plus the line's
``EXTRA_PIP_PACKAGES``. Resolving that today gives today's dependencies, which is how
a rebuild of 2.11.5 came to import griffe 1.x and fail; so each cell is resolved *as
of* a date that is a fact of the release, with uv (``uv pip compile
--python-version --python-platform --exclude-newer --generate-hashes``), which also
resolves arm64 cells on an amd64 host. The date, in order of preference:

1. the one recorded on the image when it was first built (label and annotation
   ``io.prefect.matrix.resolved-as-of``), so a refresh or republish keeps its lock;
2. else the upload time of the release's own files on the index (PEP 700);
3. else, for a dev build, the modification time of its dist file (the release
   workflow sets it to the commit's time, so every job building a platform of the
   image, and every rerun, locks it alike); for a build before the upload, the time
   of this first build.

``re_resolve`` (``--re-resolve``) takes the current time instead, on purpose.

The locks go into the build context as ``install/requirements-<arch>.lock`` (the
Dockerfile picks its platform's by ``TARGETARCH``, installs it with
``--require-hashes --no-deps`` and keeps it at /opt/prefect/requirements.lock), so
their digests are part of the build id like every context file. A given dist goes
next to them, and its lock line names it by path and hash.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import Version

from matrix.errors import UserError
from matrix.index import DEFAULT_INDEX_URL, Index, upload_time
from matrix.platform import Platform
from matrix.publish.annotations import PINS_ANNOTATION, RESOLVED_AS_OF

if TYPE_CHECKING:
    from matrix.config import LoadedConfig
    from matrix.plan import Plan

INSTALL_FOLDER = "install"
# Where the Dockerfile puts the context's install folder while it installs.
IMAGE_INSTALL_FOLDER = "/tmp/matrix-install"
IMAGE_LOCK_PATH = "/opt/prefect/requirements.lock"
# Docker's TARGETARCH per architecture, and the wheel platform uv resolves for.
_ARCHES = {"amd64": "x86_64-manylinux_2_28", "arm64": "aarch64-manylinux_2_28"}
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class Dist:
    """A wheel or sdist of the image's package, given with --dist."""

    path: Path
    project: str  # canonical name
    version: Version

    @property
    def modified(self) -> datetime:
        """The file's modification time, to the second."""
        return datetime.fromtimestamp(int(self.path.stat().st_mtime), UTC)

    @property
    def sha256(self) -> str:
        with self.path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass(frozen=True)
class ImageLock:
    """One image's locks: platform -> lock text, the date, and the dist they name."""

    as_of: datetime
    locks: Mapping[str, str]
    dist: Dist | None = None
    # Why that date: "recorded" on an earlier build, the "index" upload, a "dist"
    # build's own time, or "re-resolve"; for people.
    as_of_source: str = ""

    def write(self, context: Path) -> None:
        folder = context / INSTALL_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        for platform, text in sorted(self.locks.items()):
            (folder / f"requirements-{arch(platform)}.lock").write_text(text, encoding="utf-8")
        if self.dist is not None:
            shutil.copyfile(self.dist.path, folder / self.dist.path.name)


def arch(platform: str) -> str:
    """Docker's TARGETARCH of ``os/arch[/variant]``; a UserError for one uv cannot lock."""
    try:
        name = Platform.parse(platform).architecture
    except ValueError:
        name = ""
    if name not in _ARCHES:
        raise UserError(f"cannot lock for {platform}: matrix locks {', '.join(_ARCHES)} only")
    return name


def format_as_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_as_of(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else None


def requirements(
    package: str,
    version: str,
    build_args: Mapping[str, str],
    dist: Dist | None = None,
    tools: Sequence[str] = (),
) -> list[str]:
    """What a cell installs, as requirement lines: the package with the line's extras
    (``PREFECT_EXTRAS``), pinned or from the dist, ``EXTRA_PIP_PACKAGES``, and the
    ``tools`` the image carries (uv), pinned as of the release like the rest."""
    extras = build_args.get("PREFECT_EXTRAS", "").strip()
    if dist is not None:
        lines = [f"{package}{extras} @ {dist.path.resolve().as_uri()}"]
    else:
        lines = [f"{package}{extras}=={version}"]
    lines += build_args.get("EXTRA_PIP_PACKAGES", "").split()
    return lines + list(tools)


def read_dist(text: str, package: str, version: str) -> Dist:
    """The dist of ``package`` at ``version`` that --dist names: a wheel or sdist, or a
    folder holding exactly one of that package. Anything else is a UserError."""
    path = Path(text)
    if path.is_dir():
        found = [p for p in sorted(path.iterdir()) if _dist_name(p) is not None]
        mine = [p for p in found if _dist_name(p)[0] == canonicalize_name(package)]
        wheels = [p for p in mine if p.name.endswith(".whl")]
        chosen = wheels or mine
        if len(chosen) != 1:
            raise UserError(
                f"--dist {text}: expected one wheel or sdist of {package} in the folder, "
                f"found {len(chosen)}"
            )
        path = chosen[0]
    elif not path.is_file():
        raise UserError(f"--dist {text}: no such file or folder")
    parsed = _dist_name(path)
    if parsed is None:
        raise UserError(f"--dist {text}: not a wheel (.whl) or sdist (.tar.gz) file name")
    project, found_version = parsed
    if project != canonicalize_name(package):
        raise UserError(f"--dist {text}: a dist of {project}, but this image installs {package}")
    if found_version != Version(version):
        raise UserError(f"--dist {text}: version {found_version}, but the plan builds {version}")
    return Dist(path, project, found_version)


def _dist_name(path: Path) -> tuple[str, Version] | None:
    try:
        if path.name.endswith(".whl"):
            name, version, _, _ = parse_wheel_filename(path.name)
            return str(name), version
        if path.name.endswith(".tar.gz"):
            name, version = parse_sdist_filename(path.name)
            return str(name), version
    except (InvalidWheelFilename, InvalidSdistFilename):
        return None
    return None


def uv_binary() -> str:
    """The uv that the ``uv`` dependency installed (or one on PATH)."""
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        found = shutil.which("uv")
        if found is None:
            raise UserError("uv is not installed: pip install uv") from None
        return found


# uv takes no "never" for a per-package cutoff; any date far ahead is one.
_NO_CUTOFF = "2100-01-01T00:00:00Z"


def compile_argv(
    python: str, platform: str, as_of: datetime, pinned: str | None = None
) -> list[str]:
    """uv's command line for one cell; the index goes in the environment, never here.

    ``pinned`` (the image's own package, pinned to the planned version) is exempt
    from the cut-off: a release first built from its dist, before its upload, keeps
    the date of that build, which its later upload must not fall behind.
    """
    exempt = ["--exclude-newer-package", f"{pinned}={_NO_CUTOFF}"] if pinned else []
    return [
        uv_binary(),
        "pip",
        "compile",
        "-",
        "--python-version",
        python,
        "--python-platform",
        _ARCHES[arch(platform)],
        "--exclude-newer",
        format_as_of(as_of),
        "--generate-hashes",
        "--no-header",
        "--no-annotate",
        "--no-config",
        "--quiet",
        # uv would look for (and download) an interpreter of the target version; the
        # one running matrix resolves for any target version and platform.
        "--python",
        sys.executable,
        "--no-python-downloads",
        *exempt,
    ]


def resolve(
    lines: Sequence[str],
    python: str,
    platform: str,
    as_of: datetime,
    index: Index,
    *,
    dist: Dist | None = None,
    what: str = "",
    pinned: str | None = None,
) -> str:
    """One cell's lock text; a UserError with uv's last line when it cannot resolve."""
    env = {
        **os.environ,
        "UV_DEFAULT_INDEX": index.url,
        "UV_NO_PROGRESS": "1",
    }
    env.pop("UV_INDEX_URL", None)
    process = subprocess.run(
        compile_argv(python, platform, as_of, pinned),
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        env=env,
    )
    if process.returncode != 0:
        detail = [line.strip() for line in process.stderr.splitlines() if line.strip()]
        reason = " ".join(detail[-3:]).replace(index.url, index.shown)
        raise UserError(f"cannot lock {what or lines[0]} for {platform}: {reason}")
    body = _entries(process.stdout)
    if dist is not None:
        body = [
            _dist_entry(dist) if _entry_name(entry) == dist.project else entry for entry in body
        ]
    header = [
        f"# {what or lines[0]}: python {python}, {platform}, as of {format_as_of(as_of)}",
        "# Written by matrix with uv; installed with pip --require-hashes --no-deps.",
    ]
    if index.url.rstrip("/") != DEFAULT_INDEX_URL:
        header.append(f"--index-url {index.shown}")
    return "\n".join([*header, *body]) + "\n"


def _entries(text: str) -> list[str]:
    """uv's output as one text per requirement (its ``\\`` continuation lines joined)."""
    entries: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0].isspace() and entries:
            entries[-1].append(line)
        else:
            entries.append([line])
    return ["\n".join(entry) for entry in entries]


def _entry_name(entry: str) -> str:
    match = _NAME_RE.match(entry)
    return str(canonicalize_name(match[0])) if match else ""


def _dist_entry(dist: Dist) -> str:
    url = f"file://{IMAGE_INSTALL_FOLDER}/{dist.path.name}"
    return f"{dist.project} @ {url} \\\n    --hash=sha256:{dist.sha256}"


def pins(text: str) -> dict[str, str]:
    """Package -> pinned version of a lock (``@sha256:<hex>`` for a file it names)."""
    found = {}
    for entry in _entries(text):
        first = entry.splitlines()[0].rstrip(" \\")
        if first.startswith("-"):
            continue
        name = _entry_name(first)
        if "==" in first:
            found[name] = first.partition("==")[2].split(";")[0].strip()
        elif "@" in first:
            digest = re.search(r"--hash=(sha256:[0-9a-f]+)", entry)
            found[name] = "@" + (digest[1] if digest else first.partition("@")[2].strip())
    return found


def pin_changes(before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """What differs between two pin sets, package by package: ``griffe 0.35.0 -> 1.2.0``."""
    changes = []
    for name in sorted(before.keys() | after.keys()):
        if name not in after:
            changes.append(f"{name} {before[name]} (removed)")
        elif name not in before:
            changes.append(f"{name} {after[name]} (added)")
        elif before[name] != after[name]:
            changes.append(f"{name} {before[name]} -> {after[name]}")
    return changes


def lock_changes(old: str, new: str) -> list[str]:
    """What differs between two lock texts, package by package."""
    return pin_changes(pins(old), pins(new))


# What an image's locks pin, on the image (an annotation) so that the next build can
# say what a new lock changes without reading a blob: ``amd64:anyio==3.7.1;...+arm64:...``.


def encode_pins(lock: ImageLock) -> str:
    return "+".join(
        f"{arch(platform)}:" + ";".join(f"{n}=={v}" for n, v in sorted(pins(text).items()))
        for platform, text in sorted(lock.locks.items())
    )


def decode_pins(text: str) -> dict[str, dict[str, str]]:
    """Arch -> package -> version of ``encode_pins``' text; empty for anything else."""
    found: dict[str, dict[str, str]] = {}
    for part in text.split("+") if text else []:
        name, colon, entries = part.partition(":")
        if not colon:
            return {}
        found[name] = dict(entry.split("==", 1) for entry in entries.split(";") if "==" in entry)
    return found


def changed_pins(annotations: Mapping[str, str], lock: ImageLock) -> list[str]:
    """What ``lock`` changes against the pins an earlier build recorded, per platform:
    ``linux/amd64: griffe 0.35.0 -> 1.2.0``; empty when nothing was recorded."""
    before = decode_pins(annotations.get(PINS_ANNOTATION, ""))
    changes = []
    for platform, text in sorted(lock.locks.items()):
        old = before.get(arch(platform))
        if old is not None:
            changes += [f"{platform}: {c}" for c in pin_changes(old, pins(text))]
    return changes


@dataclass(frozen=True)
class LockRequest:
    """What one image needs locked: its requirements for its Python, on its platforms."""

    key: str
    python: str
    platforms: tuple[str, ...]
    lines: tuple[str, ...]
    what: str = ""
    pinned: str | None = None  # the package pinned to the planned version


@dataclass
class Locker:
    """Locks the images of a plan, each distinct (requirements, python, platform) once."""

    index: Index
    as_of: datetime
    dist: Dist | None = None
    as_of_source: str = ""
    _done: dict[tuple, str] = field(default_factory=dict)

    def lock_all(self, requests: Sequence[LockRequest], workers: int = 4) -> dict[str, ImageLock]:
        """Image key -> locks. uv mostly waits on the index, so a few resolve at once;
        the result does not depend on their order."""
        wanted: dict[tuple, tuple[LockRequest, str]] = {}
        for request in requests:
            for platform in request.platforms:
                key = (request.lines, request.python, arch(platform))
                if key not in self._done:
                    wanted.setdefault(key, (request, platform))

        def one(item: tuple[LockRequest, str]) -> str:
            request, platform = item
            return resolve(
                request.lines,
                request.python,
                platform,
                self.as_of,
                self.index,
                dist=self.dist,
                what=request.what,
                pinned=request.pinned,
            )

        with ThreadPoolExecutor(max_workers=workers) as pool:
            self._done.update(zip(wanted, pool.map(one, wanted.values()), strict=True))
        return {
            request.key: ImageLock(
                self.as_of,
                {
                    p: self._done[(request.lines, request.python, arch(p))]
                    for p in request.platforms
                },
                self.dist,
                self.as_of_source,
            )
            for request in requests
        }


def lock_plan(
    plan: Plan,
    loaded: LoadedConfig,
    index: Index,
    *,
    dist: str | None = None,
    recorded: Mapping[str, datetime] | None = None,
    re_resolve: bool = False,
    wait: float = 0.0,
    progress: Callable[[str], None] | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> dict[str, ImageLock]:
    """Image key -> its locks, for every image whose [images] entry names a ``package``.

    Every check that can fail (a dev build without a dist, a dist of another version,
    a release the index lacks) fails here, before anything is built. ``recorded``
    holds the dates earlier builds carry (image key -> date).
    """
    from matrix.versions import Kind

    recorded = recorded or {}
    specs = [s for s in plan.images if loaded.config.images[s.image].package]
    packages = sorted({loaded.config.images[s.image].package for s in specs})
    if not specs:
        return {}
    if plan.kind == Kind.DEV and dist is None:
        raise UserError(
            f"{plan.version} is a dev build: the package index holds no local versions, "
            "so give the dist built from that commit with --dist PATH"
        )
    dists = (
        {package: read_dist(dist, package, plan.version) for package in packages} if dist else {}
    )
    dates: dict[str, tuple[datetime, str]] = {}
    for package in packages:
        if re_resolve:
            dates[package] = (now(), "re-resolve")
        elif dist and plan.kind == Kind.DEV:
            # The dist file's time, not now: jobs that build the platforms of one
            # image apart, from copies of one dist, lock it alike.
            dates[package] = (dists[package].modified, "dist")
        else:
            try:
                uploaded = upload_time(
                    index, package, plan.version, wait=0.0 if dist else wait, progress=progress
                )
            except UserError:
                if not dist:
                    raise
                dates[package] = (now(), "dist")
            else:
                # uv keeps what was uploaded strictly before the date: a second after
                # the release's newest file keeps the release and nothing later.
                cutoff = uploaded.replace(microsecond=0) + timedelta(seconds=1)
                dates[package] = (cutoff, "index")
    lockers: dict[tuple[str, datetime, str], Locker] = {}
    requests: dict[tuple[str, datetime, str], list[LockRequest]] = {}
    for spec in specs:
        package = loaded.config.images[spec.image].package
        as_of, source = dates[package]
        if spec.key in recorded and not re_resolve:
            as_of, source = recorded[spec.key], "recorded"
        group = (package, as_of, source)
        lockers.setdefault(group, Locker(index, as_of, dists.get(package), source))
        tools = (spec.contents.uv_requirement,) if spec.contents.uv else ()
        lines = requirements(package, plan.version, spec.build_args, dists.get(package), tools)
        what = lines[0] if not dists else f"{package} {plan.version} (dist)"
        request = LockRequest(
            spec.key,
            spec.python,
            spec.platforms,
            tuple(lines),
            what=what,
            pinned=None if dists else package,
        )
        requests.setdefault(group, []).append(request)
    locked: dict[str, ImageLock] = {}
    for group, locker in lockers.items():
        locked |= locker.lock_all(requests[group])
    return {spec.key: locked[spec.key] for spec in specs}


def recorded_dates(images: Mapping[str, Mapping[str, str] | None]) -> dict[str, datetime]:
    """Image key -> the lock date an earlier build recorded among its annotations
    (``images``: image key -> annotations of what its full tag holds, or None)."""
    found = {}
    for key, found_annotations in images.items():
        moment = parse_as_of((found_annotations or {}).get(RESOLVED_AS_OF, ""))
        if moment is not None:
            found[key] = moment
    return found
