"""`matrix verify`: does the registry hold exactly what the plan says?"""

from __future__ import annotations

import argparse

from matrix.cli import options

HELP = "check that the registry holds the release as planned (exit 1 if not)"
DESCRIPTION = """\
Check that every planned image exists under its full tag with every planned
platform and with the planned version and commit in its annotations, and that
every sha and floating tag names it, in the registry and in every mirror (whose
images must have the registry's digests). Exit 0
only when all of it holds; otherwise
each missing or wrong tag and platform is listed and the exit code is 1.
Reads manifests only: one GET per image and one HEAD per other tag.
"""
EPILOG = """\
examples:
  matrix verify --version 2.11.5 --sha a597971f7156
  matrix verify --version 2.11.5 --registry 127.0.0.1:5000
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_target_options(parser)


def run(args: argparse.Namespace) -> int:
    from matrix.cli.output import print_changes
    from matrix.config import load_config
    from matrix.publish.state import plan_on_registry
    from matrix.publish.verify import verify_release

    selection = options.release_selection(args)
    loaded = load_config(args.config)
    registries = options.registries(args, loaded)
    failed = False
    with registries.client() as client:
        plan = plan_on_registry(client, loaded, selection, registries.target.host)
        hosts = [registries.target.host, *(m.host for m in registries.mirrors(plan))]
        for check in verify_release(client, plan, hosts):
            for problem in check.problems:
                print(f"{check.registry}/{problem}")
            print_changes(check.wrong, check.registry)
            if check.ok:
                print(
                    f"{plan.version} on {check.registry}: {len(plan.images)} images and "
                    f"{len(plan.targets)} tags as planned ({check.requests} requests)"
                )
            else:
                failed = True
                counted = f"{check.requests} requests"
                print(f"{plan.version} on {check.registry}: NOT as planned ({counted})")
    return 1 if failed else 0
