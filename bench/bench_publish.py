"""Registry requests and wall time of a first `publish`, `verify` and a no-op rerun.

Run: python bench/bench_publish.py   (needs Debian's docker-registry)
A real registry on 127.0.0.1 gets a full fixture release of 4 Pythons x 3
flavors x 2 platforms, published once, asking before it writes as at a terminal
(the question costs no request: publish reads the registry once); then verify and
a no-op rerun of publish are measured, and all again for twice the images to show
the count grows linearly. Target: no blob reads at all; requests linear in images.
verify and a rerun read each image's index, a HEAD per platform image it names (a
pull needs them) and a HEAD per other tag.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.images import push_index
from tests.support.registry_server import serving

from matrix.config import load_config
from matrix.plan import plan_release
from matrix.publish.annotations import annotations_for
from matrix.publish.run import publish
from matrix.publish.state import reference
from matrix.publish.verify import verify_release
from matrix.registry import RegistryClient

CONFIG = """\
schema = 1
registry = "docker.io"
[defaults]
platforms = ["linux/amd64", "linux/arm64"]
release_sha_tags = true
sha_length = 7
prerelease_dev_tags = "none"
images = ["prefect"]
[images.prefect]
repository = "bench/prefect{n}"
dev_repository = "bench/prefect{n}-dev"
source = "https://github.com/PrefectHQ/prefect"
flavors = ["standard", "conda", "kubernetes"]
[flavors.standard]
suffix = ""
template = "standard.Dockerfile.j2"
[flavors.conda]
suffix = "-conda"
template = "standard.Dockerfile.j2"
[flavors.kubernetes]
suffix = "-kubernetes"
template = "standard.Dockerfile.j2"
[[lines]]
versions = ">=2.11.0, <2.12.0"
latest_python = "3.10"
python.standard = {pythons}
python.conda = {pythons}
python.kubernetes = {pythons}
"""


def measure(folder: Path, host: str, pythons: list[str], n: int) -> None:
    path = folder / f"versions{n}.toml"
    path.write_text(CONFIG.format(n=n, pythons=pythons))
    loaded = load_config(path)
    plan = plan_release(loaded, "2.11.5", commit="a597971f7156", latest=True)
    with RegistryClient() as client:

        def build(spec, replacing=None):
            assert replacing is None, "the benchmark publishes a new release"
            push_index(
                client,
                reference(host, spec.full_target),
                spec.platforms,
                salt=spec.key,
                annotations=annotations_for(plan, spec),
            )

        asked: list[int] = []
        client.requests.reset()
        start = time.perf_counter()
        # As at a terminal: the run asks before it writes, from its one reading.
        publish(client, plan, host, build, confirm=lambda preview: asked.append(preview.pending))
        report("first publish", plan, client, time.perf_counter() - start)
        print(f"{'':>14}  asked once, about {asked[0]} tags")
        for label, action in (
            ("verify", lambda: list(verify_release(client, plan, [host]))),
            ("no-op publish", lambda: publish(client, plan, host, build)),
        ):
            client.requests.reset()
            start = time.perf_counter()
            action()
            report(label, plan, client, time.perf_counter() - start)


def report(label: str, plan, client: RegistryClient, elapsed: float) -> None:
    by_method = client.requests.by_method
    blob_reads = f"{client.requests.blob_reads} blob reads"
    print(
        f"{label:>14}: {len(plan.images):2d} images x 2 platforms, "
        f"{len(plan.targets)} tags: {client.requests.total} requests {by_method}, "
        f"{elapsed * 1000:.0f} ms, {blob_reads}"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as folder, serving(Path(folder) / "registry") as server:
        measure(Path(folder), server.host, ["3.9", "3.10", "3.11", "3.12"], 1)
        pythons = [f"3.{m}" for m in range(5, 13)]
        measure(Path(folder), server.host, pythons, 2)


if __name__ == "__main__":
    main()
