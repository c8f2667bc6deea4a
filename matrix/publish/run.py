"""A release in phases: observe the registries once, decide once, then apply.

``observe`` reads what every registry holds for the plan; ``decide`` turns that into
one list of actions (``Build`` or ``Merge`` an image, ``Copy`` it to a mirror, point
a ``Tag`` at it), which a dry run prints and a confirmation counts; ``apply`` runs
them in phases: content, verify, then tags. Nothing is kept between runs, so a run
that failed or was killed is repaired by running it again. Floating tags are
written last, and only once every image of the release is verified complete in
every registry, so no floating tag ever names a partial release. Publish, promote
and refresh are this one machine under another `matrix.settings.Policy`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from packaging.version import Version

from matrix.buildid import InputsRecord
from matrix.errors import UserError
from matrix.plan import ImageSpec, Plan, TagTarget
from matrix.publish.holds import (
    HOLDS_TAG,
    Table,
    read_holds,
    repositories_of,
    write_holds,
)
from matrix.publish.holds import judge as judge_holds
from matrix.publish.reconcile import (
    STALE,
    TO_BUILD,
    Action,
    Change,
    change_to_dict,
    conflicts,
    is_build_of,
    reconcile,
)
from matrix.publish.state import (
    ReleaseState,
    RemoteImage,
    TagLists,
    known_releases,
    read_image,
    read_images,
    read_state,
    reference,
)
from matrix.publish.verify import verify_problems
from matrix.reference import ImageReference
from matrix.registry.ensure import Overtaken
from matrix.settings import PROMOTE, PUBLISH, Policy
from matrix.stopping import checkpoint


class Refusal(UserError):
    """A run that stopped before writing; ``changes``: what it had decided, for --report."""

    def __init__(self, message: str, changes: Sequence[Change] = ()) -> None:
        super().__init__(message)
        self.changes = list(changes)


class PublishConflict(Refusal):
    """Immutable tags already name other content; nothing was changed."""


class ReleaseIncomplete(Refusal):
    """The release's images are not all complete, so floating tags stay where they are."""


Progress = Callable[[str, str, str], None]  # (image key or "release", phase, message)


class ImageBuilder(Protocol):
    """Builds and pushes one image of the plan to the primary registry. A new image goes
    under its full tag (None is returned). One that replaces ``replacing``, the digest
    its full tag names now, is pushed by digest alone and that digest returned: the
    full tag moves to it only once the run has verified it."""

    def __call__(self, spec: ImageSpec, replacing: str | None = None) -> str | None: ...


def quiet(key: str, phase: str, message: str) -> None:
    """A Progress that shows nothing."""


# -- the actions ---------------------------------------------------------------------


@dataclass(frozen=True)
class Build:
    """Build and push one image to its full tag in the primary registry."""

    key: str
    target: TagTarget
    registry: str


@dataclass(frozen=True)
class Merge(Build):
    """Assemble one image's index from the digests its platform builds pushed."""


@dataclass(frozen=True)
class Copy:
    """Copy the primary's image to a mirror's full tag, registry to registry."""

    key: str
    target: TagTarget
    registry: str
    source: str


@dataclass(frozen=True)
class Tag:
    """Point a sha or floating tag at its image, by manifest copy."""

    key: str
    target: TagTarget
    registry: str


Step = Build | Copy | Tag


@dataclass
class Observation:
    """What the registries hold for a plan, read once: primary first."""

    states: dict[str, ReleaseState]
    # Image key -> digests its other tags name that are earlier builds of it (refresh).
    earlier: dict[str, set[str]] = field(default_factory=dict)
    # (registry, repository) -> the floating tags held there by hand (a rollback).
    holds: Table = field(default_factory=dict)
    # registry -> the releases its full tags name, where floating tags can be held.
    known: dict[str, list[Version]] = field(default_factory=dict)

    @property
    def registries(self) -> tuple[str, ...]:
        return tuple(self.states)


