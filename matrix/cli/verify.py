"""`matrix verify`: does the registry hold exactly what the plan says?"""

from __future__ import annotations

import argparse

from matrix.cli import release

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
    release.add_target_options(parser)


def run(args: argparse.Namespace) -> int:
    from matrix.cli import options
    from matrix.publish.reconcile import Action, describe, reconcile
    from matrix.publish.run import verify_problems
    from matrix.publish.state import read_state

    failed, counted = False, 0
    with options.registry_client(args) as client:
        plan, registry, _ = release.plan_against_registry(args, client)
        for host in (registry, *release.mirrors(args, plan, registry)):
            state = read_state(client, plan, host)
            problems = verify_problems(plan, state)
            if host == registry:
                primary = state.images
            else:  # a mirror holds the primary's images, byte for byte
                problems += [
                    f"{spec.full_target} = {image.digest}, not {primary[spec.key].digest} "
                    f"as on {registry}"
                    for spec in plan.images
                    if (image := state.images.get(spec.key))
                    and primary.get(spec.key)
                    and image.digest != primary[spec.key].digest
                ]
            wrong = [c for c in reconcile(plan, state) if c.action is not Action.KEEP]
            for problem in problems:
                print(f"{host}/{problem}")
            for change in wrong:
                print(describe(change, host))
            # The first registry's count includes reading its tags to judge "newest".
            requests, counted = client.requests.total - counted, client.requests.total
            if problems or wrong:
                failed = True
                print(f"{plan.version} on {host}: NOT as planned ({requests} requests)")
            else:
                print(
                    f"{plan.version} on {host}: {len(plan.images)} images and "
                    f"{len(plan.targets)} tags as planned ({requests} requests)"
                )
    return 1 if failed else 0
