"""The shared vocabulary of the work: a platform, and a cell (one image on one platform).

A ``Platform`` is written ``linux/arm64`` (OCI's os/architecture[/variant]), shown
to people as ``arm64`` when it is Linux, and slugged ``linux-arm64`` where a slash
may not go (tags, file and folder names). A ``Cell`` is the unit of work: one
image key built for one platform, ``prefect-python3.10-conda@linux-arm64``. Digest
files, GitHub matrix entries, build caches and work folders all name cells so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Other names of an architecture, and the variant that is the same as naming none.
_ARCHITECTURES = {"aarch64": "arm64", "x86_64": "amd64", "x86-64": "amd64"}
_DEFAULT_VARIANTS = {"arm64": "v8", "amd64": "v1"}


@dataclass(frozen=True, order=True, slots=True)
class Platform:
    os: str
    architecture: str
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/arm64`` or ``linux/arm/v7``."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"invalid platform {text!r}: expected os/arch[/variant]")
        return cls(*parts)

    @classmethod
    def from_slug(cls, slug: str) -> Platform:
        """``linux-arm64`` back to ``linux/arm64``."""
        return cls.parse(slug.replace("-", "/"))

    @classmethod
    def from_json(cls, data: Mapping[str, str]) -> Platform:
        """An OCI ``platform`` object; a part it lacks is left out when printed."""
        return cls(data.get("os", ""), data.get("architecture", ""), data.get("variant"))

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    @property
    def slug(self) -> str:
        return str(self).replace("/", "-")

    @property
    def short(self) -> str:
        """As tables show it: Linux goes without saying."""
        return str(self).removeprefix("linux/")

    def normalized(self) -> Platform:
        """As containerd compares platforms: lower case, Docker's architecture names
        (aarch64 is arm64), and each architecture's default variant as none (arm64 is
        arm64/v8, arm is arm/v7)."""
        architecture = self.architecture.lower()
        architecture = _ARCHITECTURES.get(architecture, architecture)
        variant = (self.variant or "").lower()
        if variant == _DEFAULT_VARIANTS.get(architecture):
            variant = ""
        elif architecture == "arm" and not variant:
            variant = "v7"
        return Platform(self.os.lower(), architecture, variant or None)

    def to_json(self) -> dict[str, str]:
        data = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            data["variant"] = self.variant
        return data


def slug(platform: str) -> str:
    """``linux/arm64`` -> ``linux-arm64``."""
    return Platform.parse(platform).slug


def short(platforms: tuple[str, ...] | list[str]) -> str:
    """Platforms as tables show them: ``amd64 arm64``."""
    return " ".join(Platform.parse(p).short for p in platforms)


@dataclass(frozen=True, order=True, slots=True)
class Cell:
    """One image of a plan (its key) on one platform."""

    key: str
    platform: Platform

    @classmethod
    def of(cls, key: str, platform: str | Platform) -> Cell:
        return cls(key, platform if isinstance(platform, Platform) else Platform.parse(platform))

    @classmethod
    def parse(cls, text: str) -> Cell:
        """``prefect-python3.10-conda@linux-arm64``."""
        key, at, platform = text.rpartition("@")
        if not at or not key:
            raise ValueError(f"invalid cell {text!r}: expected KEY@OS-ARCH")
        return cls(key, Platform.from_slug(platform))

    def __str__(self) -> str:
        return f"{self.key}@{self.platform.slug}"
