"""Desired against actual: what a publish would do to every tag of a plan.

A pure function of the plan and the registry state. Full and sha tags are
immutable: one that exists with other content is a conflict, which only
``force`` (``--force-republish``) turns into a replacement. Floating tags are
created, moved or kept.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from matrix.plan import ImageSpec, Plan, TagKind, TagTarget
from matrix.publish.state import ReleaseState, RemoteImage


class Action(StrEnum):
    CREATE = "create"
    MOVE = "move"
    KEEP = "keep"
    CONFLICT = "conflict"


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
    if image.version is not None and image.version != plan.version:
        problems.append(f"is version {image.version}, not {plan.version}")
    if plan.commit and image.revision and not image.revision.startswith(plan.commit):
        problems.append(f"was built from commit {image.revision}, not {plan.commit}")
    return problems


def reconcile(
    plan: Plan, state: ReleaseState, *, force: bool = False, registry: str = ""
) -> list[Change]:
    """Every planned tag's change; each names ``registry`` when one is given."""
    changes: list[Change] = []
    for spec in plan.images:
        full = spec.full_target
        image = state.images.get(spec.key)
        if image is None:
            changes.append(Change(spec.key, full, Action.CREATE, None, None, "to build"))
            desired = None
        else:
            problems = image_problems(spec, plan, image)
            if not problems:
                changes.append(Change(spec.key, full, Action.KEEP, image.digest, image.digest))
                desired = image.digest
            elif force:
                reason = f"--force-republish: {'; '.join(problems)}"
                changes.append(Change(spec.key, full, Action.MOVE, image.digest, None, reason))
                desired = None
            else:
                reason = "; ".join(problems)
                changes.append(Change(spec.key, full, Action.CONFLICT, image.digest, None, reason))
                desired = None
        for target in spec.targets:
            if target != full:
                changes.append(
                    _tag_change(spec.key, target, state.tags.get(target), desired, force)
                )
    return [replace(change, registry=registry) for change in changes] if registry else changes


def _tag_change(
    key: str, target: TagTarget, current: str | None, desired: str | None, force: bool
) -> Change:
    if current is None:
        return Change(key, target, Action.CREATE, None, desired)
    if desired is not None and current == desired:
        return Change(key, target, Action.KEEP, current, desired)
    if target.kind is TagKind.SHA and not force:
        return Change(
            key,
            target,
            Action.CONFLICT,
            current,
            desired,
            "an immutable tag already names other content",
        )
    return Change(key, target, Action.MOVE, current, desired)


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
    elif change.action is Action.MOVE:
        old = change.current or "?"
        release = (release_of or {}).get(old)
        line = f"move     {name} {old}{f' ({release})' if release else ''} -> {desired}"
    else:
        line = f"conflict {name} = {change.current}"
    return f"{line}: {change.reason}" if change.reason else line
