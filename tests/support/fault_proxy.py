"""An HTTP proxy on 127.0.0.1 that injects faults in front of a real registry.

    proxy = start_fault_proxy(registry.host)
    proxy.fail(503, method="PUT", path="/manifests/", times=2)
    proxy.fail(429, retry_after="1", times=1)
    proxy.fail(429, retry_after="1", for_seconds=2.0)   # a 429 storm: every match for 2 s
    proxy.rate_limit(3, window=1.0)   # Docker Hub's pull limit: ratelimit-* headers, 429s
    proxy.drop(path="/blobs/uploads/", after_forwarding=True)   # answer lost after the write
    proxy.delay(0.5, method="GET")
    ... use proxy.host instead of registry.host ...
    proxy.seen  -> [Seen(method, path, outcome), ...] every request, in order
    proxy.stop()

Rules are tried in the order they were added; each applies to the next ``times``
requests it matches (``method`` exact, ``path`` a regex searched in path+query),
or to all it matches for ``for_seconds`` after it was added, then retires. The
rate limit is checked after the rules. The Host header is passed through, so the
URLs the registry builds (upload locations) point back at the proxy.
"""

from __future__ import annotations

import http.client
import math
import re
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.serving import serve_in_background

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


@dataclass
class Rule:
    kind: str  # "status", "drop" or "delay"
    method: str | None
    path: str | None
    times: int
    status: int = 503
    retry_after: str | None = None
    seconds: float = 0.0
    after_forwarding: bool = False
    until: float | None = None  # time.monotonic() past which the rule has retired

    def matches(self, method: str, path: str) -> bool:
        return (
            self.times > 0
            and (self.until is None or time.monotonic() < self.until)
            and (self.method is None or self.method == method)
            and (self.path is None or re.search(self.path, path) is not None)
        )


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    outcome: str  # the status relayed, or "503 injected", "dropped", ...


