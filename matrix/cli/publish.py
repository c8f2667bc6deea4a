"""`matrix publish`: the whole release, safe to run again."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from matrix.cli import options, release
from matrix.errors import UserError

HELP = "build, push, verify and promote a release; a rerun repairs a failed one"
DESCRIPTION = """\
Publish a release in four phases:
  1. plan, and read the registry (manifest HEADs, GETs and tag lists; no pulls);
  2. build and push every image whose full tag (2.11.5-python3.10) is missing,
     or merge per-platform digests from --digests DIR (written by
     `matrix build --push-by-digest --digests-out DIR` on separate runners);
  3. verify: every image complete, with every planned platform, version and commit;
  4. promote: only then write the sha and floating tags (2.11-, 2-, 2-latest) by
     manifest copy.
With mirrors (versions.toml's `mirrors`, or --mirror), phase 2 builds for the
first registry only and copies each image to the others registry to registry;
phase 3 verifies every registry, and no floating tag moves in any registry until
all of them hold the complete release. Digests are identical everywhere.
Nothing is kept between runs: a rerun after any failure or interruption skips what
the registry already holds and does what is missing. A full or sha tag that
already names other content is a conflict: publish stops before changing anything,
and only --force-republish replaces it. Every image carries a build id, a digest of
all that decides its content (Dockerfile, context, build args, platforms, and the
digest of each base image per platform): an image whose id is already under its
full tag is not built again, and one whose inputs changed is rebuilt only with
--refresh, the report naming the input that changed.
"""
EPILOG = """\
examples:
  matrix publish --version 2.11.5 --sha a597971f7156 --dry-run
  matrix publish --version 2.11.5 --sha a597971f7156 --yes --report report.json
  matrix publish --version 2.11.5 --sha a597971f7156 --digests digests/ --yes
  matrix publish --version 2.11.5 --engine podman --registry 127.0.0.1:5000 --yes
  matrix publish --version 2.11.5 --sha a597971f7156 --mirror ghcr.io --yes
  matrix publish --version 2.11.5 --sha a597971f7156 --refresh --dry-run
                                     which images a new base image changed, and how
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    release.add_target_options(parser)
    add_rebuild_options(parser)
    options.add_image_sources(parser)
    parser.add_argument(
        "--digests",
        metavar="DIR",
        help="merge per-platform digests from DIR instead of building",
    )
    parser.add_argument(
        "--force-republish",
        action="store_true",
        help="replace full or sha tags that name other content",
    )
    parser.add_argument(
        "--refresh",
        action="store_true",
        help="rebuild images whose build inputs changed (a new base image digest, say) and "
        "replace their full tags; without it such an image is a conflict",
    )
    parser.add_argument("--report", metavar="FILE", help="write what the run did and why as JSON")


def add_rebuild_options(parser: argparse.ArgumentParser) -> None:
    """How publish and refresh build what is missing, and whether they may write."""
    parser.add_argument(
        "--engine",
        choices=("buildx", "podman"),
        default="buildx",
        help="what builds the missing images (default buildx; podman for local use)",
    )
    parser.add_argument(
        "--workdir",
        metavar="DIR",
        default=".matrix",
        help="where build contexts are rendered (default .matrix)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would change, change nothing"
    )
    parser.add_argument(
        "--yes", action="store_true", help="do not ask before changing the registry (CI)"
    )


def run(args: argparse.Namespace) -> int:
    from matrix.cli.progress import Reporter
    from matrix.publish.reconcile import describe

    options.check_output_file(args.report, "--report")
    with Reporter() as reporter, options.registry_client(args) as client:
        plan, registry, loaded = release.plan_against_registry(args, client)
        for note in plan.notes:
            reporter.step("release", "plan", note)
        if args.digests:
            builder, inputs = digest_merger(client, plan, registry, Path(args.digests))
        else:
            builder, inputs = engine_builder(args, plan, loaded, registry, client)
        report = publish_confirmed(
            args,
            client,
            plan,
            registry,
            builder,
            reporter,
            inputs=inputs,
            refresh=args.refresh,
            force=args.force_republish,
        )
    if args.dry_run:
        for change in report.changes:
            print(describe(change, registry))
    if args.report:
        report.write(Path(args.report))
    reporter.finish(report)
    return 0


def publish_confirmed(args, client, plan, registry: str, builder, reporter, **judge):
    """The run --dry-run asks for, or the real one: after a dry run that asks before
    writing, unless --yes (CI), where the real run reads the registry only once. The
    mirrors are versions.toml's and --mirror's."""
    from matrix.publish.run import publish

    judge["mirrors"] = release.mirrors(args, plan, registry)

    if args.dry_run:
        return publish(client, plan, registry, builder, dry_run=True, **judge)
    if not args.yes:
        confirm(args, publish(client, plan, registry, builder, dry_run=True, **judge))
    return publish(client, plan, registry, builder, progress=reporter.step, **judge)


def confirm(args: argparse.Namespace, preview) -> None:
    """Ask before writing; refuse outside a terminal."""
    writes = sum(change.writes for change in preview.changes)
    if writes == 0:
        return
    where = ", ".join(preview.registries)
    if not sys.stdin.isatty():
        raise UserError(
            f"publish would write {writes} tags to {where}: pass --yes to go ahead, "
            "or --dry-run to see them"
        )
    answer = input(f"publish {preview.version}: write {writes} tags to {where}? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise UserError("publish cancelled, nothing was changed")


def digest_merger(client, plan, registry: str, folder: Path):
    """Assemble each image's index from the per-platform digests found in ``folder``;
    the build inputs the build jobs recorded there go into the index's annotations."""
    from matrix.publish.digests import image_inputs, read_digests
    from matrix.publish.run import annotations_for
    from matrix.publish.state import reference
    from matrix.registry import assemble_index

    found = read_digests(folder)
    inputs = image_inputs(found, plan, folder)

    def merge(spec) -> None:
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


def engine_builder(args, plan, loaded, registry: str, client):
    """Render every image's context and work out its build inputs (the bases' digests
    read from their registries); the builder then builds and pushes one image to its
    full tag only, labelled and annotated with its build id."""
    import os
    from dataclasses import replace

    from matrix.cli.build import make_engine, plan_inputs, with_build_id
    from matrix.engines import BuildFailed
    from matrix.engines.requests import build_requests
    from matrix.lock import changed_pins, recorded_dates
    from matrix.publish.state import read_images
    from matrix.render import render_release, source_date_epoch_from

    workdir = Path(args.workdir)
    sources = options.image_sources(args, loaded)
    # A rebuild keeps the lock date its image was first built with.
    earlier = read_images(client, plan, registry)
    rendered = render_release(
        plan,
        loaded,
        workdir / "contexts",
        sources,
        source_date_epoch=source_date_epoch_from(os.environ),
        progress=options.progress_line,
        recorded=recorded_dates({k: i.annotations if i else None for k, i in earlier.items()}),
    )
    for context in rendered:
        found = earlier.get(context.key)
        if found is not None and context.lock is not None:
            for change in changed_pins(found.annotations, context.lock):
                options.progress_line(f"{context.key} lock {change}")
    contexts = {context.key: context.path for context in rendered}
    annotations = {context.key: context.annotations for context in rendered}
    inputs = plan_inputs(client, plan, contexts, base_mirrors=sources.base_mirrors)
    engine = make_engine(
        args.engine,
        workdir,
        registry,
        insecure_registries=args.insecure_registry,
        base_mirrors=sources.base_mirrors,
    )
    engine.prepare()

    def build(spec) -> None:
        single = replace(plan, images=(spec,))
        (request,) = build_requests(
            single,
            {spec.key: contexts[spec.key]},
            registry=registry,
            push=True,
            annotations=annotations,
        )
        # The full tag only: sha and floating tags follow once every image is verified.
        request = replace(request, tags=(f"{registry}/{spec.full_target}",))
        request = with_build_id(plan, request, inputs[spec.key])
        try:
            engine.build(request, lambda line: None)
        except BuildFailed as error:
            tail = " | ".join(error.log_tail[-3:])
            raise UserError(f"build of {error}{f' ({tail})' if tail else ''}") from None

    return build, inputs
