"""How big each image of a release is, per platform, as a pull downloads it.

The compressed size of a platform image is what its manifest declares: the config's
size plus every layer's. Which step made a layer is in the image config's history
(one entry per step; those that made no layer say ``empty_layer``), so naming the
largest layers reads the config blob. Docker Hub counts a manifest GET as a pull and
a blob GET as none, but every blob read costs bandwidth: configs are small (a few KB).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from matrix.plan import ImageSpec, Plan
from matrix.platform import Platform
from matrix.publish.state import RemoteImage, reference
from matrix.reference import ImageReference
from matrix.registry.answers import MANIFEST_LIMIT
from matrix.registry.manifests import blobs, digest_matches, parse_manifest
from matrix.registry.transport import Where

LARGEST = 3
MB = 1_000_000


@dataclass(frozen=True)
class Layer:
    digest: str
    size: int
    created_by: str | None  # the history step that made it; None when the config has none


@dataclass(frozen=True)
class PlatformSize:
    image: str  # the plan's image key
    reference: str  # repository:full tag
    platform: str
    digest: str
    config_size: int
    layers: tuple[Layer, ...]

    @property
    def key(self) -> tuple[str, str]:
        """What stays the same across releases: arm64 is arm64/v8 whoever pushed it."""
        try:
            return self.image, str(Platform.parse(self.platform).normalized())
        except ValueError:  # an index entry with a part of its platform left out
            return self.image, self.platform

    @property
    def short_platform(self) -> str:
        return self.platform.removeprefix("linux/")

    @property
    def compressed(self) -> int:
        return self.config_size + sum(layer.size for layer in self.layers)

    def largest(self, count: int = LARGEST) -> list[Layer]:
        return sorted(self.layers, key=lambda layer: -layer.size)[:count]

    def to_dict(self) -> dict[str, Any]:
        return {
            "image": self.image,
            "reference": self.reference,
            "platform": self.platform,
            "digest": self.digest,
            "compressed_bytes": self.compressed,
            "config_bytes": self.config_size,
            "layers": len(self.layers),
            "largest": [
                {"digest": layer.digest, "bytes": layer.size, "created_by": layer.created_by}
                for layer in self.largest()
            ],
        }


def is_platform(platform: str) -> bool:
    """Attestation manifests sit in an index as unknown/unknown: not something to pull."""
    return not platform.startswith("unknown/")


def release_sizes(
    client, plan: Plan, registry: str, images: dict[str, RemoteImage | None]
) -> list[PlatformSize]:
    """Every platform image of the images found under their full tags, in plan order:
    a manifest GET and a config blob GET per platform. A missing image or platform
    manifest is verify's to report; it has no size here."""
    work = [
        (spec, platform, digest)
        for spec in plan.images
        if (image := images.get(spec.key)) is not None
        for platform, digest in sorted(image.children.items())
        if is_platform(platform) and platform not in image.missing
    ]

    def measure(item: tuple[ImageSpec, str, str]) -> PlatformSize:
        spec, platform, digest = item
        ref = reference(registry, spec.full_target).with_digest(digest)
        return platform_size(client, ref, spec, platform)

    return client.map(measure, work)


def platform_size(client, ref: ImageReference, spec: ImageSpec, platform: str) -> PlatformSize:
    assert ref.digest is not None
    manifest = parse_manifest(client.get_manifest(ref).content)
    found = blobs(manifest)  # the config first, when there is one
    config, layers = (found[0], found[1:]) if manifest.get("config") else (None, found)
    made_by: list[str | None] = [None] * len(layers)
    if config is not None:
        steps = _layer_steps(_read_config(client, ref, config.digest))
        if len(steps) == len(layers):  # else the history does not describe these layers
            made_by = list(steps)
    return PlatformSize(
        image=spec.key,
        reference=str(spec.full_target),
        platform=platform,
        digest=ref.digest,
        config_size=config.size if config else 0,
        layers=tuple(
            Layer(b.digest, b.size, step) for b, step in zip(layers, made_by, strict=True)
        ),
    )


def _read_config(client, ref: ImageReference, digest: str) -> dict[str, Any]:
    answer = client.transport.request(
        Where.of(ref, digest),
        "get image config",
        "GET",
        f"/v2/{ref.repository}/blobs/{digest}",
        limit=MANIFEST_LIMIT,
    )
    if not digest_matches(answer.body, digest):
        raise answer.where.error(f"the image config received does not match its digest {digest}")
    try:
        document = json.loads(answer.body)
    except ValueError:
        raise answer.bad("the image config is not JSON") from None
    if not isinstance(document, dict):
        raise answer.bad("the image config is not a JSON object")
    return document


def _layer_steps(config: dict[str, Any]) -> list[str | None]:
    """The step that made each layer, bottom up: the history without its empty layers."""
    history = config.get("history")
    if not isinstance(history, list):
        return []
    return [
        _step_text(entry.get("created_by"))
        for entry in history
        if isinstance(entry, dict) and not entry.get("empty_layer")
    ]


