"""Does a registry hold the release as planned? The rule verify and publish share."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from matrix.plan import Plan
from matrix.publish.annotations import BUILD_ID_LABEL, KEY_ANNOTATION, annotations_for
from matrix.publish.reconcile import Action, Change, image_problems, reconcile
from matrix.publish.state import ReleaseState, RemoteImage, read_state, releases_of


def held_apart(client, plan: Plan, registry: str, changes: list[Change]) -> list[Change]:
    """``changes`` with the floating tags a rollback holds in ``registry`` marked held:
    a HEAD per release repository, and a GET where a holds record is."""
    from matrix.publish.holds import judge, read_table, repositories_of

    table = read_table(client, [registry], repositories_of(plan))
    return judge(plan, changes, table).changes


def verify_problems(plan: Plan, state: ReleaseState) -> list[str]:
    """Why the images under the full tags are not the release as planned (empty: they are)."""
    problems = []
    holders = _holders(plan, state)
    for spec in plan.images:
        name = f"{spec.full_target}"
        image = state.images.get(spec.key)
        if image is None:
            problems.append(f"{name} is missing")
            continue
        found = image_problems(spec, plan, image)
        if KEY_ANNOTATION not in image.annotations:  # else image_problems tells them apart
            marks = (image.digest, image.annotations.get(BUILD_ID_LABEL) or "")
            others = dict.fromkeys(o for m in marks for o in holders.get(m, ()) if o != name)
            found += [f"is the same image as {other}" for other in others]
        found += [
            f"has no {annotation} annotation"
            for annotation in annotations_for(plan, spec)
            if annotation not in image.annotations
        ]
        if found:
            problems.append(f"{name} {'; '.join(found)}")
    return problems


def attestation_problems(client, plan: Plan, state: ReleaseState, registry: str) -> list[str]:
    """What the platform images under the full tags lack of their SBOM and provenance."""
    from matrix.attest.verify import platform_problems
    from matrix.reference import ImageReference

    problems = []
    for spec in plan.images:
        image = state.images.get(spec.key)
        if image is None:
            continue
        present = {p: d for p, d in image.children.items() if p not in image.missing}
        found = platform_problems(
            client,
            ImageReference(registry, spec.repository),
            image.content,
            present,
            image.annotations,
        )
        problems += [f"{spec.full_target} {problem}" for problem in found]
    return problems


def _holders(plan: Plan, state: ReleaseState) -> dict[str, tuple[str, ...]]:
    """Digest or build id -> the full tags holding it: two images of a release never
    share either, so a shared one is a copy of another image under a wrong tag."""
    held: dict[str, tuple[str, ...]] = {}
    for spec in plan.images:
        image = state.images.get(spec.key)
        if image is None:
            continue
        build = image.annotations.get(BUILD_ID_LABEL)
        for mark in {image.digest, build} - {None}:
            held[mark] = (*held.get(mark, ()), str(spec.full_target))
    return {mark: names for mark, names in held.items() if len(names) > 1}


def mirror_problems(
    plan: Plan, primary: ReleaseState, mirror: ReleaseState, origin: str
) -> list[str]:
    """A mirror holds the primary's images byte for byte: every digest that differs."""
    return [
        f"{spec.full_target} = {image.digest}, not {there.digest} as on {origin}"
        for spec in plan.images
        if (image := mirror.images.get(spec.key))
        and (there := primary.images.get(spec.key))
        and image.digest != there.digest
    ]


@dataclass
class RegistryCheck:
    """What one registry lacks or holds wrongly; ``requests`` it took to find out."""

    registry: str
    problems: list[str] = field(default_factory=list)
    wrong: list[Change] = field(default_factory=list)
    requests: int = 0
    held: list[Change] = field(default_factory=list)  # floating tags a rollback holds: expected
    # What the full tags hold, as read for the check: what `--sizes` measures.
    images: dict[str, RemoteImage | None] = field(default_factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        return not self.problems and not self.wrong


def verify_release(
    client, plan: Plan, registries: Sequence[str], *, holds: bool = True, attestations: bool = False
) -> Iterator[RegistryCheck]:
    """Check the first registry, then every mirror against it, one at a time. The first
    check's requests count all the client sent before (reading tags to plan, say).
    ``holds``: floating tags a rollback holds are expected (not when the floating tags
    were decided by hand, --latest / --no-latest, as publish would then move them).
    ``attestations``: every platform image must carry an SBOM matching its lock and a
    provenance statement (`matrix.attest.verify`)."""
    primary: ReleaseState | None = None
    counted = 0
    for host in registries:
        state = read_state(client, plan, host)
        check = RegistryCheck(host, verify_problems(plan, state), images=state.images)
        if attestations:
            check.problems += attestation_problems(client, plan, state, host)
        if primary is None:
            primary = state
        else:
            check.problems += mirror_problems(plan, primary, state, registries[0])
        changes = reconcile(plan, state, registry=host)
        changes = held_apart(client, plan, host, changes) if holds else changes
        check.wrong = [c for c in changes if c.action not in (Action.KEEP, Action.HELD)]
        check.held = [c for c in changes if c.action is Action.HELD]
        check.requests, counted = client.requests.total - counted, client.requests.total
        yield check


def diff_release(
    client, plan: Plan, registries: Sequence[str], *, holds: bool = True
) -> Iterator[tuple[list[Change], dict[str, str]]]:
    """Per registry, every planned tag's change, and the release each digest a tag moves
    away from belongs to; ``holds`` as for `verify_release`."""
    for host in registries:
        found = reconcile(plan, read_state(client, plan, host), registry=host)
        found = held_apart(client, plan, host, found) if holds else found
        moved = [c for c in found if c.action is Action.MOVE]
        yield found, releases_of(client, host, moved)
