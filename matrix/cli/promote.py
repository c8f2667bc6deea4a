"""`matrix promote`: point the floating tags at a release, e.g. to roll back."""

from __future__ import annotations

import argparse

from matrix.cli import options

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
    options.add_target_options(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the moves, change nothing")


def run(args: argparse.Namespace) -> int:
    from matrix.cli.output import print_changes
    from matrix.cli.progress import Reporter
    from matrix.config import load_config
    from matrix.publish.release import promote_release

    selection = options.release_selection(args)
    loaded = load_config(args.config)
    settings = options.publish_settings(args, loaded)
    with Reporter() as reporter, settings.registries.client() as client:
        report = promote_release(client, loaded, selection, settings, progress=reporter.step)
    print_changes([c for c in report.changes if c.writes or settings.dry_run], report.registry)
    reporter.finish(report)
    return 0