def _step_text(created_by: object) -> str | None:
    """A Dockerfile step as people wrote it: no shell prefix, build args or BuildKit mark."""
    if not isinstance(created_by, str) or not created_by.strip():
        return None
    text = " ".join(created_by.split()).removesuffix("# buildkit").strip()
    text = text.removeprefix("/bin/sh -c #(nop) ")
    instruction, _, rest = text.partition(" ")
    if instruction == "RUN" and rest.startswith("|"):
        # BuildKit names the build args a RUN saw first: "RUN |2 A=1 B=2 /bin/sh -c ..."
        count, _, rest = rest[1:].partition(" ")
        if count.isdigit():
            text = "RUN " + " ".join(rest.split(" ")[int(count) :])
    text = text.replace("RUN /bin/sh -c ", "RUN ", 1)
    if text.startswith("/bin/sh -c "):
        text = "RUN " + text.removeprefix("/bin/sh -c ")
    return text


@dataclass
class SizeReport:
    """The sizes of a release's platform images in one registry, what reading them
    cost, and, compared with another release, each one's size there."""

    registry: str
    sizes: list[PlatformSize]
    requests: int = 0
    blob_reads: int = 0
    compared: str | None = None  # the other release's version
    before: dict[tuple[str, str], PlatformSize] = field(default_factory=dict)

    def previous(self, size: PlatformSize) -> PlatformSize | None:
        return self.before.get(size.key)

    def dropped(self) -> list[PlatformSize]:
        """The other release's platform images this one has no counterpart of."""
        now = {size.key for size in self.sizes}
        return [size for key, size in self.before.items() if key not in now]

    def to_dict(self) -> dict[str, Any]:
        document: dict[str, Any] = {"registry": self.registry}
        images = []
        for size in self.sizes:
            entry = size.to_dict()
            if self.compared is not None:
                before = self.previous(size)
                entry["before_bytes"] = before.compressed if before else None
                entry["change_bytes"] = size.compressed - before.compressed if before else None
            images.append(entry)
        document["images"] = images
        if self.compared is not None:
            document["compared_with"] = self.compared
            document["dropped"] = [
                {k: v for k, v in size.to_dict().items() if k != "largest"}
                for size in self.dropped()
            ]
        return document | {"requests": self.requests, "blob_reads": self.blob_reads}

    def rows(self) -> list[tuple[str, ...]]:
        """image, platform, MB, the change, layers, the largest layer and its step."""
        rows = []
        for size in self.sizes:
            largest = size.largest(1)
            made = ""
            if largest:
                layer = largest[0]
                made = f"{_mb(layer.size)} MB {_short(layer.created_by or layer.digest)}"
            change = ()
            if self.compared is not None:
                before = self.previous(size)
                change = (_signed_mb(size.compressed - before.compressed) if before else "new",)
            rows.append(
                (
                    size.reference,
                    size.short_platform,
                    _mb(size.compressed),
                    *change,
                    str(len(size.layers)),
                    made,
                )
            )
        return rows

    def print(self) -> None:
        compared = (f"vs {self.compared}",) if self.compared is not None else ()
        headers = ("image", "platform", "MB", *compared, "layers", "largest layer")
        rows = self.rows()
        numbers = range(2, len(headers) - 1)
        widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers) - 1)]
        print(f"sizes on {self.registry} (compressed, as pulled):")
        for row in [headers, *rows]:
            cells = [
                cell.rjust(width) if i in numbers else cell.ljust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=False))
            ]
            print("  " + "  ".join([*cells, row[-1]]).rstrip())
        for size in self.dropped():
            print(
                f"  {size.reference} {size.short_platform}: "
                f"{_mb(size.compressed)} MB in {self.compared}, not in this release"
            )
        print(f"sizes: {self.requests} requests, {self.blob_reads} of them blob reads")


def size_report(
    client,
    plan: Plan,
    registry: str,
    images: dict[str, RemoteImage | None],
    compare: Plan | None = None,
) -> SizeReport:
    """``plan``'s sizes from the images verify read; with ``compare``, that release's
    too (its full tags read first: a GET per image and a HEAD per platform)."""
    from matrix.publish.state import read_images

    before = client.requests.total, client.requests.blob_reads
    report = SizeReport(registry, release_sizes(client, plan, registry, images))
    if compare is not None:
        earlier = release_sizes(client, compare, registry, read_images(client, compare, registry))
        report.compared = compare.version
        report.before = {size.key: size for size in earlier}
    report.requests = client.requests.total - before[0]
    report.blob_reads = client.requests.blob_reads - before[1]
    return report


def _mb(size: int) -> str:
    return f"{size / MB:.1f}"


def _signed_mb(change: int) -> str:
    return f"{change / MB:+.1f}"


def _short(text: str, width: int = 70) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
