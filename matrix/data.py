"""The files matrix ships, named in one place: the default versions.toml and the
Dockerfile templates beside it.

In a wheel they sit in ``matrix/_data/`` (hatchling's force-include copies the
repository's top-level ``versions.toml`` and ``dockerfiles/`` there); in a checkout
(an editable install, or ``python -m matrix`` from the repository) they are those
top-level files themselves.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_WHEEL_DATA = _PACKAGE / "_data"

DATA_DIR = _WHEEL_DATA if (_WHEEL_DATA / "versions.toml").is_file() else _PACKAGE.parent
PACKAGED_CONFIG = DATA_DIR / "versions.toml"
CONFIG_NAME = "versions.toml"


def find_config(explicit: str | Path | None) -> tuple[Path, str]:
    """The versions.toml a run uses, and why: ``--config``, else the current folder's
    versions.toml (a maintainer edits and runs in this repository), else the packaged one."""
    if explicit is not None:
        return Path(explicit), "--config"
    here = Path.cwd() / CONFIG_NAME
    if here.is_file():
        return here, "the current folder"
    return PACKAGED_CONFIG, "packaged with matrix"
