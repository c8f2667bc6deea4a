"""Cancel and interrupt: a writing run stops at a safe point and says so.

GitHub cancels a job with SIGINT, then SIGTERM a few seconds later, then SIGKILL.
While a command writes (`stopping_safely`), the first SIGINT or SIGTERM only asks
the run to stop: the next `checkpoint` (before every manifest write, every build
and the holds record, and once the work is done) raises `Stopped`, so no write is
cut in half and the run's --report is written as far as it got. A second signal
does not wait for a checkpoint: it raises `Stopped` in the main thread at once (a
write already sent may still land: every write is an idempotent ensure step, so
the next run finds it done). The command then prints one line and exits 128 plus
the signal's number: 130 for SIGINT, 143 for SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from matrix.errors import UserError

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(UserError):
    """The run stopped for a signal; ``exit_code`` is what the shell expects of it."""

    def __init__(self, signum: int, *, waited: bool = True) -> None:
        self.signum = signum
        self.waited = waited  # for the writes under way, which then all ended
        self.exit_code = 128 + signum
        name = signal.Signals(signum).name
        where = "at a safe point" if waited else "before its next step"
        super().__init__(f"stopped by {name} {where}; a rerun completes what it left")


class _State:
    requested: int | None = None
    active: bool = False


_state = _State()


def checkpoint(report: Any = None) -> None:
    """Raise `Stopped` if a signal asked the run to stop; ``report``: the run's report
    as far as it got, for --report."""
    if _state.requested is not None:
        error = Stopped(_state.requested)
        if report is not None:
            error.report = report  # type: ignore[attr-defined]
        raise error


@contextmanager
def stopping_safely() -> Iterator[None]:
    """SIGINT and SIGTERM stop the run at its next `checkpoint` instead of where it
    stands. Only the main thread can take signals; elsewhere this changes nothing."""
    if threading.current_thread() is not threading.main_thread() or _state.active:
        yield
        return

    def ask(signum: int, frame: object) -> None:
        if _state.requested is not None:
            raise Stopped(signum, waited=False)
        _state.requested = signum

    previous = {signum: signal.signal(signum, ask) for signum in SIGNALS}
    _state.active, _state.requested = True, None
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _state.active, _state.requested = False, None
