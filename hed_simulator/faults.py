"""Fault injection for GET /hed_data: the failures a connector must survive in production.

Per-request faults (errors, 429, hangs, resets, truncation, latency) come from one random
stream drawn the same way for every request, so a fault seed always means the same sequence
and changing one rate never shifts the others. TLS handshake resets and trickled bodies draw
from streams of their own: turning them on never shifts the first.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import dataclass

# Probabilities that must lie in [0, 1].
_RATE_FIELDS = (
    "fail_rate",
    "reset_rate",
    "truncate_rate",
    "hang_rate",
    "tls_reset_rate",
    "trickle_rate",
)
# Durations and counters that must not be negative.
_NON_NEGATIVE_FIELDS = (
    "rate_limit_every",
    "retry_after",
    "latency_ms",
    "hang_seconds",
    "trickle_seconds",
)
# Server errors a flaky upstream answers with, unless a test picks others.
DEFAULT_FAIL_STATUSES = (500, 503)
# fail_statuses must be HTTP error statuses: a 2xx or 3xx "failure" would not be one.
_ERROR_STATUSES = range(400, 600)
# Draws per request: one per fault kind plus one that picks the failure status.
_DRAWS_PER_REQUEST = 5


@dataclass(frozen=True)
class FaultConfig:
    """Fault settings; all zero means a perfectly healthy API."""

    fail_rate: float = 0.0
    fail_statuses: tuple[int, ...] = DEFAULT_FAIL_STATUSES
    rate_limit_every: int = 0
    retry_after: float = 1
    latency_ms: float = 0.0
    reset_rate: float = 0.0
    truncate_rate: float = 0.0
    hang_rate: float = 0.0
    hang_seconds: float = 5.0
    tls_reset_rate: float = 0.0
    trickle_rate: float = 0.0
    trickle_seconds: float = 2.0
    fault_seed: int = 0

    def __post_init__(self) -> None:
        for name in _RATE_FIELDS:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in _NON_NEGATIVE_FIELDS:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        statuses = tuple(self.fail_statuses)
        if not statuses or not all(_is_error_status(status) for status in statuses):
            raise ValueError("fail_statuses must be one or more HTTP statuses from 400 to 599")
        object.__setattr__(self, "fail_statuses", statuses)  # lists become tuples


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one request. `kind` is None, "rate_limit", "fail", "hang", "reset",
    "truncate" or "trickle" (a 200 whose body is sent one byte every `trickle_seconds`);
    latency applies on top of any kind."""

    kind: str | None = None
    latency_seconds: float = 0.0
    status: int | None = None
    retry_after: float = 0
    hang_seconds: float = 0.0
    trickle_seconds: float = 0.0


class FaultInjector:
    """Decides per request which fault applies, reproducibly from `fault_seed`.

    Every (re)configuration reseeds the random streams and restarts the rate-limit count, so a
    test that sets faults gets the same sequence of decisions each run (for sequential clients).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config = FaultConfig()
        self._reseed()

    @property
    def config(self) -> FaultConfig:
        return self._config

    def configure(self, **changes: object) -> FaultConfig:
        """Apply the given settings (None = keep current value) and restart the sequence."""
        given = {name: value for name, value in changes.items() if value is not None}
        with self._lock:
            self._config = dataclasses.replace(self._config, **given)
            self._reseed()
            return self._config

    def clear(self) -> None:
        """Back to a healthy API, keeping nothing from earlier settings."""
        with self._lock:
            self._config = FaultConfig()
            self._reseed()

    def decide(self) -> FaultDecision:
        """Draw the fault for the next request. Always draws the same numbers, so rates can
        change without shifting the sequence of the other faults."""
        with self._lock:
            config = self._config
            self._count += 1
            draws = [self._rng.random() for _ in range(_DRAWS_PER_REQUEST)]
            trickled = self._trickle_rng.random() < config.trickle_rate
            limited = config.rate_limit_every > 0 and self._count % config.rate_limit_every == 0
        latency = config.latency_ms / 1000.0
        if limited:
            return FaultDecision("rate_limit", latency, 429, retry_after=config.retry_after)
        if draws[0] < config.fail_rate:
            statuses = config.fail_statuses
            return FaultDecision("fail", latency, statuses[int(draws[4] * len(statuses))])
        if draws[1] < config.hang_rate:
            return FaultDecision("hang", latency, hang_seconds=config.hang_seconds)
        if draws[2] < config.reset_rate:
            return FaultDecision("reset", latency)
        if draws[3] < config.truncate_rate:
            return FaultDecision("truncate", latency)
        if trickled:
            return FaultDecision("trickle", latency, trickle_seconds=config.trickle_seconds)
        return FaultDecision(None, latency)

    def decide_tls_reset(self) -> bool:
        """Whether to drop the next new TLS connection mid-handshake (its own stream)."""
        with self._lock:
            rate = self._config.tls_reset_rate
            return rate > 0 and self._tls_rng.random() < rate

    def _reseed(self) -> None:
        seed = self._config.fault_seed
        self._rng = random.Random(seed)
        self._tls_rng = random.Random(f"hed-simulator-tls:{seed}")
        self._trickle_rng = random.Random(f"hed-simulator-trickle:{seed}")
        self._count = 0


def _is_error_status(status: object) -> bool:
    return isinstance(status, int) and not isinstance(status, bool) and status in _ERROR_STATUSES
