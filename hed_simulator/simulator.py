"""HedSimulator: the in-process handle that tests, benchmarks and the CLI use."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from hed_simulator.server import SimulatorHTTPServer
from hed_simulator.service import HedService, RequestInfo, canned_reply

# Documented demo credential; the simulator is dev-only, so a public key is fine.
DEMO_API_KEY = "hed-demo-key"
DEFAULT_RECORDS = 600
DEFAULT_SEED = 42
# Loopback by default: the simulator serves sensitive-looking data and has no real auth.
DEFAULT_HOST = "127.0.0.1"
# Short poll interval so stop() returns quickly (serve_forever checks for shutdown this often).
_POLL_SECONDS = 0.05


class HedSimulator:
    """A local HED API on a real loopback socket, served from a background thread.

    Usage: `with HedSimulator(records=600, seed=42) as sim: requests.get(sim.url + ...)`.
    """

    def __init__(
        self,
        records: int = DEFAULT_RECORDS,
        seed: int = DEFAULT_SEED,
        api_key: str = DEMO_API_KEY,
        host: str = DEFAULT_HOST,
        port: int = 0,
        *,
        verbose: bool = False,
    ) -> None:
        self._service = HedService(records, seed, api_key)
        self._address = (host, port)
        self._verbose = verbose
        self._server: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url: str | None = None

    # --- lifecycle ---

    def start(self) -> str:
        """Bind and serve in a daemon thread; returns the base URL. Idempotent."""
        if self._server is not None and self.url is not None:
            return self.url
        server = SimulatorHTTPServer(self._address, self._service, self._verbose)
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_SECONDS},
            name="hed-simulator",
            daemon=True,
        )
        self._server = server
        self._thread.start()
        host, port = server.server_address[:2]
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        """Stop serving, wake sleeping faults and close open connections. Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HedSimulator:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- faults and canned answers ---

    def set_faults(
        self,
        *,
        fail_rate: float | None = None,
        rate_limit_every: int | None = None,
        retry_after: float | None = None,
        latency_ms: float | None = None,
        reset_rate: float | None = None,
        truncate_rate: float | None = None,
        hang_rate: float | None = None,
        hang_seconds: float | None = None,
        fault_seed: int | None = None,
    ) -> None:
        """Change the given fault settings (others keep their value); restarts the fault
        sequence from fault_seed so runs are reproducible."""
        self._service.faults.configure(
            fail_rate=fail_rate,
            rate_limit_every=rate_limit_every,
            retry_after=retry_after,
            latency_ms=latency_ms,
            reset_rate=reset_rate,
            truncate_rate=truncate_rate,
            hang_rate=hang_rate,
            hang_seconds=hang_seconds,
            fault_seed=fault_seed,
        )

    def clear_faults(self) -> None:
        self._service.faults.clear()

    def queue_response(
        self,
        status: int = 200,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` GET /hed_data requests (any key) get this response instead.

        dict/list bodies are sent as JSON; str/bytes as-is with content-type text/plain.
        """
        self._service.queue(canned_reply(status, body, headers), times)

    # --- data ---

    def add_changes(self, new: int = 0, updated: int = 0) -> dict[str, list[str]]:
        """Update `updated` distinct existing records and append `new` ones (both move to the
        end of the change log). Returns {"new": [record_id...], "updated": [record_id...]}."""
        return self._service.add_changes(new, updated)

    def corrupt_record(
        self,
        record_id: str,
        drop: Iterable[str] = (),
        set: dict[str, Any] | None = None,  # public API name; shadows the builtin only here
    ) -> None:
        """Serve the record whose ORIGINAL id is `record_id` with `drop` fields removed and
        `set` fields overridden, from now on. Unknown ids are kept but never match."""
        self._service.corrupt(record_id, tuple(drop), dict(set or {}))

    def records(self) -> list[dict[str, Any]]:
        """Source truth: every record once, latest version, as served, in log order.
        Builds every record, so it is slow for very large simulators."""
        return self._service.records()

    @property
    def record_count(self) -> int:
        return self._service.log.record_count

    @property
    def requests(self) -> list[RequestInfo]:
        """Snapshot of the most recent requests (capped at service.REQUEST_LOG_LIMIT)."""
        return self._service.requests()

    def clear_requests(self) -> None:
        self._service.clear_requests()
