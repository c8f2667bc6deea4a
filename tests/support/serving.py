"""Serving the suite's small HTTP servers (token service, package index, fault proxy,
bad registries) from a background thread."""

from __future__ import annotations

import threading
from socketserver import BaseServer

# ``shutdown()`` returns only when the serve loop next polls, every 0.5 s by default;
# these servers stop after every test that starts one, dozens of times a run.
POLL_INTERVAL = 0.02


def serve_in_background(server: BaseServer) -> None:
    """Serve ``server`` on a daemon thread until its ``shutdown()``."""
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL}, daemon=True
    ).start()
