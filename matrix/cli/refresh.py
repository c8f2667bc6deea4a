"""`matrix refresh`: rebuild what changed underneath the newest release of each line."""

from __future__ import annotations

import argparse

from matrix.cli import options

HELP = "rebuild the images of each line's newest release whose inputs changed (a new base)"
DESCRIPTION = """\
Images of supported releases go stale when their base image gets security fixes.
For the newest final release of each selected line (versions.toml's `supported`
lines unless --lines), refresh works out every image's build id (Dockerfile,
context, build args, platforms and the digest of each base image per platform, read
from the registries) and compares it with the id under the image's full tag. Only
the images whose inputs changed are rebuilt, with the Python packages they have
(a lock that would change one is refused, unless --re-resolve); the rest keep their
digests. A rebuilt image is pushed by digest and annotated with the one it
replaces, which stays pullable by digest. Its full tag moves only once every
image of the release is verified; the tags that followed it, only once every
registry holds the release.

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
        "default: versions.toml's `supported` lines, else the newest minor line of every "
        "major in the registry",
    )
    options.add_config(parser)
    options.add_registries(parser)
    options.add_rebuild_options(parser)
    options.add_image_sources(parser, dist=False)
    options.add_report(parser, "what each release did (the --format json document)")


def run(args: argparse.Namespace) -> int:
    from matrix.cli.output import (
        check_github_summary,
        confirmer,
        print_changes,
        print_json_result,
        report_failures,
        write_report,
    )
    from matrix.cli.progress import Reporter
    from matrix.config import load_config
    from matrix.publish.release import refresh_releases
    from matrix.stopping import stopping_safely
    from matrix.versions import parse_lines

    reports: list[dict] = []
    # A failure's report lists the releases refreshed before it, then the failed one.
    with stopping_safely(), report_failures(args.report, None, before=reports):
        parse_lines(args.lines)  # refused before anything is read
        check_github_summary()
        loaded = load_config(args.config)
        settings = options.publish_settings(
            args, loaded, build=options.rebuild_settings(args, loaded)
        )
        with Reporter() as reporter, settings.registries.client() as client:
            for plan, report in refresh_releases(
                client,
                loaded,
                args.lines,
                settings,
                confirm=confirmer("refresh", reporter.pause),
                progress=reporter.step,
            ):
                if args.format != "json":
                    full = {spec.full_target for spec in plan.images}
                    print_changes(
                        [
                            c
                            for c in report.changes
                            if c.writes and (settings.dry_run or c.target in full)
                        ],
                        report.registry,
                    )
                reporter.finish(report)
                reports.append(report.to_dict())
    if settings.report:
        write_report(settings.report, reports)
    if args.format == "json":
        print_json_result(reports)
    return 0
