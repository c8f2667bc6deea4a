"""Decide: one observation of every registry becomes one list of steps."""

from __future__ import annotations

import pytest

from matrix.publish.annotations import annotations_for
from matrix.publish.reconcile import Action
from matrix.publish.run import (
    Build,
    Copy,
    Merge,
    Observation,
    PublishConflict,
    ReleaseIncomplete,
    Tag,
    decide,
)
from matrix.publish.state import ReleaseState, RemoteImage
from matrix.settings import PROMOTE, PUBLISH

HUB, MIRROR = "docker.io", "ghcr.io"


def published(plan, salt: str = "") -> dict[str, RemoteImage]:
    return {
        spec.key: RemoteImage(
            f"sha256:{spec.key}{salt}", frozenset(spec.platforms), annotations_for(plan, spec)
        )
        for spec in plan.images
    }


def kinds(decision) -> dict[type, int]:
    found: dict[type, int] = {}
    for step in decision.steps:
        found[type(step)] = found.get(type(step), 0) + 1
    return found


def test_an_empty_registry_and_mirror_get_every_image_built_copied_and_tagged(plan):
    empty = ReleaseState({}, {})
    decision = decide(plan, Observation({HUB: empty, MIRROR: empty}))
    others = len(plan.targets) - len(plan.images)
    assert kinds(decision) == {Build: len(plan.images), Copy: len(plan.images), Tag: 2 * others}
    assert len(decision.steps) == sum(c.writes for c in decision.changes)
    assert all(s.registry == HUB for s in decision.steps if isinstance(s, Build))
    assert all(s.source == HUB for s in decision.steps if isinstance(s, Copy))


def test_merged_digests_are_merge_steps(plan):
    decision = decide(plan, Observation({HUB: ReleaseState({}, {})}), merge=True)
    assert kinds(decision)[Merge] == len(plan.images) and Build not in kinds(decision)


def test_a_mirror_gets_copies_of_what_the_registry_already_holds(plan):
    images = published(plan)
    tags = {t: images[s.key].digest for s in plan.images for t in s.targets}
    decision = decide(
        plan, Observation({HUB: ReleaseState(images, tags), MIRROR: ReleaseState({}, {})})
    )
    assert {type(s) for s in decision.steps if s.registry == HUB} == set()
    mirrored = [c for c in decision.changes if c.registry == MIRROR]
    assert {c.action for c in mirrored} == {Action.CREATE}
    # Known before anything is copied: every mirror tag names the registry's digest.
    assert all(c.desired == images[c.key].digest for c in mirrored)


def test_promote_builds_nothing_and_refuses_an_incomplete_release(plan):
    with pytest.raises(ReleaseIncomplete, match=r"refusing to promote 2\.11\.5"):
        decide(plan, Observation({HUB: ReleaseState({}, {})}), PROMOTE)
    images = published(plan)
    decision = decide(plan, Observation({HUB: ReleaseState(images, {})}), PROMOTE)
    assert {type(s) for s in decision.steps} == {Tag}


def test_a_mirror_holding_other_content_stops_the_decision(plan):
    there = ReleaseState(published(plan, "-other"), {})
    with pytest.raises(PublishConflict, match="the mirror would no longer match"):
        decide(plan, Observation({HUB: ReleaseState(published(plan), {}), MIRROR: there}), PUBLISH)
