"""The release in phases: read, build what is missing, verify, then promote.

Nothing is kept between runs: every run reads the registry, reconciles, and does
only what is missing, so a run that failed or was killed is repaired by running
it again. Floating tags are written last, and only once every image of the
release is verified complete, so no floating tag ever names a partial release.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from matrix.buildid import build_annotations
from matrix.errors import UserError
from matrix.plan import ImageSpec, Plan
from matrix.publish.reconcile import (
    STALE,
    Action,
    Change,
    Inputs,
    conflicts,
    image_problems,
    is_build_of,
    reconcile,
)
from matrix.publish.state import (
    KEY_ANNOTATION,
    REVISION_ANNOTATION,
    VERSION_ANNOTATION,
    ReleaseState,
    RemoteImage,
    read_image,
    read_images,
    read_state,
    reference,
)
from matrix.reference import ImageReference


class PublishConflict(UserError):
    """Immutable tags already name other content; nothing was changed."""


class ReleaseIncomplete(UserError):
    """The release's images are not all complete, so floating tags stay where they are."""


Progress = Callable[[str, str, str], None]  # (image key or "release", phase, message)


def annotations_for(plan: Plan, spec: ImageSpec, inputs: Inputs | None = None) -> dict[str, str]:
    """What matrix writes on every full tag's index, so verify and publish never read
    a blob: version, commit, image key and, when known, the build id and its inputs."""
    annotations = {VERSION_ANNOTATION: plan.version, KEY_ANNOTATION: spec.key}
    if plan.commit:
        annotations[REVISION_ANNOTATION] = plan.commit
    if inputs is not None:
        annotations |= build_annotations(inputs)
    return annotations


@dataclass
class PublishReport:
    version: str
    registry: str  # the primary: it gets the builds
    dry_run: bool
    mirrors: tuple[str, ...] = ()  # the registries that get copies
    changes: list[Change] = field(default_factory=list)
    done: set[tuple[str, str, str]] = field(default_factory=set)  # (registry, repo, tag)
    requests: dict[str, int] = field(default_factory=dict)  # by method, as the client counted
    blob_reads: int = 0  # layers and configs read: what pull limits count
    elapsed: float = 0.0

    @property
    def registries(self) -> tuple[str, ...]:
        return (self.registry, *self.mirrors)

    @property
    def writes(self) -> int:
        return len(self.done)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "registry": self.registry,
            "mirrors": list(self.mirrors),
            "dry_run": self.dry_run,
            "changes": [
                {
                    "registry": c.registry,
                    "image": c.key,
                    "repository": c.target.repository,
                    "tag": c.target.tag,
                    "kind": c.target.kind.value,
                    "action": c.action.value,
                    "from": c.current,
                    "to": c.desired,
                    "reason": c.reason,
                    "done": _written(self, c),
                }
                for c in self.changes
            ],
            "writes": self.writes,
            "requests": self.requests,
            "blob_reads": self.blob_reads,
            "rate_limit": {
                "waited_seconds": round(getattr(self.requests, "waited", 0.0), 3),
                "answers_429": getattr(self.requests, "throttled", 0),
            },
            "elapsed_seconds": round(self.elapsed, 3),
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


def _written(report: PublishReport, change: Change) -> bool:
    return (change.registry, change.target.repository, change.target.tag) in report.done


ImageBuilder = Callable[[ImageSpec], None]  # builds and pushes one image to its full tag