@dataclass
class Decision:
    """Every planned tag's change in every registry, and the steps that make them."""

    changes: list[Change]
    steps: list[Step]
    holds: Table = field(default_factory=dict)  # the records to write before any tag
    hold_notes: list[dict[str, Any]] = field(default_factory=list)


# -- the report ----------------------------------------------------------------------


@dataclass
class PublishReport:
    version: str
    registry: str  # the primary: it gets the builds
    dry_run: bool
    mirrors: tuple[str, ...] = ()  # the registries that get copies
    changes: list[Change] = field(default_factory=list)
    holds: list[dict[str, Any]] = field(default_factory=list)  # held, recorded or released
    done: set[tuple[str, str, str]] = field(default_factory=set)  # (registry, repo, tag)
    requests: dict[str, int] = field(default_factory=dict)  # by method, as the client counted
    blob_reads: int = 0  # layers and configs read: what pull limits count
    elapsed: float = 0.0

    @property
    def registries(self) -> tuple[str, ...]:
        return (self.registry, *self.mirrors)

    @property
    def writes(self) -> int:
        """Tags written."""
        return len(self.done)

    @property
    def pending(self) -> int:
        """Tags the changes write: what a dry run would write, and a confirmation counts."""
        return sum(change.writes for change in self.changes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "registry": self.registry,
            "mirrors": list(self.mirrors),
            "dry_run": self.dry_run,
            "changes": [
                change_to_dict(c)
                | {"done": (c.registry, c.target.repository, c.target.tag) in self.done}
                for c in self.changes
            ],
            "holds": self.holds,
            "writes": self.writes,
            "requests": self.requests,
            "blob_reads": self.blob_reads,
            "rate_limit": {
                "waited_seconds": round(getattr(self.requests, "waited", 0.0), 3),
                "answers_429": getattr(self.requests, "throttled", 0),
            },
            "elapsed_seconds": round(self.elapsed, 3),
        }


# -- the machine ---------------------------------------------------------------------


def publish(
    client,
    plan: Plan,
    registry: str,
    build_image: ImageBuilder,
    *,
    mirrors: Sequence[str] = (),
    inputs: Mapping[str, InputsRecord] | None = None,
    policy: Policy | None = None,
    merge: bool = False,
    refresh: bool = False,
    only_following: bool = False,
    force: bool = False,
    dry_run: bool = False,
    confirm: Callable[[PublishReport], None] | None = None,
    progress: Progress = quiet,
    observation: Observation | None = None,
    by: str | None = None,
) -> PublishReport:
    """Publish ``plan`` to ``registry`` and copy it to ``mirrors``; ``build_image`` puts
    one image under its full tag in ``registry`` (``merge``: from pushed digests). With
    ``inputs`` (image key -> build inputs) an image built from other inputs is a
    conflict, or under a refresh policy rebuilt. ``confirm`` sees what would change
    before anything does, and may refuse by raising. ``observation``: the registries as
    the caller already read them with `observe`, which is then not done again. ``by``:
    who decided the floating tags by hand (a rollback), which records holds instead of
    honouring them (`matrix.publish.holds`)."""
    if policy is None:
        policy = Policy(refresh=refresh, force=force, only_following=only_following)
    started = time.monotonic()
    registries = (registry, *(m for m in mirrors if m != registry))
    report = PublishReport(plan.version, registry, dry_run, registries[1:])
    try:
        if observation is None:
            observation = observe(client, plan, registries, policy)
        decision = decide(plan, observation, policy, inputs=inputs, merge=merge, by=by)
        report.changes = decision.changes
        report.holds = decision.hold_notes
        if not dry_run and confirm is not None:
            confirm(replace(report, dry_run=True))
        if not dry_run:
            apply(client, plan, observation, decision, build_image, report, progress)
        checkpoint()  # a signal after the last write still ends the run as cancelled
    except Exception as error:
        # What was done before the failure: --report is written with it, and the error.
        if isinstance(error, Refusal) and not report.changes:
            report.changes = error.changes
        error.report = _finish(report, client, started)  # type: ignore[attr-defined]
        raise
    return _finish(report, client, started)


