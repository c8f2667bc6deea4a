"""`matrix publish`: the whole release, safe to run again."""

from __future__ import annotations

import argparse
from pathlib import Path

from matrix.cli import options

HELP = "build, push, verify and promote a release; a rerun repairs a failed one"
DESCRIPTION = """\
Publish a release in four phases:
  1. plan, read every registry once (manifest HEADs, GETs and tag lists; no
     pulls) and decide every build, copy and tag: what --dry-run prints, and
     what the question before writing lists; a dry run reads no base image and
     no package index (unless --refresh), needs no build engine, writes nothing
     to disk, and notes what it could not tell without the build inputs;
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
Two publishes of one release at once (Prefect's run and a catch-up, say) agree:
a full tag another writer filled since this run read it is kept, not written over,
and any other tag another writer moved meanwhile stops the run in one line.
A floating tag a rollback holds (`matrix promote`) is left alone, unless this
release is newer than the newest of the line at rollback time; with --latest or
--no-latest the floating tags are decided by hand, and the run records (or clears)
holds as promote does.
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
    options.add_target_options(parser)
    options.add_rebuild_options(parser)
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
    options.add_report(parser, "what the run did and why (the --format json document)")


def run(args: argparse.Namespace) -> int:
    import os

    from matrix.cli.runner import run_release
    from matrix.publish.holds import operator
    from matrix.publish.release import publish_release
    from matrix.settings import Policy

    def settings_of(loaded):
        return options.publish_settings(
            args,
            loaded,
            policy=Policy(refresh=args.refresh, force=args.force_republish),
            build=options.rebuild_settings(args, loaded),
            digests=Path(args.digests) if args.digests else None,
            operator=operator(os.environ),
        )

    # The result on stdout: the tags written, or for a dry run every planned tag.
    return run_release(
        args,
        "publish",
        settings_of,
        publish_release,
        lambda change, settings: settings.dry_run or change.writes,
    )
