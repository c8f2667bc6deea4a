"""`matrix build`: render a release and build its images with buildx or podman."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

from matrix.cli import options
from matrix.platform import short
from matrix.settings import ENGINES

HELP = "build (and push) the images of a release with docker buildx or podman"
DESCRIPTION = """\
Render the release's build contexts and build every planned image, for every platform
of its line, with docker buildx (default) or podman through python-on-whales (podman's
builds through its own command line: python-on-whales has no --timestamp).

--push pushes the immutable tags only (full and sha): floating tags (2.11-…, 2-…,
2-latest) move later, once every image under them is complete. --push-by-digest
pushes one platform untagged, so each platform can build on its own native runner;
--digests-out DIR records each pushed digest in a small file there, with the
image's build inputs (its bases' digests read from their registries), and
`matrix publish --digests DIR` merges them into the tagged indexes afterwards.

Every image installs its lock: its exact dependencies with hashes, resolved with uv
as of the release's upload to the package index (--index-url), or from --dist for a
dev build; a release the index lacks yet stops the build before anything runs.

Every timestamp in an image (its config, history and layer files) is set to
$SOURCE_DATE_EPOCH, else to its lock's date (for a release: a second after its upload
to the index, or the date an earlier build recorded), so the same inputs give the
same digest (podman --timestamp; buildx SOURCE_DATE_EPOCH and rewrite-timestamp).
--check-reproducible builds every image twice and compares the digests the
registry reports for the two pushes.
"""
EPILOG = """\
examples:
  matrix build --version 2.11.5 --dry-run                  the exact calls, nothing run
  matrix build --version 2.11.5 --sha a597971f7156 --push
  matrix build --version 2.11.5 --python 3.10 --flavor conda --platform linux/arm64 \\
               --push-by-digest --digests-out digests/     one GitHub Actions job
  matrix build --version 2.11.5 --engine podman --registry 127.0.0.1:5000 --push
  matrix build --version 3.4.25+12.gabc1234 --dist dist/ --engine podman \\
               --base-mirror docker.io=127.0.0.1:5000 --registry 127.0.0.1:5000 --push
  matrix build --version 2.11.5 --python 3.11 --flavor standard --platform linux/amd64 \\
               --engine podman --registry 127.0.0.1:5000 --push --keep-local
                                                        then podman run the pushed tag
  matrix build --version 2.11.5 --engine podman --registry 127.0.0.1:5000 \\
               --check-reproducible                 two builds, one digest each image

