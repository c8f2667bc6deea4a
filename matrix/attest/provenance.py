"""The provenance of a platform image: an in-toto Statement v1 whose predicate is SLSA
provenance v1, built with the in-toto attestation framework's own models.

What a reviewer needs to rebuild and judge the image: the build command, Prefect's
release and commit, the matrix commit that planned it, the lock's digest, and the digest
of every base image it was built on (as resolved dependencies).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp
from in_toto_attestation.predicates.provenance.v1 import provenance_pb2
from in_toto_attestation.v1.resource_descriptor import ResourceDescriptor
from in_toto_attestation.v1.statement import Statement

PROVENANCE_MEDIA_TYPE = "application/vnd.in-toto+json"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
PREDICATE_TYPE_ANNOTATION = "in-toto.io/predicate-type"
# What the build type's parameters mean: this module's docstring and the README.
BUILD_TYPE = "https://github.com/PrefectHQ/matrix/build/podman/v1"
BUILDER_ID = "https://github.com/PrefectHQ/matrix"
PREFECT_SOURCE = "git+https://github.com/PrefectHQ/prefect"


@dataclass(frozen=True)
class BuildFacts:
    """What one platform image was built from and how."""

    image: str  # registry/repository
    digest: str  # the platform image's manifest digest
    platform: str
    command: Sequence[str]
    prefect_version: str = ""
    prefect_commit: str = ""
    matrix_commit: str = ""
    lock_digest: str = ""  # sha256:<hex> of the cell's lock file
    lock_path: str = ""
    # base reference -> the manifest digest of its image for ``platform``
    bases: Mapping[str, str] = field(default_factory=dict)
    build_id: str = ""
    started: datetime | None = None
    finished: datetime | None = None


def matrix_commit(source: Path | None = None) -> str:
    """The commit of the matrix checkout this runs from; empty outside a git checkout."""
    folder = source or Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def _digest_map(digest: str) -> dict[str, str]:
    algorithm, _, value = digest.partition(":")
    return {algorithm: value} if value else {}


def _timestamp(moment: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def provenance_statement(facts: BuildFacts) -> bytes:
    """The in-toto statement (JSON) for the image ``facts`` describe."""
    predicate = provenance_pb2.Provenance()
    definition = predicate.build_definition
    definition.build_type = BUILD_TYPE
    definition.external_parameters.update(
        {
            "command": list(facts.command),
            "platform": facts.platform,
            "prefectVersion": facts.prefect_version,
            "lock": {"path": facts.lock_path, "digest": facts.lock_digest},
        }
    )
    if facts.build_id:
        definition.internal_parameters.update({"buildId": facts.build_id})
    # name, uri, digest: each source the image was made from that the build knows.
    sources = [
        ("prefect", f"{PREFECT_SOURCE}@{facts.prefect_commit}", {"gitCommit": facts.prefect_commit})
        if facts.prefect_commit
        else None,
        ("matrix", f"git+{BUILDER_ID}@{facts.matrix_commit}", {"gitCommit": facts.matrix_commit})
        if facts.matrix_commit
        else None,
        ("lock", facts.lock_path, _digest_map(facts.lock_digest)) if facts.lock_digest else None,
        *(
            ("base", f"docker-image://{base}", _digest_map(digest))
            for base, digest in sorted(facts.bases.items())
        ),
    ]
    dependencies = [
        ResourceDescriptor(uri=uri, digest=digest, name=name).pb
        for name, uri, digest in filter(None, sources)
    ]
    definition.resolved_dependencies.extend(dependencies)
    details = predicate.run_details
    details.builder.id = BUILDER_ID
    if facts.matrix_commit:
        details.builder.version["matrix"] = facts.matrix_commit
    if facts.started:
        details.metadata.started_on.CopyFrom(_timestamp(facts.started))
    if facts.finished:
        details.metadata.finished_on.CopyFrom(_timestamp(facts.finished))
    subject = ResourceDescriptor(name=facts.image, digest=_digest_map(facts.digest)).pb
    statement = Statement([subject], SLSA_PROVENANCE_V1, json_format.MessageToDict(predicate))
    statement.validate()
    return json_format.MessageToJson(statement.pb, indent=2, sort_keys=True).encode() + b"\n"
