"""`matrix refresh`: rebuild what changed underneath the newest release of each line."""

from __future__ import annotations

import argparse
from pathlib import Path

from matrix.cli import options, release
from matrix.cli.publish import add_rebuild_options

HELP = "rebuild the images of each line's newest release whose inputs changed (a new base)"
DESCRIPTION = """\
Images of supported releases go stale when their base image gets security fixes.
For the newest final release of each selected line, refresh works out every
image's build id (Dockerfile, context, build args, platforms and the digest of
each base image per platform, read from the registries) and compares it with the
id under the image's full tag. Only the images whose inputs changed are rebuilt
and their full tags replaced; the rest keep their digests. Floating tags follow
through the same two phases as publish: they move only once every image of the
release is rebuilt and verified, in every registry.

The known releases and the commit each was built from are read from the
registry; nothing is kept between runs, so a failed refresh is repaired by
running it again.
"""
EPILOG = """\
examples:
  matrix refresh --dry-run                       what would be rebuilt, and why
  matrix refresh --lines 2.20,3.x --yes          2.20's newest patch and 3's newest line
  matrix refresh --engine podman --registry 127.0.0.1:5000 --yes
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--lines",
        metavar="LINES",
        help="comma-separated lines: X.Y (2.20) or X.x (the newest minor line of major X); "
        "default: the newest minor line of every major in the registry",
    )
    options.add_config(parser)
    release.add_registries(parser)
    add_rebuild_options(parser)
    options.add_image_sources(parser, dist=False)
    parser.add_argument("--report", metavar="FILE", help="write what each release did as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from matrix.cli.progress import Reporter
    from matrix.cli.publish import engine_builder, publish_confirmed
    from matrix.config import load_config
    from matrix.errors import UserError
    from matrix.publish.reconcile import describe
    from matrix.publish.state import known_releases
    from matrix.reference import ImageReference
    from matrix.versions import newest_of_lines, parse_lines

    selectors = parse_lines(args.lines)
    options.check_output_file(args.report, "--report")
    loaded = load_config(args.config)
    registry = args.registry or loaded.config.registry
    reports = []
    with Reporter() as reporter, options.registry_client(args) as client:
        repositories = sorted({image.repository for image in loaded.config.images.values()})
        tag_lists = client.map(
            lambda r: client.list_tags(ImageReference(registry, r)), repositories
        )
        # Releases no [[lines]] entry covers (Prefect 1.x, say) are not refreshed.
        known = [v for v in known_releases(tag_lists) if loaded.covers(v)]
        releases = newest_of_lines(known, selectors)
        if not releases:
            raise UserError(f"no release of {', '.join(repositories)} on {registry} to refresh")
        for version in releases:
            client.requests.reset()  # each release's report counts its own requests
            plan = published_part(client, loaded, version, known, registry)
            reporter.step("release", "refresh", f"{plan.version} ({len(plan.images)} images)")
            builder, inputs = engine_builder(args, plan, loaded, registry, client)
            report = publish_confirmed(
                args,
                client,
                plan,
                registry,
                builder,
                reporter,
                inputs=inputs,
                refresh=True,
                only_following=True,
            )
            full = {spec.full_target for spec in plan.images}
            for change in report.changes:
                if change.writes and (args.dry_run or change.target in full):
                    print(describe(change, registry))
            reporter.finish(report)
            reports.append(report.to_dict())
    if args.report:
        Path(args.report).write_text(json.dumps(reports, indent=2) + "\n", encoding="utf-8")
    return 0


def published_part(client, loaded, version, known, registry: str):
    """The plan of ``version`` cut to the images its full tags hold in the registry
    (a refresh rebuilds what was published, and creates nothing), with the commit
    they were built from, for their sha tags."""
    from dataclasses import replace

    from matrix.plan import plan_release
    from matrix.publish.state import read_image, reference

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
