"""Per-platform digests handed from build runners to the publish job.

`matrix build --push-by-digest --digests-out DIR` writes one small JSON file per
image and platform; `matrix publish --digests DIR` reads them all and assembles
each image's index from them. Any file that is not one of ours is an error.
"""

from __future__ import annotations

import json
from pathlib import Path

from matrix.errors import UserError
from matrix.reference import validate_digest


def digest_file_name(key: str, platform: str) -> str:
    return f"{key}@{platform.replace('/', '-')}.json"


def write_digest(folder: Path, key: str, platform: str, digest: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / digest_file_name(key, platform)
    record = {"key": key, "platform": platform, "digest": validate_digest(digest)}
    path.write_text(json.dumps(record) + "\n", encoding="utf-8")
    return path


def read_digests(folder: Path) -> dict[tuple[str, str], str]:
    """(image key, platform) -> digest, from every *.json below ``folder``.

    GitHub's download-artifact puts each artifact in its own subfolder, so the
    search is recursive.
    """
    if not folder.is_dir():
        raise UserError(f"--digests {folder}: not a directory")
    found: dict[tuple[str, str], str] = {}
    for path in sorted(folder.rglob("*.json")):
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
            key, platform = record["key"], record["platform"]
            digest = validate_digest(record["digest"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UserError(f"{path}: not a digest file of matrix build ({error})") from None
        earlier = found.setdefault((key, platform), digest)
        if earlier != digest:
            raise UserError(
                f"{folder} has two digests for {key} on {platform}: {earlier} and {digest}"
            )
    return found