def publish(
    client,
    plan: Plan,
    registry: str,
    build_image: ImageBuilder,
    *,
    mirrors: Sequence[str] = (),
    inputs: Mapping[str, Inputs] | None = None,
    refresh: bool = False,
    only_following: bool = False,
    dry_run: bool = False,
    force: bool = False,
    progress: Progress = lambda key, phase, message: None,
) -> PublishReport:
    """Publish ``plan`` to ``registry`` and copy it to ``mirrors``; ``build_image`` puts
    one image under its full tag in ``registry``. With ``inputs`` (image key -> build
    inputs) an image built from other inputs is a conflict, or with ``refresh`` rebuilt."""
    started = time.monotonic()
    report = PublishReport(plan.version, registry, dry_run, tuple(mirrors))
    states = {r: read_state(client, plan, r) for r in report.registries}
    judge: dict[str, Any] = {
        "force": force,
        "inputs": inputs,
        "refresh": refresh,
        "only_following": only_following,
    }
    report.changes = _reconcile_all(plan, states, **judge)
    earlier: dict[str, set[str]] = {}
    if refresh:
        # A refresh killed half-way left tags on earlier builds: let them follow.
        earlier = _earlier_builds(client, plan, report.changes)
        report.changes = _reconcile_all(plan, states, earlier=earlier, **judge)
    _refuse_conflicts(report.changes)
    _refuse_diverged_mirrors(plan, report, states, force=force, refresh=refresh)
    if dry_run:
        return _finish(report, client, started)

    full = {spec.full_target for spec in plan.images}
    to_build = [
        spec
        for spec in plan.images
        if any(
            c.key == spec.key and c.target == spec.full_target and c.writes
            for c in report.changes
            if c.registry == registry
        )
    ]
    for spec in to_build:
        progress(spec.key, "build", f"building {', '.join(spec.platforms)}")
        build_image(spec)
        report.done.add((registry, spec.full_target.repository, spec.full_target.tag))
        progress(spec.key, "build", f"pushed {reference(registry, spec.full_target)}")

    images = {
        registry: _verified(
            plan, registry, _read_if(to_build, client, plan, states[registry], registry), progress
        )
    }
    for mirror in mirrors:
        _mirror(
            client,
            plan,
            registry,
            mirror,
            images[registry],
            states[mirror],
            report,
            progress,
        )
        copied = any(r == mirror for r, _, _ in report.done)
        images[mirror] = _verified(
            plan, mirror, _read_if(copied, client, plan, states[mirror], mirror), progress
        )
    # Every registry holds the complete release: only now may floating tags move.
    first = {(c.registry, c.target): c for c in report.changes}
    # Images replaced in this run (refreshed, forced): their other tags follow them.
    for change in report.changes:
        if change.target in full and change.current:
            earlier.setdefault(change.key, set()).add(change.current)
    now = _reconcile_all(
        plan,
        {r: ReleaseState(images[r], states[r].tags) for r in report.registries},
        earlier=earlier,
        **judge,
    )
    _refuse_conflicts(now)
    # What the full tags needed (built, copied) stays in the report, not their "keep" now.
    report.changes = [first[(c.registry, c.target)] if c.target in full else c for c in now]
    for r in report.registries:
        _promote(client, plan, r, report, images[r], progress)
    return _finish(report, client, started)


def promote(
    client,
    plan: Plan,
    registry: str,
    *,
    mirrors: Sequence[str] = (),
    dry_run: bool = False,
    progress: Progress = lambda key, phase, message: None,
) -> PublishReport:
    """Point the plan's sha and floating tags at its images in ``registry`` and every
    mirror; every image must be complete in all of them first."""
    started = time.monotonic()
    report = PublishReport(plan.version, registry, dry_run, tuple(mirrors))
    states = {r: read_state(client, plan, r) for r in report.registries}
    report.changes = _reconcile_all(plan, states)
    full = {spec.full_target for spec in plan.images}
    broken = [c for c in report.changes if c.target in full and c.action is not Action.KEEP]
    if broken:
        raise ReleaseIncomplete(
            f"refusing to promote {plan.version}: "
            + "; ".join(f"{c.registry}/{c.target} {c.reason or 'is missing'}" for c in broken)
        )
    _refuse_conflicts(report.changes)
    if dry_run:
        return _finish(report, client, started)
    images = {r: verify_images(client, plan, r, progress) for r in report.registries}
    for r in report.registries:
        _promote(client, plan, r, report, images[r], progress)
    return _finish(report, client, started)


def verify_problems(plan: Plan, state: ReleaseState) -> list[str]:
    """Why the images under the full tags are not the release as planned (empty: they are)."""
    problems = []
    for spec in plan.images:
        name = f"{spec.full_target}"
        image = state.images.get(spec.key)
        if image is None:
            problems.append(f"{name} is missing")
            continue
        found = image_problems(spec, plan, image)
        found += [
            f"has no {annotation} annotation"
            for annotation in annotations_for(plan, spec)
            if annotation not in image.annotations
        ]
        if found:
            problems.append(f"{name} {'; '.join(found)}")
    return problems


def verify_images(client, plan: Plan, registry: str, progress: Progress) -> dict[str, RemoteImage]:
    """Read every full tag afresh; raise ReleaseIncomplete unless each is as planned."""
    return _verified(plan, registry, read_images(client, plan, registry), progress)


def _read_if(changed, client, plan: Plan, state: ReleaseState, registry: str):
    """The full tags afresh when something was written to them, else what was read."""
    return read_images(client, plan, registry) if changed else state.images


def _verified(
    plan: Plan, registry: str, images: dict[str, RemoteImage | None], progress: Progress
) -> dict[str, RemoteImage]:
    problems = verify_problems(plan, ReleaseState(images, {}))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ReleaseIncomplete(
            f"{len(problems)} of {len(plan.images)} images of {plan.version} on {registry} are "
            f"not complete, no floating tag was moved: {problems[0]}{more}"
        )
    progress("release", "verify", f"{len(plan.images)} images complete on {registry}")
    return images  # type: ignore[return-value]  # none is None once verified


def _reconcile_all(plan: Plan, states: dict[str, ReleaseState], **judge) -> list[Change]:
    return [
        change
        for registry, state in states.items()
        for change in reconcile(plan, state, registry=registry, **judge)
    ]


