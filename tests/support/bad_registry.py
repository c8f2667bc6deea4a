"""A registry that answers garbage, on 127.0.0.1: what matrix must survive in one line.

    server = start_bad_registry("html")   # or any of MODES
    ... matrix tags {server.host}/x ...
    server.sent     -> body bytes written so far (a "huge" answer stops when the client does)
    server.requests -> [(method, path), ...]
    server.stop()

Modes, for every request it gets (ping, tags, manifests, HEAD and GET alike):
- ``html``: 200 with a captive portal's HTML page.
- ``web-404``: an ordinary web server, not a registry: 404 with an HTML page for
  every path, ``/v2/`` included, and no Docker-Distribution-API-Version header.
- ``invalid-json``: 200 ``application/json`` that is cut off.
- ``wrong-types``: 200 JSON of the right shape with the wrong types: ``{"tags":
  "notalist"}`` for tag lists, an index whose ``manifests`` is a string (with its
  true digest) for manifests.
- ``huge``: 200 with a 200 MiB body, streamed in chunks without Content-Length;
  a HEAD gets the headers of a valid-looking index and no body.
- ``redirect-loop``: 307 to another path, which redirects back.
- ``never``: reads the request and never answers (until stopped).
- ``realm-down``: 401 asking for a bearer token from a realm where nothing listens.
- ``token-garbage``: 401 asking for a bearer token from its own ``/token``, which
  answers ``{"token": 5}``.

Writes (PUT, POST, PATCH, DELETE) are recorded and refused with 405: a test asserts
that none came.
"""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.serving import serve_in_background

MODES = (
    "html",
    "web-404",
    "invalid-json",
    "wrong-types",
    "huge",
    "redirect-loop",
    "never",
    "realm-down",
    "token-garbage",
)
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
HUGE = 200 * 1024 * 1024
_CHUNK = 64 * 1024
_HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Wi-Fi</body></html>"
_NOT_FOUND = b"<!DOCTYPE html><html><head><title>404 Not Found</title></head></html>"
_WRONG_INDEX = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": "x"}).encode()


class BadRegistry:
    def __init__(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.mode = mode
        self.sent = 0
        self.requests: list[tuple[str, str]] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.bad = self  # type: ignore[attr-defined]
        self.realm = f"http://127.0.0.1:{_closed_port()}/token"
        serve_in_background(self.server)

    @property
    def host(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests.append((method, path))

    def add_sent(self, count: int) -> None:
        with self._lock:
            self.sent += count

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()


def start_bad_registry(mode: str) -> BadRegistry:
    return BadRegistry(mode)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_HEAD(self) -> None:
        self._answer()

    def _refuse_write(self) -> None:
        self.server.bad.record(self.command, self.path)  # type: ignore[attr-defined]
        self._send(405, b'{"errors": [{"code": "UNSUPPORTED", "message": "read only"}]}')

    do_PUT = do_POST = do_PATCH = do_DELETE = _refuse_write

    def _answer(self) -> None:
        bad: BadRegistry = self.server.bad  # type: ignore[attr-defined]
        bad.record(self.command, self.path)
        mode = bad.mode
        if mode == "never":
            bad.stopping.wait(300)
            self.close_connection = True
            return
        if mode == "redirect-loop":
            other = "/loop-b" if self.path != "/loop-b" else "/loop-a"
            self._send(307, b"", "text/plain", {"Location": other})
        elif mode == "token-garbage" and self.path.startswith("/token"):
            self._send(200, b'{"token": 5, "expires_in": 300}')
        elif mode in ("realm-down", "token-garbage"):
            realm = bad.realm if mode == "realm-down" else f"http://{bad.host}/token"
            challenge = f'Bearer realm="{realm}",service="bad"'
            self._send(401, b"", "text/plain", {"WWW-Authenticate": challenge})
        elif mode == "html":
            self._send(200, _HTML, "text/html; charset=utf-8")
        elif mode == "web-404":
            self._send(404, _NOT_FOUND, "text/html", registry=False)
        elif mode == "invalid-json":
            manifest = "/manifests/" in self.path
            self._send(200, b'{"tags": ["2.11.5", ', OCI_INDEX if manifest else "application/json")
        elif mode == "wrong-types":
            if "/manifests/" in self.path:
                digest = "sha256:" + hashlib.sha256(_WRONG_INDEX).hexdigest()
                self._send(200, _WRONG_INDEX, OCI_INDEX, {"Docker-Content-Digest": digest})
            else:
                self._send(200, json.dumps({"name": "x", "tags": "notalist"}).encode())
        else:
            self._huge(bad)

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
        *,
        registry: bool = True,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if registry:
            self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
            self.server.bad.add_sent(len(body))  # type: ignore[attr-defined]

    def _huge(self, bad: BadRegistry) -> None:
        self.send_response(200)
        self.send_header("Content-Type", OCI_INDEX if "/manifests/" in self.path else "text/plain")
        self.send_header("Docker-Distribution-Api-Version", "registry/2.0")
        if self.command == "HEAD":
            # no digest: the client has to GET the manifest to learn it
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b" " * _CHUNK
        framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
        try:
            for _ in range(HUGE // _CHUNK):
                if bad.stopping.is_set():
                    break
                self.wfile.write(framed)
                bad.add_sent(len(chunk))
            self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client stopped reading, as it should
        self.close_connection = True


def _closed_port() -> int:
    """A loopback port nothing listens on (bound for a moment, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
