"""The build half of publishing: render, work out build inputs, build and push.

`matrix build` builds a release's images as its settings say; publish and refresh
get an ``ImageBuilder`` from here that puts one image under its full tag, either
built by an engine or merged from the digests the build jobs recorded. An image that
replaces a released one (a refresh, --force-republish) is pushed by digest alone:
the full tag moves to it only once the run has verified it.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matrix.errors import BuildError, UserError
from matrix.publish.annotations import REPLACES_ANNOTATION, annotations_for, with_build_id

if TYPE_CHECKING:
    from matrix.buildid import InputsRecord
    from matrix.config import LoadedConfig
    from matrix.engines.base import BuildRequest, BuildResult
    from matrix.plan import ImageSpec, Plan
    from matrix.publish.run import ImageBuilder
    from matrix.publish.state import RemoteImage
    from matrix.registry import RegistryClient
    from matrix.render import RenderedContext
    from matrix.settings import BuildSettings, Registries


def render_contexts(
    plan: Plan,
    loaded: LoadedConfig,
    folder: Path,
    build: BuildSettings,
    recorded: Mapping[str, datetime] | None = None,
) -> list[RenderedContext]:
    """Lock every cell of the plan, then render its build contexts, one folder per
    image key below ``folder``. ``recorded``: the lock dates earlier builds carry."""
    from matrix.render import render_release

    return render_release(
        plan,
        loaded,
        folder,
        build.image_sources,
        source_date_epoch=build.source_date_epoch,
        recorded=recorded,
        progress=_progress,
    )


def _progress(text: str) -> None:
    """Waits and lock decisions, on stderr as the registry's retry notices are."""
    print(f"matrix: {text}", file=sys.stderr, flush=True)


def plan_inputs(
    client: RegistryClient,
    plan: Plan,
    contexts: Mapping[str, Path],
    build: BuildSettings,
    labels: Mapping[str, str] | None = None,
) -> dict[str, InputsRecord]:
    """Image key -> build inputs of every image of ``plan``, the bases' digests read
    from their registries (through the base mirrors). Each image's bases are resolved
    for all its planned platforms, so jobs that build its platforms apart record the
    same inputs."""
    from matrix.buildid import gather_many

    wanted = [(s.key, contexts[s.key], s.build_args, s.platforms) for s in plan.images]
    gathered = gather_many(client, wanted, labels, build.image_sources.base_mirrors)
    return {key: inputs.to_record() for key, inputs in gathered.items()}


def make_engine(build: BuildSettings, registries: Registries, client: RegistryClient | None = None):
    """The buildx or podman engine, pushing to the target as its host record says,
    pulling bases through the base mirrors; podman reads back through ``client``."""
    from matrix.engines import create_engine

    return create_engine(
        build.engine,
        build.workdir,
        registries.target,
        client=client,
        builder=build.builder,
        create_builder=build.create_builder,
        base_mirrors=build.image_sources.base_mirrors,
    )


def _with_lock_annotations(
    requests, contexts: list[RenderedContext], epoch: int | None
) -> list[BuildRequest]:
    """Each request annotated with what its lock records (the resolution date), and
    with the epoch its timestamps are set to (``epoch``, else the lock's date)."""
    from matrix.engines.requests import build_epoch

    rendered = {context.key: context for context in contexts}
    made = []
    for request in requests:
        context = rendered[request.key]
        lock_date = context.lock.as_of if context.lock is not None else None
        made.append(
            replace(
                request,
                annotations={**context.annotations, **request.annotations},
                source_date_epoch=build_epoch(epoch, lock_date),
            )
        )
    return made


def requests_for(
    plan: Plan, contexts: Mapping[str, Path], build: BuildSettings, registry: str
) -> list[BuildRequest]:
    from matrix.engines.requests import build_requests

    return build_requests(
        plan,
        contexts,
        registry=registry,
        platforms=build.platforms,
        push=build.push,
        push_by_digest=build.push_by_digest,
        keep_local=build.keep_local,
        cache_repository=build.cache_repository,
        cache_mode=build.cache_mode,
        provenance=build.attest_provenance,
        sbom=build.attest_sbom,
        labels=build.labels,
    )


