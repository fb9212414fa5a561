"""HedSimulator: the in-process handle that tests, benchmarks and the CLI use."""

from __future__ import annotations

import shutil
import ssl
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

from hed_simulator.drift import Drift, Expected
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
# How long stop() waits for the serving thread to end.
_JOIN_SECONDS = 5
# After a refuse outage the port is normally free at once (SO_REUSEADDR); if something else
# grabbed it meanwhile, retry this often, for this long, before giving up.
_REBIND_RETRY_SECONDS = 0.1
_REBIND_PATIENCE_SECONDS = 5


class HedSimulator:
    """A local HED API on a real loopback socket, served from a background thread.

    Usage: `with HedSimulator(records=600, seed=42) as sim: requests.get(sim.url + ...)`.
    With tls=True it serves https with a certificate generated at start(); clients trust
    `sim.ca_file` (for requests: REQUESTS_CA_BUNDLE=sim.ca_file).
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
        tls: bool = False,
    ) -> None:
        self._service = HedService(records, seed, api_key)
        self._service.outage.on_refuse = self._refuse_connections_for
        self._address = (host, port)
        self._verbose = verbose
        self._tls = tls
        self._tls_directory: Path | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._server: SimulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lifecycle = threading.RLock()  # start/stop vs a refuse outage's restart
        self._stopped = threading.Event()
        self._outage_threads: list[threading.Thread] = []
        self.url: str | None = None
        self.ca_file: str | None = None

    # --- lifecycle ---

    def start(self) -> str:
        """Bind and serve in a daemon thread; returns the base URL. Idempotent."""
        with self._lifecycle:
            if self.url is not None and not self._stopped.is_set():
                return self.url
            self._stopped.clear()
            if self._tls and self._tls_context is None:
                self._prepare_tls()
            server = self._bind(self._address)
            host, port = server.server_address[:2]
            self._address = (self._address[0], port)  # a refuse outage rebinds this port
            self._serve(server)
            scheme = "https" if self._tls else "http"
            self.url = f"{scheme}://{host}:{port}"
            return self.url

    def stop(self) -> None:
        """Stop serving, wake sleeping faults, close open connections and end any outage.
        Idempotent. Removes the generated TLS files."""
        self._stopped.set()
        with self._lifecycle:
            self._close_server()
            threads, self._outage_threads = self._outage_threads, []
        for thread in threads:
            thread.join(timeout=_JOIN_SECONDS)
        if self._tls_directory is not None:
            shutil.rmtree(self._tls_directory, ignore_errors=True)
            self._tls_directory = self._tls_context = None

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

    def _prepare_tls(self) -> None:
        """Generate the certificates (imported here: plain http never loads cryptography)."""
        from hed_simulator.tls import generate_tls_files, server_context

        self._tls_directory = Path(tempfile.mkdtemp(prefix="hed-simulator-tls-"))
        files = generate_tls_files(self._tls_directory)
        self._tls_context = server_context(files)
        self.ca_file = str(files.ca_file)

    def _bind(self, address: tuple[str, int]) -> SimulatorHTTPServer:
        return SimulatorHTTPServer(address, self._service, self._verbose, self._tls_context)

    def _serve(self, server: SimulatorHTTPServer) -> None:
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_SECONDS},
            name="hed-simulator",
            daemon=True,
        )
        self._server = server
        self._thread.start()

    def _close_server(self) -> None:
        """Stop listening and end open connections; the service state is kept."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=_JOIN_SECONDS)
            self._thread = None

    def _refuse_connections_for(self, seconds: float) -> None:
        """Called by the outage schedule (from a handler thread): go dark in the background."""
        thread = threading.Thread(
            target=self._stay_dark, args=(seconds,), name="hed-simulator-outage", daemon=True
        )
        with self._lifecycle:
            self._outage_threads = [t for t in self._outage_threads if t.is_alive()]
            self._outage_threads.append(thread)
        thread.start()

    def _stay_dark(self, seconds: float) -> None:
        """Close the listener and connections, wait, then listen again on the same port."""
        with self._lifecycle:
            if self._stopped.is_set():
                return
            self._close_server()
        if self._stopped.wait(seconds):
            return
        with self._lifecycle:
            if self._server is not None:  # already listening again (a newer start)
                return
        deadline = time.monotonic() + _REBIND_PATIENCE_SECONDS
        while not self._stopped.is_set():
            with self._lifecycle:
                if self._stopped.is_set():
                    return
                try:
                    self._serve(self._bind(self._address))
                    return
                except OSError as error:
                    if time.monotonic() >= deadline:
                        print(f"hed_simulator: cannot listen again: {error}", file=sys.stderr)
                        return
            self._stopped.wait(_REBIND_RETRY_SECONDS)

    # --- faults and canned answers ---

    def set_faults(
        self,
        *,
        fail_rate: float | None = None,
        fail_statuses: Iterable[int] | None = None,
        rate_limit_every: int | None = None,
        retry_after: float | None = None,
        latency_ms: float | None = None,
        reset_rate: float | None = None,
        truncate_rate: float | None = None,
        hang_rate: float | None = None,
        hang_seconds: float | None = None,
        tls_reset_rate: float | None = None,
        trickle_rate: float | None = None,
        trickle_seconds: float | None = None,
        fault_seed: int | None = None,
    ) -> None:
        """Change the given fault settings (others keep their value); restarts the fault
        sequence from fault_seed so runs are reproducible.

        fail_statuses: the statuses fail_rate picks from (default (500, 503)), e.g. (408,).
        tls_reset_rate: share of new connections dropped during the TLS handshake (the
        client sees requests.exceptions.SSLError); needs tls=True.
        trickle_rate, trickle_seconds: share of successful pages whose body is sent one byte
        every trickle_seconds (default 2), so no single read times out.
        """
        if tls_reset_rate and not self._tls:
            raise ValueError("tls_reset_rate needs a simulator started with tls=True")
        self._service.faults.configure(
            fail_rate=fail_rate,
            fail_statuses=None if fail_statuses is None else tuple(fail_statuses),
            rate_limit_every=rate_limit_every,
            retry_after=retry_after,
            latency_ms=latency_ms,
            reset_rate=reset_rate,
            truncate_rate=truncate_rate,
            hang_rate=hang_rate,
            hang_seconds=hang_seconds,
            tls_reset_rate=tls_reset_rate,
            trickle_rate=trickle_rate,
            trickle_seconds=trickle_seconds,
            fault_seed=fault_seed,
        )

    def clear_faults(self) -> None:
        """Healthy again: no faults and no scheduled or running 503 outage."""
        self._service.faults.clear()
        self._service.outage.cancel()

    def schedule_outage(self, after_requests: int, seconds: float, mode: str = "503") -> None:
        """After `after_requests` more GET /hed_data requests (0: now), the API is down for
        `seconds` of wall time, then recovers. mode "503" answers 503 to every request (logged
        with fault "outage"); mode "refuse" stops listening and closes open connections, so
        clients get connection refused, then listens again on the same port (start() the
        simulator before scheduling a refuse outage: it needs a port to give back)."""
        if mode == "refuse" and (self.url is None or self._stopped.is_set()):
            raise ValueError("start the simulator before scheduling a refuse outage")
        self._service.outage.schedule(after_requests, seconds, mode)

    def queue_response(
        self,
        status: int = 200,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """The next `times` GET /hed_data requests (any key) get this response instead.

        dict/list bodies are sent as JSON; str/bytes as-is with content-type text/plain.
        Headers are sent as given (a Content-Encoding the body does not have is a decoding
        error for the client); Content-Length always describes the body.
        """
        self._service.queue(canned_reply(status, body, headers), times)

    # --- drift ---

    def set_drift(self, modes: str | Iterable[str], *, rate: float = 1.0, seed: int = 0) -> None:
        """Serve drifted values from now on (see hed_simulator.drift for the modes).

        rate: the share of records each mode affects (each mode picks its records
        independently). Which records drift, and how, depends only on (seed, record_id,
        version), so pages, records() and expected() agree and reruns repeat exactly.
        No modes means no drift.
        """
        self._service.set_drift(Drift.of(modes, rate, seed))

    def clear_drift(self) -> None:
        self._service.set_drift(None)

    def expected(self) -> Expected:
        """The truth a full sync of the current data must land: Expected(rows, invalid,
        rejected). rows hold each keyed record in the API's standard (pre-drift) form with
        None where the served value cannot convert (raw value in invalid); rejected holds the
        items that cannot be keyed, as served. Fields changed with corrupt_record are taken
        as served. Builds every record, like records()."""
        return self._service.expected()

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

    def records(self) -> list[Any]:
        """Source truth as served: every record once, latest version, after drift and
        corruption, in log order (with drift, items may be other JSON values than objects).
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