def partial_report(error: BaseException) -> PublishReport | None:
    """The report of the run ``error`` ended, as far as it got, if it was one."""
    return getattr(error, "report", None)


def promote(
    client,
    plan: Plan,
    registry: str,
    *,
    mirrors: Sequence[str] = (),
    dry_run: bool = False,
    confirm: Callable[[PublishReport], None] | None = None,
    progress: Progress = quiet,
    by: str = "an unnamed operator",
) -> PublishReport:
    """Point the plan's sha and floating tags at its images in ``registry`` and every
    mirror; every image must be complete in all of them first. Floating tags moved
    back behind the newest release of their line are held there, by ``by``."""

    def refuse(spec: ImageSpec, replacing: str | None = None) -> str | None:
        raise AssertionError(f"promote builds nothing, not {spec.key}")

    return publish(
        client,
        plan,
        registry,
        refuse,
        mirrors=mirrors,
        policy=PROMOTE,
        dry_run=dry_run,
        confirm=confirm,
        progress=progress,
        by=by,
    )


def observe(
    client,
    plan: Plan,
    registries: Sequence[str],
    policy: Policy = PUBLISH,
    listed: TagLists | None = None,
) -> Observation:
    """One GET per image and one HEAD per other tag in every registry; under a refresh,
    one GET more per distinct digest a tag names besides its image's. ``listed``: the
    tag lists the run has read already (planning), not read again."""
    states = {r: read_state(client, plan, r) for r in registries}
    earlier = _earlier_builds(client, plan, states) if policy.refresh else {}
    holds, known = _read_holds(client, plan, registries, listed or {})
    return Observation(states, earlier, holds, known)


def _read_holds(
    client, plan: Plan, registries: Sequence[str], listed: TagLists
) -> tuple[Table, dict[str, list[Version]]]:
    """The holds where the plan has floating tags, and the releases each registry
    holds there: a tag list per repository (unless ``listed``), and a GET where a
    holds record is."""
    pairs = [(r, repo) for r in registries for repo in repositories_of(plan)]

    def tags(pair: tuple[str, str]) -> list[str]:
        if pair in listed:
            return listed[pair]
        return client.list_tags(ImageReference(*pair))

    lists = client.map(tags, pairs)
    holds = client.map(
        lambda item: read_holds(client, *item[0], item[1]), list(zip(pairs, lists, strict=True))
    )
    known: dict[str, list[Version]] = {}
    for (registry, _), tags in zip(pairs, lists, strict=True):
        known.setdefault(registry, []).extend(known_releases([tags]))
    return dict(zip(pairs, holds, strict=True)), known


def decide(
    plan: Plan,
    observation: Observation,
    policy: Policy = PUBLISH,
    *,
    inputs: Mapping[str, InputsRecord] | None = None,
    merge: bool = False,
    by: str | None = None,
) -> Decision:
    """What every tag needs and the steps that do it; raises, changing nothing, on a
    conflict or (when the policy builds nothing) an incomplete release. Held floating
    tags are left alone, unless ``by`` (by hand), when the holds are set anew."""
    primary, *mirrors = observation.registries
    judge: dict[str, Any] = {
        "force": policy.force,
        "inputs": inputs,
        "refresh": policy.refresh,
        "only_following": policy.only_following,
    }
    state = observation.states[primary]
    changes = reconcile(plan, state, registry=primary, earlier=observation.earlier, **judge)
    full = {spec.full_target for spec in plan.images}
    # What each image's full tag will name once the content phase is done (None: the
    # digest of a build still to come), the image it is now, and so what mirrors hold.
    after = {c.key: c.desired for c in changes if c.target in full}
    held = {key: state.images[key] if digest else None for key, digest in after.items()}
    for mirror in mirrors:
        there = observation.states[mirror]
        earlier = {key: set(observation.earlier.get(key, ())) for key in after}
        for key, image in there.images.items():
            if image is not None and image.digest != after[key]:
                earlier[key].add(image.digest)  # replaced by the copy: its tags follow
        future = ReleaseState(dict(held), there.tags)
        for change in reconcile(plan, future, registry=mirror, earlier=earlier, **judge):
            if change.target in full:
                change = _mirror_change(change, there.images.get(change.key), after, primary)
            changes.append(change)
    if not policy.build:
        broken = [c for c in changes if c.target in full and c.action is not Action.KEEP]
        if broken:
            raise ReleaseIncomplete(
                f"refusing to promote {plan.version}: "
                + "; ".join(f"{c.registry}/{c.target} {c.reason or 'is missing'}" for c in broken),
                changes,
            )
    judged = judge_holds(plan, changes, observation.holds, by=by, known=observation.known)
    changes = judged.changes
    _refuse_conflicts(changes)
    _refuse_diverged_mirrors(plan, observation, policy, changes)
    steps = [_step(c, full, primary, merge) for c in changes if c.writes]
    return Decision(changes, steps, judged.records, judged.notes)


