"""`matrix render`: write the build contexts of a release, one folder per image."""

from __future__ import annotations

import argparse
from pathlib import Path

from matrix.cli import options

HELP = "write one build context (Dockerfile) per image of a release"
DESCRIPTION = """\
Render the Dockerfile templates of a release into build contexts, one folder per
image key (prefect-python3.10-conda, ...). Rendering the same release twice gives
byte-identical files; SOURCE_DATE_EPOCH, when set, becomes the
org.opencontainers.image.created label. Each context holds its image's locks
(install/requirements-<arch>.lock), resolved with uv as of the release's upload to
the package index, and the --dist file if one is given.
"""
EPILOG = """\
examples:
  matrix render --version 2.11.5 --out contexts
  matrix render --version 2.11.5 --flavor conda --python 3.10
  matrix render --version 3.4.25+12.gabc1234 --dist dist/     a dev build from a wheel
"""
DEFAULT_OUT = "contexts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_release_selection(parser)
    options.add_config(parser)
    options.add_image_sources(parser)
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=DEFAULT_OUT,
        help=f"where the contexts go (default: ./{DEFAULT_OUT}); a key's folder is replaced",
    )


def run(args: argparse.Namespace) -> int:
    from matrix.config import load_config
    from matrix.publish.build import render_contexts

    selection = options.release_selection(args)
    loaded = load_config(args.config)
    build = options.build_settings(args, loaded)
    for context in render_contexts(selection.plan(loaded), loaded, Path(args.out), build):
        print(context.dockerfile)
    return 0
