"""htpasswd files for distribution's ``auth.htpasswd`` provider (bcrypt only, as it needs)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any


def htpasswd_auth(
    workdir: Path, users: dict[str, str], realm: str = "matrix-tests"
) -> dict[str, Any]:
    """Write an htpasswd file for ``users`` and return distribution's ``auth`` block."""
    lines = [
        subprocess.run(
            ["htpasswd", "-Bbn", user, password], check=True, capture_output=True, text=True
        ).stdout.strip()
        for user, password in users.items()
    ]
    path = workdir / "htpasswd"
    path.write_text("\n".join(lines) + "\n")
    return {"htpasswd": {"realm": realm, "path": str(path)}}