class FaultProxy:
    def __init__(self, target: str) -> None:
        self.target = target
        self.rules: list[Rule] = []
        self.seen: list[Seen] = []
        self.limiter: _Limiter | None = None
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.proxy = self  # type: ignore[attr-defined]
        serve_in_background(self.server)

    @property
    def host(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def fail(
        self,
        status: int = 503,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        retry_after: str | None = None,
        for_seconds: float | None = None,
    ) -> None:
        """Answer ``status`` without forwarding (with ``Retry-After`` if given); with
        ``for_seconds``, to every matching request for that long (``times`` is ignored)."""
        rule = Rule("status", method, path, times, status=status, retry_after=retry_after)
        if for_seconds is not None:
            rule.times = 1 << 62
            rule.until = time.monotonic() + for_seconds
        self._add(rule)

    def rate_limit(
        self,
        limit: int,
        window: float,
        *,
        method: str | None = "GET",
        path: str | None = "/manifests/",
    ) -> None:
        """Count matching requests as Docker Hub counts pulls: ``limit`` per ``window``
        seconds, refilled evenly (a token bucket). Forwarded answers carry
        ``ratelimit-limit: L;w=W`` and ``ratelimit-remaining: R;w=W``; a request over
        the limit gets 429 with ``Retry-After`` (whole seconds until the next pull)."""
        with self._lock:
            self.limiter = _Limiter(limit, window, method, path)

    def drop(
        self,
        *,
        method: str | None = None,
        path: str | None = None,
        times: int = 1,
        after_forwarding: bool = False,
    ) -> None:
        """Close the connection without an answer; optionally after the registry acted."""
        self._add(Rule("drop", method, path, times, after_forwarding=after_forwarding))

    def delay(
        self, seconds: float, *, method: str | None = None, path: str | None = None, times: int = 1
    ) -> None:
        """Forward, then hold the answer back for ``seconds``."""
        self._add(Rule("delay", method, path, times, seconds=seconds))

    def clear(self) -> None:
        with self._lock:
            self.rules.clear()
            self.seen.clear()
            self.limiter = None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _add(self, rule: Rule) -> None:
        with self._lock:
            self.rules.append(rule)

    def take_rule(self, method: str, path: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.matches(method, path):
                    rule.times -= 1
                    return rule
        return None

    def record(self, method: str, path: str, outcome: str) -> None:
        with self._lock:
            self.seen.append(Seen(method, path, outcome))

    def take_pull(self, method: str, path: str) -> tuple[bool, list[tuple[str, str]]] | None:
        """None when no rate limit applies; else (allowed, headers to add)."""
        with self._lock:
            limiter = self.limiter
            if limiter is None or not limiter.matches(method, path):
                return None
            return limiter.take()


class _Limiter:
    def __init__(self, limit: int, window: float, method: str | None, path: str | None) -> None:
        self.limit = limit
        self.window = window
        self.method = method
        self.path = path
        self.tokens = float(limit)
        self.stamp = time.monotonic()

    def matches(self, method: str, path: str) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or re.search(self.path, path) is not None
        )

    def take(self) -> tuple[bool, list[tuple[str, str]]]:
        now = time.monotonic()
        rate = self.limit / self.window
        self.tokens = min(float(self.limit), self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        allowed = self.tokens >= 1
        if allowed:
            self.tokens -= 1
        window = f"w={self.window:g}"
        headers = [
            ("ratelimit-limit", f"{self.limit};{window}"),
            ("ratelimit-remaining", f"{int(self.tokens)};{window}"),
        ]
        if not allowed:
            headers.append(("Retry-After", str(math.ceil((1 - self.tokens) / rate))))
        return allowed, headers


def start_fault_proxy(target: str) -> FaultProxy:
    """A proxy on a free 127.0.0.1 port forwarding to ``target`` (``host:port``)."""
    return FaultProxy(target)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as registries and clients use

    def _handle(self) -> None:
        proxy: FaultProxy = self.server.proxy  # type: ignore[attr-defined]
        method = self.command
        body = self._read_body()
        rule = proxy.take_rule(method, self.path)
        if rule is not None and rule.kind == "status":
            proxy.record(method, self.path, f"{rule.status} injected")
            self._send_fault(rule)
            return
        pull = proxy.take_pull(method, self.path)
        limit_headers = [] if pull is None else pull[1]
        if pull is not None and not pull[0]:
            proxy.record(method, self.path, "429 over the rate limit")
            self._send_fault(Rule("status", None, None, 0, status=429), limit_headers)
            return
        if rule is not None and rule.kind == "drop" and not rule.after_forwarding:
            proxy.record(method, self.path, "dropped")
            self._drop()
            return
        status, headers, payload = self._forward(proxy.target, method, body)
        if rule is not None and rule.kind == "drop":
            proxy.record(method, self.path, f"dropped after {status}")
            self._drop()
            return
        if rule is not None and rule.kind == "delay":
            time.sleep(rule.seconds)
        proxy.record(method, self.path, str(status))
        self.send_response(status)
        for name, value in [*headers, *limit_headers]:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        # A HEAD answer announces the length of the body it does not carry.
        announced = {k.lower(): v for k, v in headers}.get("content-length")
        if method != "HEAD" or announced is None:
            announced = str(len(payload))
        self.send_header("Content-Length", announced)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(payload)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _handle

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _forward(
        self, target: str, method: str, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
        if body or method in ("PUT", "POST", "PATCH"):
            headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(target, timeout=60)
        try:
            connection.request(method, self.path, body=body, headers=headers)
            response = connection.getresponse()
            return response.status, response.getheaders(), response.read()
        finally:
            connection.close()

    def _send_fault(self, rule: Rule, headers: Iterable[tuple[str, str]] = ()) -> None:
        body = b'{"errors":[{"code":"UNAVAILABLE","message":"injected by the fault proxy"}]}'
        if rule.status == 429:
            body = b'{"errors":[{"code":"TOOMANYREQUESTS","message":"injected"}]}'
        self.send_response(rule.status)
        self.send_header("Content-Type", "application/json")
        if rule.retry_after is not None:
            self.send_header("Retry-After", rule.retry_after)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":  # a body after a HEAD answer would poison the connection
            self.wfile.write(body)

    def _drop(self) -> None:
        self.close_connection = True
        # An RST rather than a polite FIN: what a crashed peer or a middlebox gives.
        linger = struct.pack("ii", 1, 0)
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
        self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # proxy.seen is the log
