"""Cancellation: SIGTERM/SIGINT (the dashboard's Cancel, Ctrl-C) or a should_stop() callback become
`Cancelled` at the next step boundary, so a run ends as `cancelled` with everything recorded so far."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


class Cancelled(Exception):
    """A stop was requested: end the run as cancelled, keeping its data."""


class StopFlag:
    def __init__(self, should_stop: Callable[[], bool] | None = None):
        self.should_stop = should_stop
        self.requested = False
        self._old = {}

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():  # signals can only be caught there
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._old[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc) -> bool:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        return False

    def _handler(self, signum, frame) -> None:
        self.requested = True

    def check(self) -> None:
        if self.requested or (self.should_stop is not None and self.should_stop()):
            raise Cancelled