@dataclass
class BuildJob:
    """A release's builds, ready to run or to print."""

    engine: Any
    requests: list[BuildRequest]
    inputs: dict[str, InputsRecord]
    digests_out: Path | None

    def calls(self) -> list[str]:
        """The exact engine calls, as --dry-run prints them."""
        lines = [self.engine.show(call) for call in self.engine.prepare_calls()]
        for request in self.requests:
            lines.append(f"# {request.key}")
            lines += [self.engine.show(call) for call in self.engine.calls(request)]
        return lines

    def record(self, result: BuildResult) -> None:
        """Write what a push by digest pushed, for `matrix publish --digests`."""
        from matrix.publish.digests import write_digest

        if self.digests_out is None:
            return
        request = next(r for r in self.requests if r.key == result.key)
        for platform, digest in result.platform_digests.items():
            write_digest(
                self.digests_out,
                result.key,
                platform,
                digest,
                self.inputs[result.key],
                request.annotations,
            )


def build_job(
    client: RegistryClient,
    plan: Plan,
    loaded: LoadedConfig,
    build: BuildSettings,
    registries: Registries,
    contexts_folder: Path,
    *,
    dry_run: bool = False,
) -> BuildJob:
    """Make one build request per image, then render the plan's contexts. A push by
    digest, or a push whose provenance matrix writes, also carries the build id: its
    inputs read the bases from their registries (not in a dry run that pushes nothing)."""
    registry = registries.target.host
    # The requests first: a --platform no image builds is refused before any rendering.
    contexts = {spec.key: contexts_folder / spec.key for spec in plan.images}
    requests = requests_for(plan, contexts, build, registry)
    engine = make_engine(build, registries, client)
    if not dry_run:
        engine.require()  # before locking reads the index: a missing engine says so first
    rendered = render_contexts(plan, loaded, contexts_folder, build)
    for context in rendered:
        if context.lock is not None:
            _progress(f"{context.key}: {context.describe_lock()}")
    requests = _with_lock_annotations(requests, rendered, build.source_date_epoch)
    inputs: dict[str, InputsRecord] = {}
    provenance = build.push and build.attest_provenance and engine.writes_provenance
    if (build.push_by_digest or provenance) and not dry_run:
        # What publish --digests needs to label the image and judge it next time, and
        # what the provenance matrix writes names: the digest of each base it was built on.
        inputs = plan_inputs(client, plan, contexts, build, build.labels)
        specs = {spec.key: spec for spec in plan.images}
        requests = [with_build_id(plan, specs[r.key], r, inputs[r.key]) for r in requests]
    return BuildJob(engine, requests, inputs, build.digests_out)


def engine_builder(
    client: RegistryClient,
    plan: Plan,
    loaded: LoadedConfig,
    build: BuildSettings,
    registries: Registries,
    earlier: Mapping[str, RemoteImage | None],
    *,
    dry_run: bool = False,
) -> tuple[ImageBuilder, dict[str, InputsRecord]]:
    """Render every image's context and work out its build inputs (the bases' digests
    read from their registries); the builder then builds and pushes one image to its
    full tag only, labelled and annotated with its build id. ``earlier``: what the
    full tags hold now, as publish observed them; a rebuild keeps the lock date its
    image was first built with. A ``dry_run`` renders into a temporary folder, removed
    before this returns, needs no engine, and gets a builder that builds nothing."""
    if not dry_run:
        return _engine_builder(client, plan, loaded, build, registries, earlier)
    with tempfile.TemporaryDirectory(prefix="matrix-dry-run-") as scratch:
        scratch_build = replace(build, workdir=Path(scratch))
        return _engine_builder(
            client, plan, loaded, scratch_build, registries, earlier, engine=False
        )


class _ChangedLock(UserError):
    """A rebuild would install other Python packages than the image it replaces."""

    def __init__(self, key: str, changes: list[str], as_of: datetime) -> None:
        from matrix.lock import format_as_of

        more = f" (and {len(changes) - 1} more)" if len(changes) > 1 else ""
        super().__init__(
            f"refusing to rebuild {key}: resolved as of {format_as_of(as_of)} again, "
            f"its lock now differs from the published image's ({changes[0]}{more}); the "
            "package index answers otherwise than it did (a yanked or a late file). A "
            "rebuild keeps every Python package: rerun with --re-resolve to take new ones "
            "on purpose"
        )


def build_nothing(spec: ImageSpec, replacing: str | None = None) -> str | None:
    """The builder of a dry run."""
    raise AssertionError(f"a dry run builds nothing, not {spec.key}")


