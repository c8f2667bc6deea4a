"""Desired against actual: what a publish would do to every tag of a plan.

A pure function of the plan, the registry state and, when known, each image's
build inputs. Full and sha tags are immutable: one that exists with other
content is a conflict, which only ``force`` (``--force-republish``) turns into
a replacement; one built from other inputs (a base image moved, say) is a
conflict that ``refresh`` (``--refresh``) turns into a rebuild. Floating tags are
created, moved or kept.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from matrix.buildid import (
    InputsRecord,
    build_id,
    changed_inputs,
    recorded_inputs,
)
from matrix.plan import ImageSpec, Plan, TagKind, TagTarget
from matrix.publish.annotations import BUILD_ID_LABEL, KEY_ANNOTATION
from matrix.publish.state import ReleaseState, RemoteImage


class Action(StrEnum):
    CREATE = "create"
    MOVE = "move"
    KEEP = "keep"
    CONFLICT = "conflict"
    HELD = "held"  # a floating tag a maintainer held at an older release (matrix.publish.holds)


@dataclass(frozen=True)
class Change:
    key: str  # the image the tag belongs to
    target: TagTarget
    action: Action
    current: str | None  # digest the tag names now
    desired: str | None  # digest it must name; None while the image is still to be built
    reason: str = ""
    registry: str = ""  # where the tag lives, when a release spans several registries

    @property
    def writes(self) -> bool:
        return self.action in (Action.CREATE, Action.MOVE)


def image_problems(spec: ImageSpec, plan: Plan, image: RemoteImage) -> list[str]:
    """Why the content under a full tag is not the image the plan describes."""
    problems = []
    missing = sorted(set(spec.platforms) - image.platforms)
    if missing:
        held = ", ".join(sorted(image.platforms)) or "no platform list"
        problems.append(f"has {held}; missing {', '.join(missing)}")
    for platform in sorted(image.missing):
        problems.append(f"lacks its {platform} image {image.children[platform]} (a pull fails)")
    key = image.annotations.get(KEY_ANNOTATION)
    if key is not None and key != spec.key:
        problems.append(f"is the image {key}, not {spec.key}")
    if image.version is not None and image.version != plan.version:
        problems.append(f"is version {image.version}, not {plan.version}")
    if plan.commit and image.revision and not image.revision.startswith(plan.commit):
        problems.append(f"was built from commit {image.revision}, not {plan.commit}")
    return problems


STALE = "inputs changed"  # how the reason of a change for new build inputs begins
TO_BUILD = "to build"  # a missing image's reason; "pushed" once it is
LEFT_ALONE = "left alone: refresh moves only tags that named an earlier build of the image"


def stale_inputs(image: RemoteImage, inputs: InputsRecord) -> list[str]:
    """What changed since ``image`` was built, if its build id is not ``inputs``' id.

    An image with no build id (published before matrix wrote one) is taken as it is.
    """
    built, wanted = image.annotations.get(BUILD_ID_LABEL), build_id(inputs)
    if built is None or built == wanted:
        return []
    record = recorded_inputs(image.annotations)
    changed = changed_inputs(record, inputs) if record else []
    return changed or [f"build id {built} -> {wanted}"]


def reconcile(
    plan: Plan,
    state: ReleaseState,
    *,
    force: bool = False,
    registry: str = "",
    inputs: Mapping[str, InputsRecord] | None = None,
    refresh: bool = False,
    earlier: Mapping[str, Collection[str]] | None = None,
    only_following: bool = False,
) -> list[Change]:
    """Every planned tag's change; each names ``registry`` when one is given.

    With ``inputs`` (image key -> build inputs), a full tag whose build id differs
    is a conflict, or with ``refresh`` an image to rebuild. ``earlier`` (image key ->
    digests) names earlier builds of an image, replaced by a refresh: its sha tag may
    move from them. With ``only_following`` (matrix refresh) a sha or floating tag
    moves only from an earlier build of its image; any other tag is left alone, so
    a refresh never undoes a rollback nor finishes someone else's promote.
    """
    changes: list[Change] = []
    for spec in plan.images:
        image = state.images.get(spec.key)
        known = inputs[spec.key] if inputs and spec.key in inputs else None
        full = _full_change(spec, plan, image, known, force=force, refresh=refresh)
        changes.append(full)
        previous = set((earlier or {}).get(spec.key, ()))
        if full.action is not Action.KEEP and full.current:
            previous.add(full.current)  # replaced now, or refused already: one conflict is enough
        for target in spec.targets:
            if target == full.target:
                continue
            current = state.tags.get(target)
            change = _tag_change(spec.key, target, current, full.desired, force, previous)
            if only_following and change.writes and current not in previous:
                change = replace(change, action=Action.KEEP, reason=LEFT_ALONE)
            changes.append(change)
    return [replace(change, registry=registry) for change in changes] if registry else changes


def is_build_of(image: RemoteImage, plan: Plan, spec: ImageSpec) -> bool:
    """Whether ``image`` is a build of this image of this release (an earlier one, say):
    matrix annotated it with the same image key, version and commit."""
    return (
        image.annotations.get(KEY_ANNOTATION) == spec.key
        and image.version == plan.version
        and image.revision == plan.commit
    )


def _full_change(
    spec: ImageSpec,
    plan: Plan,
    image: RemoteImage | None,
    inputs: InputsRecord | None,
    *,
    force: bool,
    refresh: bool,
) -> Change:
    """What the image's full tag needs: built, kept, replaced, or a conflict."""
    full = spec.full_target
    if image is None:
        return Change(spec.key, full, Action.CREATE, None, None, TO_BUILD)
    problems = image_problems(spec, plan, image)
    if not problems and inputs is not None and (stale := stale_inputs(image, inputs)):
        reason = f"{STALE}: {'; '.join(stale)}"
        if refresh or force:
            return Change(spec.key, full, Action.MOVE, image.digest, None, reason)
        return Change(spec.key, full, Action.CONFLICT, image.digest, None, reason)
    if not problems:
        return Change(spec.key, full, Action.KEEP, image.digest, image.digest)
    if force:
        reason = f"--force-republish: {'; '.join(problems)}"
        return Change(spec.key, full, Action.MOVE, image.digest, None, reason)
    return Change(spec.key, full, Action.CONFLICT, image.digest, None, "; ".join(problems))


