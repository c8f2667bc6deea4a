"""A real registry for tests: Debian's docker-registry (distribution 2.8) on 127.0.0.1.

Each server gets a free port and its own storage folder; it listens on loopback only.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BINARY = "docker-registry"


def available() -> bool:
    return shutil.which(BINARY) is not None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RegistryServer:
    host: str  # 127.0.0.1:PORT, what references and the client use
    root: Path
    config_path: Path
    process: subprocess.Popen

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_registry(workdir: Path, auth: dict[str, Any] | None = None) -> RegistryServer:
    """Start a registry storing under ``workdir``; ``auth`` is distribution's auth block."""
    port = free_port()
    storage = workdir / "storage"
    storage.mkdir(parents=True, exist_ok=True)
    config: dict[str, Any] = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(storage)}, "delete": {"enabled": True}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "matrix-tests"},
    }
    if auth:
        config["auth"] = auth
    config_path = workdir / "config.yml"
    config_path.write_text(json.dumps(config))  # JSON is YAML
    log = (workdir / "registry.log").open("wb")
    process = subprocess.Popen([BINARY, "serve", str(config_path)], stdout=log, stderr=log)
    server = RegistryServer(f"127.0.0.1:{port}", storage, config_path, process)
    _wait_ready(server, workdir / "registry.log")
    return server


@contextlib.contextmanager
def serving(workdir: Path, auth: dict[str, Any] | None = None) -> Iterator[RegistryServer]:
    """A registry for the ``with`` block, stopped however it ends."""
    server = start_registry(workdir, auth)
    try:
        yield server
    finally:
        server.stop()


def _wait_ready(server: RegistryServer, log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"docker-registry exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/v2/", timeout=1) as answer:
                if answer.headers.get("Docker-Distribution-Api-Version"):
                    return
        except urllib.error.HTTPError as error:
            if error.code == 401:
                return
        except OSError:
            pass
        time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"docker-registry did not answer on {server.url} in {timeout}s")
