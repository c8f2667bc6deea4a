"""Attach an SBOM and a provenance statement to each platform image an engine pushed
without them (podman): the documents are made here, from the build request, the
cell's lock in the build context and the built image's dpkg status."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from matrix.attest.provenance import (
    PREDICATE_TYPE_ANNOTATION,
    PROVENANCE_MEDIA_TYPE,
    SLSA_PROVENANCE_V1,
    BuildFacts,
    matrix_commit,
    provenance_statement,
)
from matrix.attest.referrers import attach, referrers
from matrix.attest.sbom import SBOM_MEDIA_TYPE, dpkg_packages, image_sbom, lock_packages
from matrix.engines.base import BuildRequest
from matrix.errors import UserError
from matrix.lock import INSTALL_FOLDER, arch
from matrix.publish.annotations import (
    BUILD_ID_LABEL,
    BUILD_INPUTS_ANNOTATION,
    REVISION_ANNOTATION,
    VERSION_ANNOTATION,
)
from matrix.reference import parse_reference
from matrix.registry import RegistryClient

DPKG_STATUS = "/var/lib/dpkg/status"


@dataclass(frozen=True)
class Attached:
    sbom: str | None  # the artifact's digest, None when not asked for
    provenance: str | None


def lock_file(request: BuildRequest, platform: str) -> Path | None:
    """The cell's lock in the build context, if the image installs one."""
    try:
        path = request.context / INSTALL_FOLDER / f"requirements-{arch(platform)}.lock"
    except UserError:  # a platform matrix does not lock for: its image has no lock
        return None
    return path if path.is_file() else None


def read_dpkg_status(podman: Sequence[str], image: str) -> str:
    """The image's dpkg status file, read from a container that is created, never run;
    empty for an image without one (FROM scratch, distroless)."""
    created = subprocess.run(
        [*podman, "create", image, "true"], capture_output=True, text=True, check=True
    )
    container = created.stdout.strip().splitlines()[-1]
    try:
        with tempfile.TemporaryDirectory() as folder:
            target = Path(folder) / "status"
            copied = subprocess.run(
                [*podman, "cp", f"{container}:{DPKG_STATUS}", str(target)],
                capture_output=True,
                text=True,
            )
            if copied.returncode != 0 or not target.is_file():
                return ""
            return target.read_text(encoding="utf-8", errors="replace")
    finally:
        subprocess.run([*podman, "rm", "--force", container], capture_output=True)


def _bases(request: BuildRequest, platform: str) -> dict[str, str]:
    from matrix.buildid import decode_inputs

    text = request.annotations.get(BUILD_INPUTS_ANNOTATION)
    if not text:
        return {}
    try:
        record = decode_inputs(text)
    except ValueError:
        return {}
    return {
        base: digests[platform] for base, digests in record["bases"].items() if platform in digests
    }


def _created() -> datetime:
    """SOURCE_DATE_EPOCH when the build is pinned to one, else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
    return datetime.fromtimestamp(int(epoch), UTC) if epoch.isdigit() else datetime.now(UTC)


def attest_image(
    client: RegistryClient,
    podman: Sequence[str],
    request: BuildRequest,
    platform: str,
    local_image: str,
    digest: str,
    command: Sequence[str],
) -> Attached:
    """Attach what ``request`` asks for (sbom, provenance) to ``repository@digest``; a
    document of a kind already attached is not attached twice."""
    image = parse_reference(request.repository).with_digest(digest)
    present = {r.artifact_type for r in referrers(client, image)}
    lock = lock_file(request, platform)
    lock_text = lock.read_text(encoding="utf-8") if lock else ""
    sbom = provenance = None
    if request.sbom and SBOM_MEDIA_TYPE not in present:
        document = image_sbom(
            request.repository,
            digest,
            lock_packages(lock_text),
            dpkg_packages(read_dpkg_status(podman, local_image)),
            _created(),
        )
        sbom = attach(client, image, SBOM_MEDIA_TYPE, document, SBOM_MEDIA_TYPE).digest
    if request.provenance and PROVENANCE_MEDIA_TYPE not in present:
        facts = BuildFacts(
            image=request.repository,
            digest=digest,
            platform=platform,
            command=command,
            prefect_version=request.annotations.get(VERSION_ANNOTATION, ""),
            prefect_commit=request.annotations.get(REVISION_ANNOTATION, ""),
            matrix_commit=matrix_commit(),
            lock_digest="sha256:" + hashlib.sha256(lock_text.encode()).hexdigest() if lock else "",
            lock_path=f"{INSTALL_FOLDER}/{lock.name}" if lock else "",
            bases=_bases(request, platform),
            build_id=request.labels.get(BUILD_ID_LABEL, ""),
            finished=_created(),
        )
        provenance = attach(
            client,
            image,
            PROVENANCE_MEDIA_TYPE,
            provenance_statement(facts),
            PROVENANCE_MEDIA_TYPE,
            {PREDICATE_TYPE_ANNOTATION: SLSA_PROVENANCE_V1},
        ).digest
    return Attached(sbom, provenance)
