"""The `matrix` command line.

Each subcommand lives in its own module of this package: HELP, DESCRIPTION and
EPILOG for its --help, ``add_arguments(parser)`` and ``run(args) -> exit code``.
A run is thin: the arguments become `matrix.settings` records (through
`options`), one library call does the work, and `output` or `progress` show it.
No command module imports another. Modules keep heavy imports (httpx,
python-on-whales, jinja2, rich) inside their run functions, so that
``matrix plan`` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from matrix import __version__
from matrix.errors import BuildError, UserError

# Subcommand modules, in the order --help lists them.
COMMANDS = (
    "plan",
    "render",
    "build",
    "publish",
    "diff",
    "verify",
    "promote",
    "refresh",
    "missing",
    "retag",
    "tags",
)

DESCRIPTION = """\
Plan, build, publish and verify the release-matrix Docker images of Prefect.

A release such as 2.11.5 expands into one image per Python version x flavor
(standard, conda, kubernetes), each built for every platform of its line, and
tagged exactly as Prefect publishes it: 2.11.5-python3.10, 2.11-python3.10,
2-python3.10, 2-latest, sha-<commit>-python3.10 and the -conda twins.
The facts per release line live in versions.toml (see --config).
"""

EPILOG = """\
examples:
  matrix plan --version 2.11.5                 what 2.11.5 publishes, as a table
  matrix plan --version 2.11.5 --format json   the same, for programs
  matrix plan --version 2.10.22 --releases releases.txt
                                               a backport: only 2.10-* tags move

exit codes: 0 success; 1 a check found a difference (verify) or an image failed
to build; 2 bad input, a registry's bad answer or a refusal (one line on stderr;
nothing was pushed or moved); 130 or 143 publish, promote or refresh stopped by
SIGINT or SIGTERM at a safe point (one line, --report written; a rerun completes).
"""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: what is wrong and where to look."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="matrix",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"matrix {__version__}")
    subparsers = parser.add_subparsers(
        title="commands", metavar="COMMAND", required=True, parser_class=_Parser
    )
    for name in COMMANDS:
        command = importlib.import_module(f"matrix.cli.{name}")
        subparser = subparsers.add_parser(
            name,
            help=command.HELP,
            description=command.DESCRIPTION,
            epilog=command.EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.add_arguments(subparser)
        subparser.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from matrix.stopping import Stopped

    try:
        return args.run(args)
    except Stopped as error:
        # Cancelled (GitHub sends SIGINT, then SIGTERM): the shell's code for the signal.
        print(f"matrix: {error}", file=sys.stderr)
        if not error.waited:
            # A second signal: the process ends now, not after the write that hangs,
            # and nothing it still finishes prints after this line.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(error.exit_code)
        return error.exit_code
    except UserError as error:
        print(f"matrix: error: {error}", file=sys.stderr)
        return 2
    except BuildError as error:
        print(f"matrix: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("matrix: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (`| head`) went away: not an error of ours.
        sys.stderr.close()
        return 0
