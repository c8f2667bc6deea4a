"""Publish, promote and refresh a release as its settings say: one call per command."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from matrix.errors import UserError
from matrix.publish.build import build_nothing, digest_merger, engine_builder
from matrix.publish.run import (
    ImageBuilder,
    Progress,
    PublishReport,
    observe,
    promote,
    publish,
    quiet,
)
from matrix.publish.state import (
    RemoteImage,
    TagLists,
    plan_on_registry,
    read_image,
    reference,
    releases_on,
)
from matrix.settings import REFRESH, PublishSettings, ReleaseSelection

if TYPE_CHECKING:
    from packaging.version import Version

    from matrix.buildid import InputsRecord
    from matrix.config import LoadedConfig
    from matrix.plan import Plan

UNNAMED = "an unnamed operator"
Confirm = Callable[[PublishReport], None]
Inputs = Mapping[str, "InputsRecord"]  # image key -> its build inputs
# What builds an image, made from the images the primary holds under their full tags.
Builders = Callable[[Mapping[str, "RemoteImage | None"]], tuple[ImageBuilder, Inputs]]


def publish_release(
    client,
    loaded: LoadedConfig,
    selection: ReleaseSelection,
    settings: PublishSettings,
    *,
    confirm: Confirm | None = None,
    progress: Progress = quiet,
) -> PublishReport:
    """Plan the release against the target registry, then build (or merge) what is
    missing, copy it to the mirrors, verify, and move the tags."""
    registry = settings.registries.target.host
    listed: TagLists = {}
    plan = plan_on_registry(client, loaded, selection, registry, listed)
    for note in plan.notes:
        progress("release", "plan", note)
    # --latest / --no-latest decide the floating tags by hand: a rollback is recorded.
    by = (settings.operator or UNNAMED) if selection.latest is not None else None
    if settings.digests is not None:
        folder = settings.digests

        def merged(images: Mapping[str, RemoteImage | None]) -> tuple[ImageBuilder, Inputs]:
            return digest_merger(client, plan, registry, folder, observed=images)

        return _run(client, plan, settings, merged, confirm, progress, by, listed)
    builders = _engine(client, plan, loaded, settings)
    return _run(client, plan, settings, builders, confirm, progress, by, listed)


def promote_release(
    client,
    loaded: LoadedConfig,
    selection: ReleaseSelection,
    settings: PublishSettings,
    *,
    confirm: Confirm | None = None,
    progress: Progress = quiet,
) -> PublishReport:
    """Point the sha and floating tags at the release's images, asking ``confirm``
    first unless --yes. Unless told otherwise the release is taken as the newest of its
    line, which a rollback needs."""
    if selection.latest is None:
        selection = replace(selection, latest=True)
    registry = settings.registries.target.host
    plan = plan_on_registry(client, loaded, selection, registry)
    return promote(
        client,
        plan,
        registry,
        mirrors=[m.host for m in settings.registries.mirrors(plan)],
        dry_run=settings.dry_run,
        confirm=None if settings.yes else confirm,
        progress=progress,
        by=settings.operator or UNNAMED,
    )


def refresh_releases(
    client,
    loaded: LoadedConfig,
    lines: str | None,
    settings: PublishSettings,
    *,
    confirm: Confirm | None = None,
    progress: Progress = quiet,
) -> Iterator[tuple[Plan, PublishReport]]:
    """Rebuild what changed underneath the newest release of each selected line, one
    release after the other; each report counts its own requests."""
    from matrix.versions import newest_of_lines, parse_lines

    selectors = parse_lines(lines)
    registry = settings.registries.target.host
    repositories = sorted({image.repository for image in loaded.config.images.values()})
    # Releases no [[lines]] entry covers (Prefect 1.x, say) are not refreshed.
    known = [v for v in releases_on(client, registry, repositories) if loaded.covers(v)]
    if selectors:
        releases = newest_of_lines(known, selectors)
    else:
        # versions.toml's supported lines: one this registry has no release of is
        # simply not there yet (a test registry, a new mirror).
        supported = parse_lines(",".join(loaded.config.supported))
        releases = newest_of_lines(known, supported, missing_ok=bool(supported))
    if not releases:
        raise UserError(f"no release of {', '.join(repositories)} on {registry} to refresh")
    settings = replace(settings, policy=REFRESH)
    for version in releases:
        client.requests.reset()
        plan = published_part(client, loaded, version, known, registry)
        progress("release", "refresh", f"{plan.version} ({len(plan.images)} images)")
        builders = _engine(client, plan, loaded, settings)
        yield plan, _run(client, plan, settings, builders, confirm, progress)


def published_part(client, loaded: LoadedConfig, version: Version, known, registry: str) -> Plan:
    """The plan of ``version`` cut to the images its full tags hold in the registry
    (a refresh rebuilds what was published, and creates nothing), with the commit
    they were built from, for their sha tags."""
    from matrix.plan import plan_release

    plan = plan_release(loaded, str(version), known=known)
    heads = client.map(
        lambda s: client.head_manifest(reference(registry, s.full_target)), plan.images
    )
    there = [spec for spec, head in zip(plan.images, heads, strict=True) if head is not None]
    # One GET: matrix annotates every full tag with the commit.
    commit = (
        read_image(client, reference(registry, there[0].full_target)).revision if there else None
    )
    if commit:
        plan = plan_release(loaded, str(version), commit=commit, known=known)
    keys = {spec.key for spec in there}
    return replace(plan, images=tuple(spec for spec in plan.images if spec.key in keys))


def _engine(client, plan: Plan, loaded: LoadedConfig, settings: PublishSettings) -> Builders:
    def builders(images: Mapping[str, RemoteImage | None]) -> tuple[ImageBuilder, Inputs]:
        if settings.dry_run and not settings.policy.refresh:
            # Build inputs need the base images' registries and the package index; a dry
            # run reports on the release's registries only (see inputs_not_read).
            return build_nothing, {}
        return engine_builder(
            client,
            plan,
            loaded,
            settings.build,
            settings.registries,
            images,
            dry_run=settings.dry_run,
        )

    return builders


def inputs_not_read(settings: PublishSettings) -> bool:
    """Whether a run of ``settings`` judges its images without their build inputs: a dry
    run, unless it refreshes (then the inputs are what it reports on) or merges digests
    (whose folder records them)."""
    return settings.dry_run and not settings.policy.refresh and settings.digests is None


def _run(
    client,
    plan: Plan,
    settings: PublishSettings,
    builders: Builders,
    confirm,
    progress,
    by: str | None = None,
    listed: TagLists | None = None,
) -> PublishReport:
    """The one publish machine, asking before it writes unless --yes or a dry run. The
    registries are read once: ``builders`` gets the images the primary holds (a
    rebuild keeps their lock dates), and the decision is made from the same reading."""
    primary = settings.registries.target.host
    mirrors = [m.host for m in settings.registries.mirrors(plan)]
    observation = observe(client, plan, (primary, *mirrors), settings.policy, listed)
    builder, inputs = builders(observation.states[primary].images)
    return publish(
        client,
        plan,
        primary,
        builder,
        mirrors=mirrors,
        inputs=inputs,
        policy=settings.policy,
        merge=settings.digests is not None,
        dry_run=settings.dry_run,
        confirm=None if settings.yes else confirm,
        progress=progress,
        observation=observation,
        by=by,
    )
