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
release is missing or incomplete: an image missing under its full tag, a platform
image missing under it, or another image of the release there.
Lists the tags it would write (from -> to), then asks; without a terminal it
refuses unless --yes.

A rollback holds: the floating tags moved back behind the newest release of their
line are recorded in the registry (the reserved tag matrix-holds of each
repository: which tag, at which release, by whom, when), and publish, refresh, the
scheduled catch-up (`matrix missing`) and verify leave them there. A promote of
the newest release (forward), or the publish of a release newer than the newest
at rollback time, clears the hold.
"""
EPILOG = """\
examples:
  matrix promote --version 2.11.4 --dry-run      show the moves of a rollback
  matrix promote --version 2.11.4                roll the floating tags back (asks first)
  matrix promote --version 2.11.5 --yes          and forward again, without asking (CI)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_target_options(parser)
    options.add_writing_options(parser, "moves")
    options.add_result_format(parser)
    options.add_report(parser, "what the run did and why (the --format json document)")


def run(args: argparse.Namespace) -> int:
    import os

    from matrix.cli.runner import run_release
    from matrix.publish.holds import operator
    from matrix.publish.release import promote_release

    return run_release(
        args,
        "promote",
        lambda loaded: options.publish_settings(args, loaded, operator=operator(os.environ)),
        promote_release,
        shown=lambda change, settings: change.writes or settings.dry_run,
    )