def apply(
    client,
    plan: Plan,
    observation: Observation,
    decision: Decision,
    build_image: ImageBuilder,
    report: PublishReport,
    progress: Progress = quiet,
) -> None:
    """Content (builds, then copies to each mirror), verify each registry, then tags.
    An image that replaces another is pushed to the primary by digest, and its full
    tag moves to it once the primary is verified, before the mirrors copy it."""
    primary, *mirrors = observation.registries
    specs = {spec.key: spec for spec in plan.images}
    built = [s for s in decision.steps if isinstance(s, Build)]
    observed = observation.states[primary].images
    staged: dict[str, str] = {}  # image key -> the digest pushed untagged, to replace its own
    for step in built:
        spec = specs[step.key]
        seen = getattr(observed.get(spec.key), "digest", None)
        checkpoint()
        if not _still(client, reference(primary, step.target), seen, progress, spec.key):
            continue
        progress(spec.key, "build", f"building {', '.join(spec.platforms)}")
        try:
            digest = build_image(spec, seen)
        except Overtaken as error:
            _adopt(spec.key, error.target, error.now, progress)
            continue
        if digest is None:
            report.done.add((primary, step.target.repository, step.target.tag))
            progress(spec.key, "build", f"pushed {reference(primary, step.target)}")
        else:
            staged[spec.key] = digest
            progress(spec.key, "build", f"pushed {primary}/{spec.repository}@{digest}")
    images = {primary: _verify(client, plan, primary, observation, bool(built), progress, staged)}
    # Verified: the replaced images' full tags move now, so the mirrors copy from them
    # and no sha or floating tag below names an image its full tag does not.
    _move_full_tags(client, plan, primary, staged, images[primary], observation, report, progress)
    for mirror in mirrors:
        copies = [s for s in decision.steps if isinstance(s, Copy) and s.registry == mirror]
        there = observation.states[mirror].images
        client.map(
            lambda step, there=there: _copy(client, step, images[primary], there, report, progress),
            copies,
        )
        images[mirror] = _verify(client, plan, mirror, observation, bool(copies), progress, {})
    # Every registry holds the complete release: only now may floating tags move. A
    # rollback is recorded before its tags move back, and a hold cleared before they
    # move forward, so a run stopped in between leaves nothing a rerun would undo.
    for (registry, repository), holds in decision.holds.items():
        checkpoint()
        write_holds(client, registry, repository, holds)
        progress("release", "hold", f"{registry}/{repository}:{HOLDS_TAG}: {len(holds)} held")
    report.changes = [_settled(c, images) for c in decision.changes]
    tags = [s for s in decision.steps if isinstance(s, Tag)]
    for registry in observation.registries:
        _write_tags(
            client,
            plan,
            registry,
            [t for t in tags if t.registry == registry],
            images[registry],
            report,
            progress,
        )


