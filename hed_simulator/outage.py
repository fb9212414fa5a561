"""Scheduled outages: after N more data requests, the API is down for S seconds of wall time.

Two kinds of down: "503" answers every request with 503 Service Unavailable; "refuse" makes
the simulator stop listening (connections are refused) and close its open connections, then
listen again on the same port. The schedule only keeps time and counts requests; the HTTP
layer acts on state(), and a callback given by HedSimulator takes the listener down.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

OUTAGE_MODES = ("503", "refuse")


class OutageSchedule:
    """A one-shot outage, armed by schedule() and started by the N-th counted request.

    The N-th request starts the outage when it arrives (so no later request can slip in
    before it) but is still answered normally; in refuse mode its handler takes the listener
    down once that answer is out. state() and count_request() run for every request, so
    their idle path reads one attribute and takes no lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._remaining: int | None = None  # requests still served before the outage
        self._ends_at: float | None = None  # monotonic end of the current outage
        self._seconds = 0.0
        self._mode = OUTAGE_MODES[0]
        self.on_refuse: Callable[[float], None] | None = None  # set by HedSimulator

    def schedule(self, after_requests: int, seconds: float, mode: str) -> None:
        """Arm an outage (replacing any other); after_requests=0 starts it at once."""
        if mode not in OUTAGE_MODES:
            raise ValueError(f"outage mode must be one of {', '.join(OUTAGE_MODES)}")
        if after_requests < 0 or seconds <= 0:
            raise ValueError("after_requests must be >= 0 and seconds > 0")
        with self._lock:
            self._seconds, self._mode = float(seconds), mode
            self._ends_at = None
            self._remaining = after_requests
        if after_requests == 0:
            self._begin()
            self.take_listener_down()

    def cancel(self) -> None:
        """Forget an armed outage and end a 503 outage now (a refused listener still waits)."""
        with self._lock:
            self._remaining = self._ends_at = None

    def state(self) -> str | None:
        """The current outage mode, or None while the API is up."""
        if self._ends_at is None:
            return None
        with self._lock:
            if self._ends_at is not None and time.monotonic() >= self._ends_at:
                self._ends_at = None
            return None if self._ends_at is None else self._mode

    def count_request(self) -> bool:
        """Count one arriving GET /hed_data request (already past the outage check). The N-th
        starts the outage and returns True: its handler then calls take_listener_down()."""
        if self._remaining is None:
            return False
        with self._lock:
            if self._remaining is None:
                return False
            self._remaining -= 1
            if self._remaining > 0:
                return False
        self._begin()
        return True

    def take_listener_down(self) -> None:
        """In refuse mode, have the simulator stop listening for the outage's seconds."""
        with self._lock:
            refuse, seconds = self._mode == "refuse", self._seconds
        if refuse and self.on_refuse is not None:
            self.on_refuse(seconds)

    def _begin(self) -> None:
        with self._lock:
            self._remaining = None
            self._ends_at = time.monotonic() + self._seconds
