"""Registry requests of a no-op `matrix refresh` of every line.

Run: python bench/bench_refresh.py   (needs Debian's docker-registry)
A real registry on 127.0.0.1 holds one base image per flavor and, for each of
N minor lines, a release of 4 Pythons x 3 flavors x 2 platforms published with
its build ids. `matrix refresh --lines <all of them>` then finds every id
unchanged: nothing is built or written. Printed: requests (by method), blob
reads, and requests per image, for 2 and 4 lines.
Target: no blob reads at all; requests linear in images.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.images import push_index
from tests.support.registry_server import serving

from matrix.buildid import gather_many
from matrix.cli import main
from matrix.config import load_config
from matrix.plan import plan_release
from matrix.publish.annotations import annotations_for
from matrix.publish.run import publish
from matrix.publish.state import reference
from matrix.reference import ImageReference
from matrix.registry import RegistryClient
from matrix.render import render_plan
from matrix.versions import parse_version

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]
FLAVORS = {"standard": "", "conda": "-conda", "kubernetes": "-kubernetes"}
TEMPLATE = """\
{% for name, value in build_args.items() %}
ARG {{ name }}={{ value | quoted }}
{% endfor %}
FROM ${BASE_IMAGE}
LABEL {% for name, value in labels.items() %}{{ name }}={{ value | quoted }} {% endfor %}
"""


def write_config(folder: Path, host: str, n: int) -> Path:
    flavors = "".join(
        f'[flavors.{name}]\nsuffix = "{suffix}"\ntemplate = "bench.Dockerfile.j2"\n'
        f'build_args = {{ BASE_IMAGE = "{host}/bench{n}/base:{name}" }}\n'
        for name, suffix in FLAVORS.items()
    )
    pythons = json.dumps(PYTHONS)
    config = f"""\
schema = 1
registry = "{host}"
[defaults]
platforms = ["linux/amd64", "linux/arm64"]
release_sha_tags = true
sha_length = 7
prerelease_dev_tags = "none"
images = ["prefect"]
[images.prefect]
repository = "bench{n}/prefect"
dev_repository = "bench{n}/prefect-dev"
source = "https://github.com/PrefectHQ/prefect"
flavors = {json.dumps(list(FLAVORS))}
{flavors}
[[lines]]
versions = ">=2.0.0, <3.0.0"
latest_python = "3.10"
python.standard = {pythons}
python.conda = {pythons}
python.kubernetes = {pythons}
"""
    (folder / "dockerfiles").mkdir(parents=True, exist_ok=True)
    (folder / "dockerfiles" / "bench.Dockerfile.j2").write_text(TEMPLATE)
    path = folder / "versions.toml"
    path.write_text(config)
    return path


def publish_lines(client: RegistryClient, path: Path, host: str, n: int, lines: int) -> int:
    """Publish 2.0.0 ... 2.<lines-1>.0 with their build ids; the number of images."""
    loaded = load_config(path)
    for flavor in FLAVORS:
        push_index(client, ImageReference(host, f"bench{n}/base", flavor), salt=flavor)
    images = 0
    known = []
    for minor in range(lines):
        version = f"2.{minor}.0"
        plan = plan_release(loaded, version, commit=f"{minor:07x}abc", known=known)
        contexts = {c.key: c.path for c in render_plan(plan, loaded, path.parent / version)}
        gathered = gather_many(
            client, [(s.key, contexts[s.key], s.build_args, s.platforms) for s in plan.images]
        )
        inputs = {key: found.to_record() for key, found in gathered.items()}

        def build(spec, replacing=None, plan=plan, inputs=inputs):
            assert replacing is None, "each line's release is new"
            push_index(
                client,
                reference(host, spec.full_target),
                spec.platforms,
                salt=f"{plan.version} {spec.key}",
                annotations=annotations_for(plan, spec, inputs[spec.key]),
            )

        publish(client, plan, host, build, inputs=inputs)
        known.append(parse_version(version))
        images += len(plan.images)
    return images


def measure(folder: Path, host: str, lines: int) -> None:
    path = write_config(folder / f"config{lines}", host, lines)
    with RegistryClient() as client:
        images = publish_lines(client, path, host, lines, lines)
    report = folder / f"refresh{lines}.json"
    selected = ",".join(f"2.{minor}" for minor in range(lines))
    started = time.perf_counter()
    code = main(
        [
            "refresh",
            *("--lines", selected, "--config", str(path), "--registry", host),
            *("--engine", "podman", "--workdir", str(folder / "work"), "--yes"),
            *("--report", str(report)),
        ]
    )
    elapsed = time.perf_counter() - started
    assert code == 0, "refresh failed"
    releases = json.loads(report.read_text())
    # Each release's report counts its own requests (the first also the tag lists).
    requests: dict[str, int] = {}
    for done in releases:
        for method, count in done["requests"].items():
            requests[method] = requests.get(method, 0) + count
    total = sum(requests.values())
    writes = sum(r["writes"] for r in releases)
    blob_reads = sum(r["blob_reads"] for r in releases)
    print(
        f"no-op refresh of {lines} lines, {images} images ({images * 2} platform images): "
        f"{total} requests {dict(sorted(requests.items()))}, {blob_reads} blob reads, "
        f"{writes} writes, {total / images:.2f} requests per image, {elapsed:.2f} s"
    )


def main_bench() -> None:
    with tempfile.TemporaryDirectory() as scratch, serving(Path(scratch) / "registry") as server:
        for lines in (2, 4):
            measure(Path(scratch), server.host, lines)


if __name__ == "__main__":
    main_bench()
