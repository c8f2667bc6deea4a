"""A package index for tests: small wheels served on 127.0.0.1 as a PEP 691 JSON
simple index, each file with its upload time (PEP 700), as PyPI serves them.

uv and pip both read it; nothing leaves the machine.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

from tests.support.serving import serve_in_background

SIMPLE_JSON = "application/vnd.pypi.simple.v1+json"
# Wheels carry this date on every member, so the same arguments give the same bytes.
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)


def make_wheel(
    folder: Path,
    name: str,
    version: str,
    *,
    requires: tuple[str, ...] = (),
    extras: dict[str, tuple[str, ...]] | None = None,
    module_text: str | None = None,
    console_script: str | None = None,
    requires_python: str | None = None,
) -> Path:
    """A pure-Python wheel of ``name`` ``version``: module ``<name>`` whose
    ``__version__`` is the version, its ``Requires-Dist``; with ``console_script`` a
    ``<console_script>`` command that prints ``Version: <version>``."""
    module = str(canonicalize_name(name)).replace("-", "_")
    dist = f"{module}-{version}"
    info = f"{dist}.dist-info"
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {name}",
        f"Version: {version}",
        *([f"Requires-Python: {requires_python}"] if requires_python else []),
        *(f"Requires-Dist: {r}" for r in requires),
    ]
    for extra, needs in (extras or {}).items():
        metadata.append(f"Provides-Extra: {extra}")
        metadata += [f"Requires-Dist: {r} ; extra == '{extra}'" for r in needs]
    code = module_text or (
        f"__version__ = {version!r}\n\n\ndef main():\n    print('Version: ' + __version__)\n"
    )
    members = {
        f"{module}/__init__.py": code,
        f"{info}/METADATA": "\n".join(metadata) + "\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: matrix-tests\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if console_script:
        members[f"{info}/entry_points.txt"] = (
            f"[console_scripts]\n{console_script} = {module}:main\n"
        )
    record = [
        f"{path},sha256={_urlsafe(text.encode())},{len(text.encode())}"
        for path, text in members.items()
    ]
    record.append(f"{info}/RECORD,,")
    members[f"{info}/RECORD"] = "\n".join(record) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, text in members.items():
            archive.writestr(zipfile.ZipInfo(member, _ZIP_TIME), text)
    return path


def _urlsafe(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


@dataclass
class PackageIndex:
    """The files it serves: filename -> (path, upload time). Add files while it runs."""

    host: str = ""
    files: dict[str, tuple[Path, datetime]] = field(default_factory=dict)
    # filename -> the Requires-Python its entry gives, as PyPI's entries do (PEP 691).
    requires_python: dict[str, str] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}/simple"

    def add(self, path: Path, uploaded: datetime, requires_python: str | None = None) -> Path:
        self.files[path.name] = (path, uploaded)
        if requires_python is not None:
            self.requires_python[path.name] = requires_python
        return path

    def project_page(self, project: str) -> dict | None:
        entries = []
        versions = set()
        for filename, (path, uploaded) in sorted(self.files.items()):
            name, version, _, _ = parse_wheel_filename(filename)
            if name != canonicalize_name(project):
                continue
            versions.add(str(version))
            entries.append(
                {
                    "filename": filename,
                    "url": f"http://{self.host}/files/{filename}",
                    "hashes": {"sha256": hashlib.sha256(path.read_bytes()).hexdigest()},
                    "upload-time": uploaded.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                }
            )
            if filename in self.requires_python:
                entries[-1]["requires-python"] = self.requires_python[filename]
        if not entries:
            return None
        return {
            "meta": {"api-version": "1.1"},
            "name": str(canonicalize_name(project)),
            "versions": sorted(versions),
            "files": entries,
        }

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def start_index() -> PackageIndex:
    index = PackageIndex()

    class Handler(BaseHTTPRequestHandler):
        def do_HEAD(self) -> None:
            self.do_GET(body=False)

        def do_GET(self, body: bool = True) -> None:
            self.body = body
            index.requests.append(self.path)
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            if len(parts) == 2 and parts[0] == "simple":
                page = index.project_page(parts[1])
                if page is not None:
                    return self._send(200, json.dumps(page).encode(), SIMPLE_JSON)
            elif len(parts) == 2 and parts[0] == "files" and parts[1] in index.files:
                return self._send(200, index.files[parts[1]][0].read_bytes(), "application/zip")
            return self._send(404, b"not found", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            # Tests add files while the index runs: no client may reuse an old page.
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.body:
                self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    index.server = server
    index.host = f"127.0.0.1:{server.server_address[1]}"
    serve_in_background(server)
    return index