def _refuse_diverged_mirrors(
    plan: Plan,
    report: PublishReport,
    states: dict[str, ReleaseState],
    *,
    force: bool,
    refresh: bool,
) -> None:
    """A mirror's full tag must end up naming the primary's image, byte for byte. It
    may differ now only as an earlier build of the same image, which a refresh
    replaces (a refresh killed between the registries leaves that)."""
    if force:
        return
    primary = states[report.registry].images
    for mirror in report.mirrors:
        for spec in plan.images:
            there = states[mirror].images.get(spec.key)
            here = primary.get(spec.key)
            if there is None or (here is not None and here.digest == there.digest):
                continue
            if refresh and is_build_of(there, plan, spec):
                continue
            raise PublishConflict(
                f"{mirror}/{spec.full_target} = {there.digest}, but "
                f"{report.registry} has {here.digest if here else 'no such image'}: "
                "the mirror would no longer match; rerun with --force-republish to "
                "replace it"
            )


def _earlier_builds(client, plan: Plan, changes: Sequence[Change]) -> dict[str, set[str]]:
    """Image key -> the digests its other tags name that are earlier builds of it (its
    key, version and commit in their annotations): one GET per distinct digest."""
    specs = {spec.key: spec for spec in plan.images}
    full = {spec.full_target for spec in plan.images}
    wanted = sorted(
        {
            (c.key, c.registry, c.target.repository, c.current)
            for c in changes
            if c.target not in full and c.current and c.current != c.desired
        }
    )

    def earlier(item: tuple[str, str, str, str]) -> bool:
        key, registry, repository, digest = item
        image = read_image(client, ImageReference(registry, repository, None, digest))
        return is_build_of(image, plan, specs[key])

    found: dict[str, set[str]] = {}
    for (key, _, _, digest), is_earlier in zip(wanted, client.map(earlier, wanted), strict=True):
        if is_earlier:
            found.setdefault(key, set()).add(digest)
    return found


def _mirror(
    client,
    plan: Plan,
    primary: str,
    mirror: str,
    images: dict[str, RemoteImage],
    state: ReleaseState,
    report: PublishReport,
    progress: Progress,
) -> None:
    """Copy every full tag that differs from the primary's: missing, or replaced on the
    primary in this run (_refuse_diverged_mirrors stopped any other difference)."""
    from matrix.registry import copy

    def mirror_image(spec: ImageSpec) -> None:
        image = images[spec.key]
        there = state.images.get(spec.key)
        if there is not None and there.digest == image.digest:
            return
        source = reference(primary, spec.full_target)
        copy(client, source, reference(mirror, spec.full_target), _as_manifest(image))
        report.done.add((mirror, spec.full_target.repository, spec.full_target.tag))
        progress(spec.key, "mirror", f"copied to {reference(mirror, spec.full_target)}")

    client.map(mirror_image, list(plan.images))


def _promote(
    client,
    plan: Plan,
    registry: str,
    report: PublishReport,
    images: dict[str, RemoteImage],
    progress: Progress,
) -> None:
    """Write the sha and floating tags of ``report.changes`` in ``registry``."""
    from matrix.registry import copy_content

    full = {spec.full_target for spec in plan.images}
    writes = [
        c for c in report.changes if c.writes and c.target not in full and c.registry == registry
    ]
    by_image: dict[str, list[Change]] = {}
    for change in writes:
        by_image.setdefault(change.key, []).append(change)

    def promote_image(key: str) -> None:
        image = images[key]
        spec = next(s for s in plan.images if s.key == key)
        source = reference(registry, spec.full_target)
        prepared: set[str] = set()
        for change in by_image[key]:
            target = reference(registry, change.target)
            if target.repository != source.repository and target.repository not in prepared:
                copy_content(client, source, target, _as_manifest(image))
                prepared.add(target.repository)
            client.put_manifest(target, image.content, image.media_type)
            report.done.add((registry, change.target.repository, change.target.tag))
            progress(key, "promote", f"{change.action.value} {target} -> {image.digest}")

    client.map(promote_image, list(by_image))


def _as_manifest(image: RemoteImage):
    from matrix.registry import Manifest

    return Manifest(image.content, image.media_type, image.digest)


def _refuse_conflicts(changes: Sequence[Change]) -> None:
    found = conflicts(list(changes))
    if found:
        listed = "; ".join(f"{c.registry}/{c.target} = {c.current} ({c.reason})" for c in found[:5])
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        stale = all(c.reason.startswith(STALE) for c in found)
        remedy = "--refresh to rebuild" if stale else "--force-republish to replace"
        tags = "tag already names" if len(found) == 1 else "tags already name"
        raise PublishConflict(
            f"{len(found)} immutable {tags} other content, nothing was changed: "
            f"{listed}{more}; rerun with {remedy} {'it' if len(found) == 1 else 'them'}"
        )


def _finish(report: PublishReport, client, started: float) -> PublishReport:
    report.requests = client.requests.by_method
    report.blob_reads = client.requests.blob_reads
    report.elapsed = time.monotonic() - started
    return report
