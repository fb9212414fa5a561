"""Fault injection for GET /hed_data: the failures a connector must survive in production."""

from __future__ import annotations

import dataclasses
import random
import threading
from dataclasses import dataclass

# Probabilities that must lie in [0, 1].
_RATE_FIELDS = ("fail_rate", "reset_rate", "truncate_rate", "hang_rate")
# Durations and counters that must not be negative.
_NON_NEGATIVE_FIELDS = ("rate_limit_every", "retry_after", "latency_ms", "hang_seconds")
# Server errors a flaky upstream answers with.
_FAIL_STATUSES = (500, 503)


@dataclass(frozen=True)
class FaultConfig:
    """Fault settings; all zero means a perfectly healthy API."""

    fail_rate: float = 0.0
    rate_limit_every: int = 0
    retry_after: float = 1
    latency_ms: float = 0.0
    reset_rate: float = 0.0
    truncate_rate: float = 0.0
    hang_rate: float = 0.0
    hang_seconds: float = 5.0
    fault_seed: int = 0

    def __post_init__(self) -> None:
        for name in _RATE_FIELDS:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")
        for name in _NON_NEGATIVE_FIELDS:
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one request. `kind` is None, "rate_limit", "fail", "hang", "reset" or
    "truncate"; latency applies on top of any kind."""

    kind: str | None = None
    latency_seconds: float = 0.0
    status: int | None = None
    retry_after: float = 0
    hang_seconds: float = 0.0


class FaultInjector:
    """Decides per request which fault applies, reproducibly from `fault_seed`.

    Every (re)configuration reseeds the random stream and restarts the rate-limit count, so a
    test that sets faults gets the same sequence of decisions each run (for sequential clients).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config = FaultConfig()
        self._rng = random.Random(0)
        self._count = 0

    @property
    def config(self) -> FaultConfig:
        return self._config

    def configure(self, **changes: float | None) -> FaultConfig:
        """Apply the given settings (None = keep current value) and restart the sequence."""
        given = {name: value for name, value in changes.items() if value is not None}
        with self._lock:
            self._config = dataclasses.replace(self._config, **given)
            self._rng = random.Random(self._config.fault_seed)
            self._count = 0
            return self._config

    def clear(self) -> None:
        """Back to a healthy API, keeping nothing from earlier settings."""
        with self._lock:
            self._config = FaultConfig()
            self._rng = random.Random(0)
            self._count = 0

    def decide(self) -> FaultDecision:
        """Draw the fault for the next request. Always draws the same numbers, so rates can
        change without shifting the sequence of the other faults."""
        with self._lock:
            config = self._config
            self._count += 1
            draws = [self._rng.random() for _ in range(5)]
            limited = config.rate_limit_every > 0 and self._count % config.rate_limit_every == 0
        latency = config.latency_ms / 1000.0
        if limited:
            return FaultDecision("rate_limit", latency, 429, retry_after=config.retry_after)
        if draws[0] < config.fail_rate:
            status = _FAIL_STATUSES[int(draws[4] * len(_FAIL_STATUSES))]
            return FaultDecision("fail", latency, status)
        if draws[1] < config.hang_rate:
            return FaultDecision("hang", latency, hang_seconds=config.hang_seconds)
        if draws[2] < config.reset_rate:
            return FaultDecision("reset", latency)
        if draws[3] < config.truncate_rate:
            return FaultDecision("truncate", latency)
        return FaultDecision(None, latency)