exit codes: 0 every image built (and, checked, reproducible), 1 an image failed or
its two builds differ (named on stderr), 2 bad input.
"""
CHECK_PREFIX = "reproducible-check-"
STATE_STYLES = {"waiting": "dim", "building": "yellow", "done": "green", "failed": "bold red"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_release_selection(parser)
    options.add_config(parser)
    options.add_registry(parser)
    options.add_registry_options(parser)
    options.add_image_sources(parser)
    what = parser.add_argument_group("what to build")
    what.add_argument(
        "--platform",
        action="append",
        default=[],
        metavar="OS/ARCH",
        help="only this platform of the line's (repeatable)",
    )
    what.add_argument("--push", action="store_true", help="push the full and sha tags")
    what.add_argument(
        "--push-by-digest",
        action="store_true",
        help="push one platform (--platform) untagged and report its digest",
    )
    what.add_argument(
        "--digests-out",
        metavar="DIR",
        help="with --push-by-digest: write each pushed digest to a file in DIR, for "
        "`matrix publish --digests DIR`",
    )
    what.add_argument(
        "--keep-local",
        action="store_true",
        help="with --push, --engine podman and one --platform: keep the pushed image in "
        "podman's storage under its tags, to run it (by default what is pushed is removed)",
    )
    what.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra image label, e.g. a CI run URL (repeatable)",
    )
    what.add_argument(
        "--out",
        metavar="DIR",
        help="keep the rendered contexts here (default: a temporary folder)",
    )
    how = parser.add_argument_group("how to build")
    how.add_argument("--engine", choices=ENGINES, default="buildx")
    how.add_argument("--builder", metavar="NAME", help="buildx builder to use")
    how.add_argument(
        "--create-builder",
        action="store_true",
        help="docker buildx create a fresh docker-container builder (named by --builder, "
        "default matrix) first",
    )
    how.add_argument(
        "--cache-repository",
        metavar="REPO",
        help="registry cache, one tag per image: REPO:buildcache-<key> (buildx)",
    )
    how.add_argument("--cache-mode", choices=("min", "max"), default="max")
    how.add_argument(
        "--provenance",
        action=argparse.BooleanOptionalAction,
        help="attach an SLSA provenance statement to every platform image (default: when "
        "pushing; buildx: mode=max in the index, podman: an OCI referrer)",
    )
    how.add_argument(
        "--sbom",
        action=argparse.BooleanOptionalAction,
        help="attach an SBOM to every platform image (default: when pushing; buildx: "
        "BuildKit's SPDX in the index, podman: matrix's CycloneDX as an OCI referrer)",
    )
    run_group = parser.add_argument_group("running")
    run_group.add_argument(
        "--dry-run",
        action="store_true",
        help="print the exact python-on-whales calls and command lines, run nothing (a "
        "--push-by-digest run also adds the build id label and annotations, which need "
        "the base images' digests from their registries)",
    )
    run_group.add_argument(
        "--check-reproducible",
        action="store_true",
        help="build every image twice, pushing each build to the check tag "
        f"<repository>:{CHECK_PREFIX}<full tag> (never a release tag), and compare the "
        "two digests the registry reports: exit 1 when they differ",
    )
    run_group.add_argument(
        "--keep-going",
        action="store_true",
        help="after a failed image, build the others anyway",
    )
    run_group.add_argument(
        "--format",
        choices=("table", "json"),
        default="table",
        help="json prints every image's pushed digests on stdout, for programs",
    )


def run(args: argparse.Namespace) -> int:
    from matrix.config import load_config
    from matrix.errors import UserError
    from matrix.publish.build import build_job
    from matrix.settings import parse_labels

    if args.check_reproducible and (
        args.push or args.push_by_digest or args.keep_local or args.dry_run
    ):
        raise UserError(
            "--check-reproducible pushes its two builds to check tags only: drop --push, "
            "--push-by-digest, --keep-local and --dry-run"
        )
    selection = options.release_selection(args)
    loaded = load_config(args.config)
    registries = options.registries(args, loaded)
    build = options.build_settings(
        args,
        loaded,
        args.insecure_registry,
        engine=args.engine,
        builder=args.builder,
        create_builder=args.create_builder,
        platforms=tuple(args.platform),
        push=args.push or args.check_reproducible,
        push_by_digest=args.push_by_digest,
        digests_out=Path(args.digests_out) if args.digests_out else None,
        keep_local=args.keep_local,
        labels=parse_labels(args.label),
        cache_repository=args.cache_repository,
        cache_mode=args.cache_mode,
        provenance=args.provenance,
        sbom=args.sbom,
        keep_going=args.keep_going,
    )
    with (
        tempfile.TemporaryDirectory(prefix="matrix-build-") as scratch,
        registries.client() as client,
    ):
        out = Path(args.out) if args.out else Path(scratch) / "contexts"
        build = replace(build, workdir=Path(scratch) / "work")
        plan = selection.plan(loaded)
        job = build_job(client, plan, loaded, build, registries, out, dry_run=args.dry_run)
        if args.dry_run:
            for line in job.calls():
                print(line)
            return 0
        job.engine.prepare()
        if args.check_reproducible:
            return _check_reproducible(job, build.keep_going, args.format)
        results, failures = _run_builds(job.engine, job.requests, keep_going=build.keep_going)
    for result in results:
        job.record(result)
    if args.format == "json":
        json.dump(
            {
                "results": [_result_json(result) for result in results],
                "failed": [{"key": f.key, "error": str(f)} for f in failures],
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    for failure in failures:
        print(f"matrix: error: {failure}", file=sys.stderr)
    return 1 if failures else 0


def check_tag(request) -> str:
    """Where --check-reproducible pushes ``request``: its full tag's name behind the
    check prefix, in its own repository, so no release tag moves."""
    name = request.tags[0].rpartition(":")[2]
    return f"{request.repository}:{CHECK_PREFIX}{name}"


def _check_reproducible(job, keep_going: bool, output: str) -> int:
    """Build every image twice from the same context and epoch, each build pushed, and
    compare what the registry reports: a local image id is not what users pull."""
    requests = [replace(r, tags=(check_tag(r),), push=True) for r in job.requests]
    first, failures = _run_builds(job.engine, requests, keep_going=keep_going)
    built = {result.key for result in first}
    again = [r for r in requests if r.key in built] if keep_going or not failures else []
    second, more = _run_builds(job.engine, again, keep_going=keep_going)
    failures += more
    seconds = {result.key: result for result in second}
    checked = [
        {
            "key": result.key,
            "tag": result.tags[0],
            "first": result.digest,
            "second": seconds[result.key].digest,
            "reproducible": result.digest == seconds[result.key].digest,
        }
        for result in first
        if result.key in seconds
    ]
    if output == "json":
        json.dump(
            {"checked": checked, "failed": [{"key": f.key, "error": str(f)} for f in failures]},
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        for entry in checked:
            if entry["reproducible"]:
                print(f"{entry['key']}: reproducible, both builds pushed {entry['first']}")
            else:
                print(f"{entry['key']}: differs: {entry['first']} then {entry['second']}")
    for entry in checked:
        if not entry["reproducible"]:
            print(
                f"matrix: error: {entry['key']}: two builds of the same inputs pushed "
                f"{entry['first']} and {entry['second']}",
                file=sys.stderr,
            )
    for failure in failures:
        print(f"matrix: error: {failure}", file=sys.stderr)
    return 1 if failures or not all(entry["reproducible"] for entry in checked) else 0


def _run_builds(engine, requests, *, keep_going: bool):
    """Build one image after the other, shown live: one line per image."""
    from contextlib import nullcontext

    from rich.console import Console
    from rich.live import Live

    from matrix.engines import BuildFailed

    # soft_wrap: a log line (a digest, a reference) is never cut or wrapped in a CI log.
    console = Console(stderr=True, highlight=False, soft_wrap=True)
    view = _View(requests, live=console.is_terminal)
    results, failures = [], []

    def show(key: str, state: str, detail: str) -> None:
        view.states[key] = (state, detail)
        if not view.live:  # no live table to cut a value: one plain line per step
            console.print(f"[{key}] {state}{f': {detail}' if detail else ''}", markup=False)

    live = Live(view, console=console, refresh_per_second=8) if view.live else nullcontext()
    with live:
        for request in requests:
            if failures and not keep_going:
                show(request.key, "waiting", "skipped: an earlier image failed")
                continue
            view.states[request.key] = ("building", "")

            def log(line: str, key: str = request.key) -> None:
                view.states[key] = ("building", line)
                if not view.live:
                    console.print(f"[{key}] {line}", markup=False)

            try:
                result = engine.build(request, log)
            except BuildFailed as failure:
                failures.append(failure)
                show(request.key, "failed", str(failure))
            else:
                results.append(result)
                show(request.key, "done", _describe(result))
    for failure in failures:
        console.rule(f"{failure.key}: last lines of the log", style="red")
        for line in failure.log_tail:
            console.print(line, highlight=False, markup=False)
    return results, failures


class _View:
    """A rich renderable: one row per image with its state and latest log line."""

    def __init__(self, requests, *, live: bool) -> None:
        self.live = live
        self.platforms = {r.key: short(r.platforms) for r in requests}
        self.states: dict[str, tuple[str, str]] = {r.key: ("waiting", "") for r in requests}

    def __rich__(self):
        from rich.table import Table
        from rich.text import Text

        table = Table.grid(padding=(0, 2))
        for key, (state, detail) in self.states.items():
            table.add_row(
                Text(key, style="bold"),
                Text(self.platforms[key], style="dim"),
                Text(state, style=STATE_STYLES[state]),
                Text(detail[-120:], no_wrap=True, overflow="ellipsis"),
            )
        return table


def _describe(result) -> str:
    if result.digest:
        return f"pushed {result.digest}"
    return "built" if not result.tags else f"built {' '.join(result.tags)}"


def _result_json(result) -> dict:
    return {
        "key": result.key,
        "digest": result.digest,
        "media_type": result.media_type,
        "platform_digests": dict(result.platform_digests),
        "tags": list(result.tags),
    }
