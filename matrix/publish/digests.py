"""Per-platform digests handed from build runners to the publish job.

`matrix build --push-by-digest --digests-out DIR` writes one small JSON file per
image and platform: the digest pushed, the build inputs it was built from and what
its lock records (the date it resolved as of, its pins); `matrix publish --digests
DIR` reads them all and assembles each image's index from them, annotated as an
index podman pushes is, so a later refresh keeps the lock and verify compares the
SBOM with it. Any file that is not one of ours is an error, and so are two platform
jobs of one image that built from different inputs (a base image moved between
them): the index would name images that do not belong together.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matrix.buildid import InputsRecord, build_id, decode_inputs, encode_inputs
from matrix.errors import UserError
from matrix.platform import Cell
from matrix.publish.annotations import PINS_ANNOTATION, RESOLVED_AS_OF
from matrix.reference import validate_digest


@dataclass(frozen=True)
class DigestRecord:
    digest: str
    build_inputs: str | None = None  # encode_inputs' text, when the build recorded it
    lock: Mapping[str, str] = field(default_factory=dict)  # its lock's annotations


# The annotations of a build's lock that its digest file hands on to the index.
LOCK_ANNOTATIONS = (RESOLVED_AS_OF, PINS_ANNOTATION)


def digest_file_name(key: str, platform: str) -> str:
    return f"{Cell.of(key, platform)}.json"


def write_digest(
    folder: Path,
    key: str,
    platform: str,
    digest: str,
    inputs: InputsRecord | None = None,
    annotations: Mapping[str, str] | None = None,
) -> Path:
    """The digest file of one platform build; ``annotations``: the build's, of which
    those of its lock are kept."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / digest_file_name(key, platform)
    record: dict[str, Any] = {"key": key, "platform": platform, "digest": validate_digest(digest)}
    if inputs is not None:
        record |= {"build_id": build_id(inputs), "build_inputs": encode_inputs(inputs)}
    lock = {name: value for name, value in (annotations or {}).items() if name in LOCK_ANNOTATIONS}
    if lock:
        record["lock"] = lock
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def read_digests(folder: Path) -> dict[tuple[str, str], DigestRecord]:
    """(image key, platform) -> what its build pushed, from every *.json below ``folder``.

    GitHub's download-artifact puts each artifact in its own subfolder, so the
    search is recursive.
    """
    if not folder.is_dir():
        raise UserError(f"--digests {folder}: not a directory")
    found: dict[tuple[str, str], DigestRecord] = {}
    for path in sorted(folder.rglob("*.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            key, platform = data["key"], data["platform"]
            lock = data.get("lock") or {}
            record = DigestRecord(validate_digest(data["digest"]), data.get("build_inputs"), lock)
            texts = (key, platform, record.build_inputs or "", *lock.values())
            if not all(isinstance(text, str) for text in texts):
                raise ValueError("key, platform, build_inputs and the lock must be strings")
            if set(lock) - set(LOCK_ANNOTATIONS):
                raise ValueError(f"its lock records {sorted(set(lock) - set(LOCK_ANNOTATIONS))}")
            if record.build_inputs is not None:
                inputs = decode_inputs(record.build_inputs)
                if build_id(inputs) != data.get("build_id"):
                    raise ValueError("its build_id does not match its build_inputs")
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UserError(f"{path}: not a digest file of matrix build ({error})") from None
        earlier = found.setdefault((key, platform), record)
        if earlier.digest != record.digest:
            raise UserError(
                f"{folder} has two digests for {key} on {platform}: "
                f"{earlier.digest} and {record.digest}"
            )
    return found


def image_inputs(
    found: Mapping[tuple[str, str], DigestRecord], plan, folder: Path
) -> dict[str, InputsRecord]:
    """Image key -> the build inputs record all its platform jobs agree on."""
    inputs: dict[str, InputsRecord] = {}
    for spec in plan.images:
        texts = {record.build_inputs for record in _platform_records(found, spec)}
        if len(texts) > 1:
            raise UserError(
                f"{folder}: the platform builds of {spec.key} were built from different "
                "inputs (a base image moved between the jobs?): rebuild them"
            )
        if texts and None not in texts:
            inputs[spec.key] = decode_inputs(texts.pop())
    return inputs


def lock_annotations(
    found: Mapping[tuple[str, str], DigestRecord], spec, folder: Path
) -> dict[str, str]:
    """What the lock of ``spec``'s image records, as all its platform jobs agree."""
    locks = [dict(record.lock) for record in _platform_records(found, spec)]
    if any(lock != locks[0] for lock in locks[1:]):
        raise UserError(
            f"{folder}: the platform builds of {spec.key} installed different locks (the "
            "package index changed between the jobs?): rebuild them"
        )
    return locks[0] if locks else {}


def _platform_records(found: Mapping[tuple[str, str], DigestRecord], spec) -> list[DigestRecord]:
    """The digest files of ``spec``'s image found, one per platform job."""
    return [found[(spec.key, p)] for p in spec.platforms if (spec.key, p) in found]
