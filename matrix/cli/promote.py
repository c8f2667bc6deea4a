"""`matrix promote`: point the floating tags at a release, e.g. to roll back."""

from __future__ import annotations

import argparse

from matrix.cli import release

HELP = "point the floating tags at a release's images (roll back or forward)"
DESCRIPTION = """\
Point the minor, major and N-latest tags (and the sha tags) at the images of
--version, by manifest copy: no layer is pulled or pushed. Unless --no-latest is
given the release is treated as the newest of its line, which is what a rollback
needs: `matrix promote --version 2.11.4` moves 2-latest, 2-python3.10 and
2.11-python3.10 back to 2.11.4. Refuses, changing nothing, when any image of the
release is missing or incomplete.
"""
EPILOG = """\
examples:
  matrix promote --version 2.11.4 --dry-run      show the moves of a rollback
  matrix promote --version 2.11.4                roll the floating tags back
  matrix promote --version 2.11.5                and forward again
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    release.add_target_options(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the moves, change nothing")


def run(args: argparse.Namespace) -> int:
    from matrix.cli import options
    from matrix.cli.progress import Reporter
    from matrix.publish.reconcile import describe
    from matrix.publish.run import promote

    with Reporter() as reporter, options.registry_client(args) as client:
        latest = True if args.latest is None else args.latest
        plan, registry, _ = release.plan_against_registry(args, client, latest=latest)
        report = promote(
            client,
            plan,
            registry,
            mirrors=release.mirrors(args, plan, registry),
            dry_run=args.dry_run,
            progress=reporter.step,
        )
    for change in report.changes:
        if change.writes or args.dry_run:
            print(describe(change, registry))
    reporter.finish(report)
    return 0
