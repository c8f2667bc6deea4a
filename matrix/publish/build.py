"""The build half of publishing: render, work out build inputs, build and push.

`matrix build` builds a release's images as its settings say; publish and refresh
get an ``ImageBuilder`` from here that puts one image under its full tag, either
built by an engine or merged from the digests the build jobs recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matrix.errors import BuildError, UserError
from matrix.publish.annotations import annotations_for, with_build_id

if TYPE_CHECKING:
    from matrix.buildid import BuildInputs
    from matrix.config import LoadedConfig
    from matrix.engines.base import BuildRequest, BuildResult
    from matrix.plan import ImageSpec, Plan
    from matrix.publish.run import ImageBuilder
    from matrix.registry import RegistryClient
    from matrix.settings import BuildSettings, Registries


def render_contexts(plan: Plan, loaded: LoadedConfig, folder: Path, build: BuildSettings):
    """The plan's build contexts, one folder per image key below ``folder``."""
    from matrix.render import render_plan

    return render_plan(plan, loaded, folder, source_date_epoch=build.source_date_epoch)


def _context_paths(plan: Plan, loaded: LoadedConfig, folder: Path, build: BuildSettings):
    """Image key -> its rendered build context's folder."""
    return {c.key: c.path for c in render_contexts(plan, loaded, folder, build)}


def plan_inputs(
    client: RegistryClient,
    plan: Plan,
    contexts: Mapping[str, Path],
    labels: Mapping[str, str] | None = None,
) -> dict[str, BuildInputs]:
    """Image key -> build inputs of every image of ``plan``, the bases' digests read
    from their registries. Each image's bases are resolved for all its planned
    platforms, so jobs that build its platforms apart record the same inputs."""
    from matrix.buildid import gather_many

    wanted = [(s.key, contexts[s.key], s.build_args, s.platforms) for s in plan.images]
    return gather_many(client, wanted, labels)


def make_engine(build: BuildSettings, registries: Registries):
    """The buildx or podman engine, talking plain HTTP where the settings say."""
    target = registries.target
    if build.engine == "podman":
        from matrix.engines.podman import PodmanEngine

        return PodmanEngine(
            build.workdir,
            tls_verify=not target.plain_http,
            insecure_registries=sorted(registries.insecure),
        )
    from matrix.engines.buildx import BuildxEngine

    return BuildxEngine(
        build.workdir,
        builder=build.builder,
        create_builder=build.create_builder,
        insecure_registries=[target.host] if target.plain_http else [],
    )


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
        cache_repository=build.cache_repository,
        cache_mode=build.cache_mode,
        provenance=build.provenance,
        sbom=build.sbom,
        labels=build.labels,
    )


@dataclass
class BuildJob:
    """A release's builds, ready to run or to print."""

    engine: Any
    requests: list[BuildRequest]
    inputs: dict[str, BuildInputs]
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
        for platform, digest in result.platform_digests.items():
            write_digest(self.digests_out, result.key, platform, digest, self.inputs[result.key])


def build_job(
    plan: Plan,
    loaded: LoadedConfig,
    build: BuildSettings,
    registries: Registries,
    contexts_folder: Path,
    *,
    dry_run: bool = False,
) -> BuildJob:
    """Make one build request per image, then render the plan's contexts. A push by
    digest also carries the build id: its inputs read the bases from their registries
    (not in a dry run that pushes nothing)."""
    registry = registries.target.host
    # The requests first: a --platform no image builds is refused before any rendering.
    contexts = {spec.key: contexts_folder / spec.key for spec in plan.images}
    requests = requests_for(plan, contexts, build, registry)
    engine = make_engine(build, registries)
    render_contexts(plan, loaded, contexts_folder, build)
    inputs: dict[str, BuildInputs] = {}
    if build.push_by_digest and not dry_run:
        # What publish --digests needs to label the image and judge it next time.
        with registries.client() as client:
            inputs = plan_inputs(client, plan, contexts, build.labels)
        specs = {spec.key: spec for spec in plan.images}
        requests = [with_build_id(plan, specs[r.key], r, inputs[r.key]) for r in requests]
    return BuildJob(engine, requests, inputs, build.digests_out)


def engine_builder(
    client: RegistryClient,
    plan: Plan,
    loaded: LoadedConfig,
    build: BuildSettings,
    registries: Registries,
) -> tuple[ImageBuilder, dict[str, BuildInputs]]:
    """Render every image's context and work out its build inputs (the bases' digests
    read from their registries); the builder then builds and pushes one image to its
    full tag only, labelled and annotated with its build id."""
    from matrix.engines import BuildFailed

    contexts = _context_paths(plan, loaded, build.workdir / "contexts", build)
    inputs = plan_inputs(client, plan, contexts)
    engine = make_engine(build, registries)
    engine.prepare()
    registry = registries.target.host

    def build_image(spec: ImageSpec) -> None:
        single = replace(plan, images=(spec,))
        (request,) = requests_for(
            single, {spec.key: contexts[spec.key]}, replace(build, push=True), registry
        )
        # The full tag only: sha and floating tags follow once every image is verified.
        request = replace(request, tags=(f"{registry}/{spec.full_target}",))
        request = with_build_id(plan, spec, request, inputs[spec.key])
        try:
            engine.build(request, lambda line: None)
        except BuildFailed as error:
            tail = " | ".join(error.log_tail[-3:])
            raise BuildError(f"build of {error}{f' ({tail})' if tail else ''}") from None

    return build_image, inputs


def digest_merger(
    client: RegistryClient, plan: Plan, registry: str, folder: Path
) -> tuple[ImageBuilder, dict[str, dict[str, Any]]]:
    """Assemble each image's index from the per-platform digests found in ``folder``;
    the build inputs the build jobs recorded there go into the index's annotations."""
    from matrix.publish.digests import image_inputs, read_digests
    from matrix.publish.state import reference
    from matrix.registry import assemble_index

    found = read_digests(folder)
    inputs = image_inputs(found, plan, folder)

    def merge(spec: ImageSpec) -> None:
        entries = []
        for platform in spec.platforms:
            record = found.get((spec.key, platform))
            if record is None:
                raise UserError(
                    f"{folder} has no digest for {spec.key} on {platform}: was "
                    "`matrix build --push-by-digest --digests-out` run for it?"
                )
            entries.append((record.digest, platform))
        assemble_index(
            client,
            reference(registry, spec.full_target),
            entries,
            annotations=annotations_for(plan, spec, inputs.get(spec.key)),
        )

    return merge, inputs
