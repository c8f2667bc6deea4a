"""From a plan and its rendered contexts to the engines' build requests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from matrix.engines.base import BuildRequest, CacheSettings
from matrix.errors import UserError
from matrix.plan import ImageSpec, Plan
from matrix.platform import slug


def build_requests(
    plan: Plan,
    contexts: Mapping[str, Path],
    *,
    registry: str | None = None,
    platforms: Sequence[str] = (),
    push: bool = False,
    push_by_digest: bool = False,
    keep_local: bool = False,
    cache_repository: str | None = None,
    cache_mode: str = "max",
    provenance: bool = False,
    sbom: bool = False,
    labels: Mapping[str, str] | None = None,
    annotations: Mapping[str, Mapping[str, str]] | None = None,
) -> list[BuildRequest]:
    """One request per image. Only immutable tags (full, sha) are pushed by a build:
    floating tags move later, once every image under them is complete. ``annotations``
    (image key -> annotations) come from the render (the lock's date)."""
    host = registry or plan.registry
    push = push or push_by_digest
    requests = []
    for spec in plan.images:
        chosen = _platforms(plan, spec, platforms)
        cache = None
        if cache_repository:
            # One cache per image, and per platform when each platform is built alone:
            # two runners writing one cache ref would overwrite each other.
            suffix = "-" + slug(chosen[0]) if push_by_digest else ""
            ref = f"{host}/{cache_repository}:buildcache-{spec.key}{suffix}"
            cache = CacheSettings(
                cache_from=(ref,), cache_to=ref if push else None, mode=cache_mode
            )
        requests.append(
            BuildRequest(
                key=spec.key,
                context=contexts[spec.key],
                platforms=chosen,
                tags=()
                if push_by_digest
                else tuple(
                    f"{host}/{target}" for target in spec.targets if not target.kind.floating
                ),
                repository=f"{host}/{spec.repository}",
                labels=dict(labels or {}),
                annotations=dict((annotations or {}).get(spec.key, {})),
                build_args=dict(spec.build_args),
                push=push,
                push_by_digest=push_by_digest,
                keep_local=keep_local,
                cache=cache,
                provenance=provenance,
                sbom=sbom,
            )
        )
    return requests


def _platforms(plan: Plan, spec: ImageSpec, wanted: Sequence[str]) -> tuple[str, ...]:
    if not wanted:
        return spec.platforms
    missing = [p for p in wanted if p not in spec.platforms]
    if missing:
        raise UserError(
            f"{plan.version} builds {spec.key} for {', '.join(spec.platforms)} only, "
            f"not {', '.join(missing)}"
        )
    return tuple(p for p in spec.platforms if p in wanted)


def build_epoch(given: int | None, lock_date: datetime | None) -> int:
    """The time an image's timestamps are set to: SOURCE_DATE_EPOCH when given, else
    its lock's date, else 0 (an image without a lock). The lock's date is the
    release's upload to the index (a second after), or the date an earlier build of
    the image recorded: a rebuild of the same release gets the same epoch, and the
    date is already in the Dockerfile's labels, so the build id covers it."""
    if given is not None:
        return given
    return int(lock_date.timestamp()) if lock_date is not None else 0