def _step(change: Change, full: set[TagTarget], primary: str, merge: bool) -> Step:
    if change.target not in full:
        return Tag(change.key, change.target, change.registry)
    if change.registry != primary:
        return Copy(change.key, change.target, change.registry, primary)
    return (Merge if merge else Build)(change.key, change.target, primary)


def _mirror_change(
    change: Change, there: RemoteImage | None, after: Mapping[str, str | None], primary: str
) -> Change:
    """A mirror's full tag names the primary's image, or gets a copy of it."""
    desired = after[change.key]
    if there is not None and there.digest == desired:
        return replace(change, action=Action.KEEP, current=desired, reason="")
    action = Action.CREATE if there is None else Action.MOVE
    reason = change.reason if change.action is not Action.KEEP else ""
    reason = reason or f"a copy of {primary}'s image"
    return replace(change, action=action, current=there and there.digest, reason=reason)


def _settled(change: Change, images: Mapping[str, Mapping[str, RemoteImage]]) -> Change:
    """The change with the digest its image has now that the content is in place; a
    tag that already names it (a rebuild gave the same digest) is kept."""
    digest = images[change.registry][change.key].digest
    if change.desired == digest or not change.writes:
        return change
    if change.current == digest:
        return replace(change, action=Action.KEEP, desired=digest, reason="")
    return replace(
        change, desired=digest, reason="pushed" if change.reason == TO_BUILD else change.reason
    )


def _verify(
    client,
    plan: Plan,
    registry: str,
    observation: Observation,
    written: bool,
    progress: Progress,
    staged: Mapping[str, str],
) -> dict[str, RemoteImage]:
    """The full tags afresh when something was written to them, else as observed, and
    the images ``staged`` to replace theirs; raise ReleaseIncomplete unless each is as
    planned."""
    state = observation.states[registry]
    images = read_images(client, plan, registry, staged) if written else state.images
    problems = verify_problems(plan, ReleaseState(images, {}))
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ReleaseIncomplete(
            f"{len(problems)} of {len(plan.images)} images of {plan.version} on {registry} are "
            f"not complete, no floating tag was moved: {problems[0]}{more}"
        )
    progress("release", "verify", f"{len(plan.images)} images complete on {registry}")
    return images  # type: ignore[return-value]  # none is None once verified


def _move_full_tags(
    client,
    plan: Plan,
    registry: str,
    replacing: Mapping[str, str],
    images: Mapping[str, RemoteImage],
    observation: Observation,
    report: PublishReport,
    progress: Progress,
) -> None:
    """Point the full tag of each image in ``replacing`` (pushed by digest, verified) at
    it, unless another writer moved the tag since the run read it. The image it
    replaces stays in the repository, pullable by its digest."""
    from matrix.registry import RegistrySource, ensure

    specs = {spec.key: spec for spec in plan.images}
    was = observation.states[registry].images

    def move(key: str) -> None:
        target = reference(registry, specs[key].full_target)
        image = images[key]
        ensure(
            client,
            RegistrySource(target.with_digest(image.digest)),
            [target],
            _as_manifest(image),
            expected={target: getattr(was.get(key), "digest", None)},
        )
        report.done.add((registry, target.repository, target.tag))
        progress(key, "promote", f"move {target} -> {image.digest}")

    client.map(move, list(replacing))


def _refuse_diverged_mirrors(
    plan: Plan, observation: Observation, policy: Policy, changes: Sequence[Change]
) -> None:
    """A mirror's full tag must end up naming the primary's image, byte for byte. It
    may differ now only as an earlier build of the same image, which a refresh
    replaces (a refresh killed between the registries leaves that)."""
    if policy.force:
        return
    primary, *mirrors = observation.registries
    images = observation.states[primary].images
    for mirror in mirrors:
        for spec in plan.images:
            there = observation.states[mirror].images.get(spec.key)
            here = images.get(spec.key)
            if there is None or (here is not None and here.digest == there.digest):
                continue
            if policy.refresh and is_build_of(there, plan, spec):
                continue
            raise PublishConflict(
                f"{mirror}/{spec.full_target} = {there.digest}, but "
                f"{primary} has {here.digest if here else 'no such image'}: "
                "the mirror would no longer match; rerun with --force-republish to "
                "replace it",
                changes,
            )


