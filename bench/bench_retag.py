"""Retag figures: matrix against `skopeo copy --all`, on a local docker-registry.

Run: python bench/bench_retag.py
One two-platform image is retagged to 50 new tags of its repository, by matrix
(one `retag` call) and by skopeo (one `copy --all` per tag), in the same run.
Targets: matrix at least 10x faster per retag; at most 1.1 requests per tag.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support: the registry and image helpers

from tests.support.images import push_index  # noqa: E402
from tests.support.registry_server import serving  # noqa: E402

from matrix.reference import parse_reference  # noqa: E402
from matrix.registry import RegistryClient, retag  # noqa: E402

TAGS = 50
ROUNDS = 5


def matrix_round(client: RegistryClient, source, round_number: int) -> tuple[float, int]:
    targets = [source.with_tag(f"m{round_number}-{i}") for i in range(TAGS)]
    client.requests.reset()
    start = time.perf_counter()
    retag(client, source, targets)
    return time.perf_counter() - start, client.requests.total


def skopeo_round(source, round_number: int) -> float:
    start = time.perf_counter()
    for i in range(TAGS):
        subprocess.run(
            [
                "skopeo",
                "copy",
                "--all",
                "--quiet",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                f"docker://{source}",
                f"docker://{source.with_tag(f's{round_number}-{i}')}",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return time.perf_counter() - start


def main() -> None:
    with (
        tempfile.TemporaryDirectory() as workdir,
        serving(Path(workdir)) as server,
        RegistryClient() as client,
    ):
        source = parse_reference(f"{server.host}/bench/prefect:2.11.5-python3.10")
        push_index(client, source)
        runs = [matrix_round(client, source, n) for n in range(ROUNDS)]
        skopeo = statistics.median(skopeo_round(source, n) for n in range(ROUNDS))
        # Every tag must name the source's digest, for both tools.
        digest = client.head_manifest(source).digest
        for tag in (f"m0-{TAGS - 1}", f"s0-{TAGS - 1}"):
            assert client.head_manifest(source.with_tag(tag)).digest == digest
    seconds = statistics.median(t for t, _ in runs)
    requests = max(r for _, r in runs)
    per_matrix, per_skopeo = seconds / TAGS, skopeo / TAGS
    print(f"retag of a two-platform index to {TAGS} tags, median of {ROUNDS} rounds")
    print(f"  matrix: {per_matrix * 1000:8.2f} ms per retag ({seconds * 1000:.0f} ms in all)")
    print(f"  skopeo: {per_skopeo * 1000:8.2f} ms per retag ({skopeo * 1000:.0f} ms in all)")
    print(f"  speed-up: {per_skopeo / per_matrix:.0f}x (target at least 10x)")
    print(f"  requests: {requests} for {TAGS} tags, {requests / TAGS:.2f} per tag (target <= 1.1)")


if __name__ == "__main__":
    main()