def _tag_change(
    key: str,
    target: TagTarget,
    current: str | None,
    desired: str | None,
    force: bool,
    previous: Collection[str] = (),
) -> Change:
    if current is None:
        return Change(key, target, Action.CREATE, None, desired)
    if desired is not None and current == desired:
        return Change(key, target, Action.KEEP, current, desired)
    if target.kind is TagKind.SHA and not force and current not in previous:
        return Change(
            key,
            target,
            Action.CONFLICT,
            current,
            desired,
            "an immutable tag already names other content",
        )
    return Change(key, target, Action.MOVE, current, desired)


def change_to_dict(change: Change) -> dict[str, Any]:
    """A change as --format json and --report show it."""
    return {
        "registry": change.registry,
        "image": change.key,
        "repository": change.target.repository,
        "tag": change.target.tag,
        "kind": change.target.kind.value,
        "action": change.action.value,
        "from": change.current,
        "to": change.desired,
        "reason": change.reason,
    }


def conflicts(changes: list[Change]) -> list[Change]:
    return [change for change in changes if change.action is Action.CONFLICT]


def describe(change: Change, registry: str, release_of: dict[str, str] | None = None) -> str:
    """One line per tag, as `matrix diff` and dry runs print it."""
    name = f"{change.registry or registry}/{change.target}"
    desired = change.desired or "(to build)"
    if change.action is Action.CREATE:
        line = f"create   {name} -> {desired}"
    elif change.action is Action.KEEP:
        line = f"keep     {name} = {change.current}"
    elif change.action is Action.HELD:
        line = f"held     {name} = {change.current}"
    elif change.action is Action.MOVE:
        old = change.current or "?"
        release = (release_of or {}).get(old)
        line = f"move     {name} {old}{f' ({release})' if release else ''} -> {desired}"
    else:
        line = f"conflict {name} = {change.current}"
    return f"{line}: {change.reason}" if change.reason else line
