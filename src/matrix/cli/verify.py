"""`matrix verify`: does the registry hold exactly what the plan says?"""

from __future__ import annotations

import argparse

from matrix.cli import release

HELP = "check that the registry holds the release as planned (exit 1 if not)"
DESCRIPTION = """\
Check that every planned image exists under its full tag with every planned
platform and with the planned version and commit in its annotations, and that
every sha and floating tag names it. Exit 0 only when all of it holds; otherwise
each missing or wrong tag and platform is listed and the exit code is 1.
Reads manifests only: one GET per image and one HEAD per other tag.
"""
EPILOG = """\
examples:
  matrix verify --version 2.11.5 --sha a597971f7156
  matrix verify --version 2.11.5 --registry 127.0.0.1:5000
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    release.add_target_options(parser)


def run(args: argparse.Namespace) -> int:
    from matrix.cli import options
    from matrix.publish.reconcile import Action, describe, reconcile
    from matrix.publish.run import verify_problems
    from matrix.publish.state import read_state

    with options.registry_client(args) as client:
        plan, registry, _ = release.plan_against_registry(args, client)
        state = read_state(client, plan, registry)
        problems = verify_problems(plan, state)
        wrong = [c for c in reconcile(plan, state) if c.action is not Action.KEEP]
        requests = client.requests.total
    for problem in problems:
        print(problem)
    for change in wrong:
        print(describe(change, registry))
    if problems or wrong:
        print(f"{plan.version} on {registry}: NOT as planned ({requests} requests)")
        return 1
    tags = len(plan.targets)
    print(
        f"{plan.version} on {registry}: {len(plan.images)} images and {tags} tags as planned "
        f"({requests} requests)"
    )
    return 0