def _engine_builder(
    client: RegistryClient,
    plan: Plan,
    loaded: LoadedConfig,
    build: BuildSettings,
    registries: Registries,
    earlier: Mapping[str, RemoteImage | None],
    *,
    engine: bool = True,
) -> tuple[ImageBuilder, dict[str, InputsRecord]]:
    from matrix.engines import BuildFailed
    from matrix.lock import changed_pins, recorded_dates

    registry = registries.target.host
    recorded = recorded_dates({k: i.annotations if i else None for k, i in earlier.items()})
    rendered = render_contexts(plan, loaded, build.workdir / "contexts", build, recorded)
    for context in rendered:
        found = earlier.get(context.key)
        if found is None or context.lock is None:
            continue
        changes = changed_pins(found.annotations, context.lock)
        if changes and not build.image_sources.re_resolve:
            raise _ChangedLock(context.key, changes, context.lock.as_of)
        for change in changes:
            _progress(f"{context.key} lock {change}")
    contexts = {context.key: context.path for context in rendered}
    inputs = plan_inputs(client, plan, contexts, build)
    if not engine:
        return build_nothing, inputs
    builder = make_engine(build, registries, client)
    builder.prepare()

    def build_image(spec: ImageSpec, replacing: str | None = None) -> str | None:
        single = replace(plan, images=(spec,))
        (request,) = requests_for(
            single, {spec.key: contexts[spec.key]}, replace(build, push=True), registry
        )
        (request,) = _with_lock_annotations([request], rendered, build.source_date_epoch)
        request = with_build_id(plan, spec, request, inputs[spec.key])
        try:
            if replacing is not None:
                return _build_untagged(client, builder, request, spec, registry, replacing)
            # The full tag only: sha and floating tags follow once every image is verified.
            builder.build(replace(request, tags=(f"{registry}/{spec.full_target}",)), _quiet)
        except BuildFailed as error:
            tail = " | ".join(error.log_tail[-3:])
            raise BuildError(f"build of {error}{f' ({tail})' if tail else ''}") from None
        return None

    return build_image, inputs


def _quiet(line: str) -> None:
    """An engine's build log, unshown: publish reports by phase, a failure its tail."""


def _build_untagged(
    client: RegistryClient,
    builder,
    request: BuildRequest,
    spec: ImageSpec,
    registry: str,
    replacing: str,
) -> str:
    """Build ``request`` one platform at a time, each pushed by digest, then push their
    index by digest too, annotated with the image it is to replace; its digest. No
    tag names it yet."""
    from matrix.publish.state import reference
    from matrix.registry import assemble_index

    entries = []
    for platform in request.platforms:
        one = replace(request, platforms=(platform,), tags=(), push_by_digest=True)
        entries.append((builder.build(one, _quiet).platform_digests[platform], platform))
    return assemble_index(
        client,
        reference(registry, spec.full_target),
        entries,
        annotations={**request.annotations, REPLACES_ANNOTATION: replacing},
        untagged=True,
    )


def digest_merger(
    client: RegistryClient,
    plan: Plan,
    registry: str,
    folder: Path,
    observed: Mapping[str, RemoteImage | None] | None = None,
) -> tuple[ImageBuilder, dict[str, InputsRecord]]:
    """Assemble each image's index from the per-platform digests found in ``folder``;
    the build inputs the build jobs recorded there go into the index's annotations.
    ``observed``: what the run saw under the full tags; a full tag that names anything
    else right before its write is not written over (`matrix.registry.Overtaken`)."""
    from matrix.publish.digests import image_inputs, lock_annotations, read_digests
    from matrix.publish.state import reference
    from matrix.registry import assemble_index

    found = read_digests(folder)
    inputs = image_inputs(found, plan, folder)

    def merge(spec: ImageSpec, replacing: str | None = None) -> str | None:
        entries = []
        for platform in spec.platforms:
            record = found.get((spec.key, platform))
            if record is None:
                raise UserError(
                    f"{folder} has no digest for {spec.key} on {platform}: was "
                    "`matrix build --push-by-digest --digests-out` run for it?"
                )
            entries.append((record.digest, platform))
        target = reference(registry, spec.full_target)
        annotations = annotations_for(plan, spec, inputs.get(spec.key))
        annotations |= lock_annotations(found, spec, folder)
        if replacing is not None:
            annotations[REPLACES_ANNOTATION] = replacing
            return assemble_index(client, target, entries, annotations=annotations, untagged=True)
        expected = None
        if observed is not None:
            expected = {target: getattr(observed.get(spec.key), "digest", None)}
        assemble_index(client, target, entries, annotations=annotations, expected=expected)
        return None

    return merge, inputs
