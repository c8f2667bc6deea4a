"""`matrix verify`: does the registry hold exactly what the plan says?"""

from __future__ import annotations

import argparse
from dataclasses import replace

from matrix.cli import options

HELP = "check that the registry holds the release as planned (exit 1 if not)"
DESCRIPTION = """\
Check that every planned image exists under its full tag with every planned
platform, that each platform's own image is there too (what a pull needs), that
the index is the planned image (its image key, version and commit annotations;
no other image of the release), and that every sha and floating tag names it, in
the registry and in every mirror (whose images must have the registry's digests).
A floating tag that a rollback holds at an older release (`matrix promote`) is
listed as held and is as expected.
Exit 0 only when all of it holds; otherwise each missing or wrong tag and
platform is listed and the exit code is 1 (2: the check could not be made).
With --latest or --no-latest the floating tags are judged as publish would write
them: a hold does not count. Reads manifests only: one GET per image, one HEAD per
platform image and one HEAD per other tag, and one HEAD per release repository for
the holds record (a GET where there is one); never a blob unless --sizes or --attestations.

--sizes adds each platform image's compressed size (its config and layers, as its
manifest declares them, what a pull downloads) and its largest layers with the
Dockerfile step that made each, for the target registry. It costs one manifest GET
per platform image (on Docker Hub each counts as a pull, like a pull of that
platform) and one blob GET per platform for its config (a few KB; Docker Hub does
not count blob reads as pulls); the release's other checks cost the same as without.
--compare V adds release V's size of each image and platform and the change (V's
full tags are read too: one GET per image, and per platform a HEAD, a GET and a
config blob GET); platform images only V has are listed apart.

With --attestations, every platform image must also carry an SBOM and a provenance
statement (attestation manifests in the index, as buildx writes them, else OCI
referrers, as matrix attaches them on the podman path), and the SBOM must list the
Python packages of the lock recorded on the image (io.prefect.matrix.lock-pins) with
their versions; this reads each platform's documents (a few GETs and blob reads each).
"""
EPILOG = """\
examples:
  matrix verify --version 2.11.5 --sha a597971f7156
  matrix verify --version 2.11.5 --registry 127.0.0.1:5000
  matrix verify --version 3.4.25 --sizes
  matrix verify --version 3.4.25 --compare 3.4.24
  matrix verify --version 2.11.5 --attestations
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_target_options(parser)
    options.add_result_format(parser)
    parser.add_argument(
        "--sizes",
        action="store_true",
        help="also report each platform image's compressed size and largest layers "
        "(a manifest GET, a pull on Docker Hub, and a config blob GET per platform)",
    )
    parser.add_argument(
        "--compare",
        metavar="V",
        help="with --sizes (implied), also each image's size in release V and the change "
        "(V's full tags read too: a GET per image, a HEAD, a GET and a config blob GET "
        "per platform)",
    )
    parser.add_argument(
        "--attestations",
        action="store_true",
        help="also check that every platform image has an SBOM listing exactly its lock's "
        "Python packages and a provenance statement (reads them: a few GETs per platform)",
    )


def run(args: argparse.Namespace) -> int:
    from matrix.cli.output import print_changes, print_json_result
    from matrix.config import load_config
    from matrix.errors import UserError
    from matrix.publish.reconcile import change_to_dict
    from matrix.publish.sizes import size_report
    from matrix.publish.state import plan_on_registry
    from matrix.publish.verify import verify_release

    selection = options.release_selection(args)
    loaded = load_config(args.config)
    registries = options.registries(args, loaded)
    earlier = None
    if args.compare:
        # Only its full tags are read: which releases are newest does not matter.
        other = replace(selection, version=args.compare, commit=None, branch=None, known=())
        try:
            earlier = other.plan(loaded)
        except UserError as error:
            raise UserError(f"--compare {args.compare}: {error}") from None
    with registries.client() as client:
        plan = plan_on_registry(client, loaded, selection, registries.target.host)
        hosts = [registries.target.host, *(m.host for m in registries.mirrors(plan))]
        checks = list(
            verify_release(
                client,
                plan,
                hosts,
                holds=selection.latest is None,
                attestations=args.attestations,
            )
        )
        sizes = None
        if args.sizes or earlier is not None:
            sizes = size_report(client, plan, hosts[0], checks[0].images, earlier)
    failed = not all(check.ok for check in checks)
    if args.format == "json":
        document = {
            "version": plan.version,
            "ok": not failed,
            "registries": [
                {
                    "registry": check.registry,
                    "ok": check.ok,
                    "problems": check.problems,
                    "wrong": [change_to_dict(c) for c in check.wrong],
                    "held": [change_to_dict(c) for c in check.held],
                    "requests": check.requests,
                }
                for check in checks
            ],
            "notes": list(plan.notes),
        }
        if sizes is not None:
            document["sizes"] = sizes.to_dict()
        print_json_result(document)
        return 1 if failed else 0
    for check in checks:
        for problem in check.problems:
            print(f"{check.registry}/{problem}")
        print_changes(check.wrong, check.registry)
        print_changes(check.held, check.registry)
        counted = f"{check.requests} requests"
        if check.held:
            counted += f"; {len(check.held)} floating tags held by a rollback, as recorded"
        if check.ok:
            print(
                f"{plan.version} on {check.registry}: {len(plan.images)} images and "
                f"{len(plan.targets)} tags as planned ({counted})"
            )
        else:
            print(f"{plan.version} on {check.registry}: NOT as planned ({counted})")
    if sizes is not None:
        sizes.print()
    return 1 if failed else 0