def _earlier_builds(client, plan: Plan, states: Mapping[str, ReleaseState]) -> dict[str, set[str]]:
    """Image key -> the digests its other tags name that are earlier builds of it (its
    key, version and commit in their annotations): one GET per distinct digest."""
    specs = {spec.key: spec for spec in plan.images}
    wanted = sorted(
        {
            (spec.key, registry, target.repository, current)
            for registry, state in states.items()
            for spec in plan.images
            for target in spec.targets
            if target != spec.full_target
            and (current := state.tags.get(target))
            and current != getattr(state.images.get(spec.key), "digest", None)
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


def _still(client, target: ImageReference, seen: str | None, progress: Progress, key: str) -> bool:
    """Whether the full tag still names what the run saw, right before its build. An
    image another writer put there since is kept (full tags are immutable: the first
    writer's image is the release's), and verified with the rest."""
    head = client.head_manifest(target)
    now = head.digest if head else None
    if now == seen:
        return True
    _adopt(key, target, now, progress)
    return False


def _adopt(key: str, target: ImageReference, now: str | None, progress: Progress) -> None:
    progress(key, "build", f"{target} was published by another writer meanwhile ({now}): kept")


def _copy(
    client,
    step: Copy,
    images: Mapping[str, RemoteImage],
    there: Mapping[str, RemoteImage | None],
    report: PublishReport,
    progress: Progress,
) -> None:
    from matrix.attest.referrers import copy_referrers
    from matrix.registry import copy

    target = reference(step.registry, step.target)
    seen = getattr(there.get(step.key), "digest", None)
    manifest = _as_manifest(images[step.key])
    source = reference(step.source, step.target)
    copy(client, source, target, manifest, expected={target: seen})
    # A mirror serves the images' SBOM and provenance too (attached as referrers).
    copy_referrers(client, source, target, images[step.key].children.values())
    report.done.add((step.registry, step.target.repository, step.target.tag))
    progress(step.key, "mirror", f"copied to {target}")


def _write_tags(
    client,
    plan: Plan,
    registry: str,
    tags: Sequence[Tag],
    images: Mapping[str, RemoteImage],
    report: PublishReport,
    progress: Progress,
) -> None:
    """Point ``tags`` (all in ``registry``) at their images through ``ensure``, which
    takes what each tag names from the decision (no second look) and writes only the
    tags that do not name their image yet."""
    from matrix.registry import RegistrySource, ensure

    settled = {(c.registry, c.target): c for c in report.changes}
    by_image: dict[str, list[Tag]] = {}
    for tag in tags:
        if settled[(tag.registry, tag.target)].writes:
            by_image.setdefault(tag.key, []).append(tag)
    specs = {spec.key: spec for spec in plan.images}

    def tag_image(key: str) -> None:
        image = images[key]
        targets = {reference(registry, tag.target): tag.target for tag in by_image[key]}
        current = {ref: settled[(registry, target)].current for ref, target in targets.items()}

        def written(ref: ImageReference) -> None:
            target = targets[ref]
            report.done.add((registry, target.repository, target.tag))
            action = settled[(registry, target)].action.value
            progress(key, "promote", f"{action} {ref} -> {image.digest}")

        source = RegistrySource(reference(registry, specs[key].full_target))
        # Each tag is looked at again right before its write: one that another writer
        # moved since the run read it stops the run (Overtaken), written over by nothing.
        ensure(client, source, targets, _as_manifest(image), expected=current, written=written)

    client.map(tag_image, list(by_image))


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
            f"{listed}{more}; rerun with {remedy} {'it' if len(found) == 1 else 'them'}",
            changes,
        )


def _finish(report: PublishReport, client, started: float) -> PublishReport:
    report.requests = client.requests.by_method
    report.blob_reads = client.requests.blob_reads
    report.elapsed = time.monotonic() - started
    return report
