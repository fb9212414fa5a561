"""HTTP plumbing: a threaded loopback server whose handler maps requests onto HedService.

Faults that live at the socket level (latency, hang, reset, truncation, trickled bodies, TLS
handshake resets)
and the answers of a 503 outage are carried out here. With a TLS context, each connection's
handshake runs in its own handler thread, so a slow or failing client never blocks accept().
Nothing is logged by default; with verbose=True only method, path and status go to stderr.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import struct
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from hed_simulator.faults import FaultDecision
from hed_simulator.service import (
    HedService,
    Reply,
    RequestInfo,
    error_reply,
    parse_page_size,
)

HED_PATH = "/hed_data"
CHANGES_PATH = "/_simulator/changes"
SPEC_PATH = "/hed_api_spec"
_ALLOWED_METHODS = {HED_PATH: "GET", CHANGES_PATH: "POST", SPEC_PATH: "GET"}
# Idle keep-alive connections are closed after this, so handler threads never pile up; long
# enough that a paused client's pooled connection is not closed under it.
IDLE_TIMEOUT_SECONDS = 300
# Faults that only make sense on a successful page.
_BODY_FAULTS = ("reset", "truncate", "trickle")
# A client that connects but never finishes its TLS handshake is dropped after this.
HANDSHAKE_TIMEOUT_SECONDS = 10
# A TLS record header: type (1), version (2), length (2).
_TLS_RECORD_HEADER_BYTES = 5
_OUTAGE_STATUS = 503


class DroppedConnectionError(Exception):
    """Raised in a handler to end a connection on purpose (no answer, no error report)."""


class SimulatorHTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections so stop() can end them promptly."""

    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        service: HedService,
        verbose: bool,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.service = service
        self.verbose = verbose
        self.tls_context = tls_context
        self.stopping = threading.Event()  # wakes sleeping latency / hang faults on stop
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, HedRequestHandler)

    def server_bind(self) -> None:
        """Skip HTTPServer's reverse-DNS lookup of the host, which can stall for seconds."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: object, client_address: object) -> None:
        """Clients hanging up mid-response are expected; never print tracebacks."""
        if self.verbose and not isinstance(sys.exc_info()[1], DroppedConnectionError):
            print(f"hed_simulator: handler error {sys.exc_info()[0]!r}", file=sys.stderr)

    def pause(self, seconds: float) -> None:
        """Sleep for a fault, but return at once when the simulator stops."""
        if seconds > 0:
            self.stopping.wait(seconds)

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def close_connections(self) -> None:
        """End keep-alive connections so their handler threads exit."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            # OSError: already closed by the client or by a reset fault.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class HedRequestHandler(BaseHTTPRequestHandler):
    """One connection; HTTP/1.1 keep-alive with Content-Length on every response."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_SECONDS
    server: SimulatorHTTPServer

    def setup(self) -> None:
        if self.server.tls_context is not None:
            self.request = self._handshake(self.request, self.server.tls_context)
        super().setup()
        # Headers and body go out as separate writes; without this Nagle + delayed ACK would
        # add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)
            if isinstance(self.connection, ssl.SSLSocket):
                self.connection.close()  # the server only closes the raw socket it accepted

    def _handshake(self, raw: socket.socket, context: ssl.SSLContext) -> ssl.SSLSocket:
        """TLS server handshake, or the tls_reset fault: read the ClientHello, then hang up,
        so the client's handshake ends in an unexpected EOF (a transient TLS error)."""
        raw.settimeout(HANDSHAKE_TIMEOUT_SECONDS)
        if self.server.service.faults.decide_tls_reset():
            _read_tls_record(raw)
            raise DroppedConnectionError("tls_reset")  # the server then closes with a FIN
        return context.wrap_socket(raw, server_side=True)

    # --- routing ---

    def do_GET(self) -> None:
        path, params = self._split_target()
        if self._in_outage(path, params):
            return
        if path == HED_PATH:
            self._serve_hed_data(params)
        elif path == SPEC_PATH:
            self._serve_spec()
        else:
            self._reject(path)

    def do_POST(self) -> None:
        body = self._read_body()
        path, params = self._split_target()
        if self._in_outage(path, params):
            return
        if path != CHANGES_PATH:
            self._reject(path)
            return
        key_ok = self.server.service.check_key(self.headers.get("x-api-key"))
        reply = self.server.service.answer_changes(key_ok, body)
        self._record(path, reply.status, None, None, None, key_ok)
        self._send(reply)

    def do_PUT(self) -> None:
        self._read_body()
        path, params = self._split_target()
        if not self._in_outage(path, params):
            self._reject(path)

    do_DELETE = do_PATCH = do_PUT  # noqa: N815 - names required by BaseHTTPRequestHandler

    def _reject(self, path: str) -> None:
        """404 for unknown paths, 405 for a known path with the wrong method."""
        key_ok = self.server.service.check_key(self.headers.get("x-api-key"))
        if path in _ALLOWED_METHODS:
            reply = error_reply(405, "Method not allowed", [("Allow", _ALLOWED_METHODS[path])])
        else:
            reply = error_reply(404, "Not found")
        self._record(path, reply.status, None, None, None, key_ok)
        self._send(reply)

    def _in_outage(self, path: str, params: dict[str, list[str]]) -> bool:
        """During an outage, answer 503 (or drop the connection in refuse mode) and say so."""
        mode = self.server.service.outage.state()
        if mode is None:
            return False
        key_ok = self.server.service.check_key(self.headers.get("x-api-key"))
        page_size = parse_page_size(_first(params, "page_size"))
        cursor = _first(params, "cursor")
        if mode == "refuse":  # a request that slipped in before the listener closed
            self._record(path, None, page_size, cursor, "outage", key_ok)
            self.close_connection = True
            return True
        reply = error_reply(_OUTAGE_STATUS, HTTPStatus(_OUTAGE_STATUS).phrase)
        self._record(path, reply.status, page_size, cursor, "outage", key_ok)
        self._send(reply)
        return True

    def _serve_spec(self) -> None:
        key_ok = self.server.service.check_key(self.headers.get("x-api-key"))
        reply = self.server.service.answer_spec()
        self._record(SPEC_PATH, reply.status, None, None, None, key_ok)
        self._send(reply)

    # --- GET /hed_data ---

    def _serve_hed_data(self, params: dict[str, list[str]]) -> None:
        service = self.server.service
        key_ok = service.check_key(self.headers.get("x-api-key"))
        cursor = _first(params, "cursor")
        raw_page_size = _first(params, "page_size")
        page_size = parse_page_size(raw_page_size)
        started_outage = service.outage.count_request()
        try:
            self._answer_hed_data(key_ok, raw_page_size, page_size, cursor)
        finally:
            if started_outage:
                service.outage.take_listener_down()  # after the answer is out

    def _answer_hed_data(
        self, key_ok: bool, raw_page_size: str | None, page_size: int | None, cursor: str | None
    ) -> None:
        service = self.server.service
        queued = service.next_queued()
        if queued is not None:
            self._record(HED_PATH, queued.status, page_size, cursor, "queued", key_ok)
            self._send(queued)
            return
        decision = service.faults.decide()
        self.server.pause(decision.latency_seconds)
        if decision.kind == "hang":
            self.server.pause(decision.hang_seconds)
        reply = _fault_reply(decision) or service.answer_page(key_ok, raw_page_size, cursor)
        fault = _effective_fault(decision, reply)
        status = None if fault == "reset" else reply.status
        self._record(HED_PATH, status, page_size, cursor, fault, key_ok)
        if fault == "reset":
            self._send_partial_and_drop(reply)
        elif fault == "truncate":
            self._send(Reply(reply.status, reply.body[: len(reply.body) // 2], reply.content_type))
        elif fault == "trickle":
            self._send_trickled(reply, decision.trickle_seconds)
        else:
            self._send(reply)

    # --- writing ---

    def _send(self, reply: Reply) -> None:
        self._send_head(reply)
        self.wfile.write(reply.body)

    def _send_head(self, reply: Reply) -> None:
        """Status line and headers; Content-Length always describes reply.body."""
        self.send_response(reply.status)
        custom = {name.lower() for name, _ in reply.headers}
        if "content-type" not in custom:
            self.send_header("Content-Type", reply.content_type)
        for name, value in reply.headers:
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()

    def _send_trickled(self, reply: Reply, seconds_per_byte: float) -> None:
        """Headers at once, then the body one byte every `seconds_per_byte`: each read the
        client makes succeeds, so only a deadline on the whole response ends it. Stops when
        the client hangs up (the write fails) or the simulator stops."""
        self._send_head(reply)
        for index in range(len(reply.body)):
            if self.server.stopping.is_set():
                self.close_connection = True
                return
            self.wfile.write(reply.body[index : index + 1])
            self.server.pause(seconds_per_byte)

    def _send_partial_and_drop(self, reply: Reply) -> None:
        """Announce the full body, send half, then reset the TCP connection (RST, not FIN)."""
        self._send_head(reply)
        self.wfile.write(reply.body[: len(reply.body) // 2])
        self.close_connection = True
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()  # the fd really closes when finish() drops the last file ref

    def send_error(
        self, code: int, message: str | None = None, explain: str | None = None
    ) -> None:
        """Malformed requests and unsupported methods get JSON errors too."""
        reply = error_reply(code, message or HTTPStatus(code).phrase, [("Connection", "close")])
        self.close_connection = True
        self._send_head(reply)
        if self.command != "HEAD" and code >= 200 and code not in (204, 304):
            self.wfile.write(reply.body)

    # --- helpers ---

    def _split_target(self) -> tuple[str, dict[str, list[str]]]:
        target = urlsplit(self.path)
        return target.path, parse_qs(target.query, keep_blank_values=True)

    def _read_body(self) -> bytes:
        """Read the request body so the keep-alive stream stays in sync."""
        length = self.headers.get("Content-Length", "0")
        return self.rfile.read(int(length)) if length.isdigit() else b""

    def _record(
        self,
        path: str,
        status: int | None,
        page_size: int | None,
        cursor: str | None,
        fault: str | None,
        key_ok: bool,
    ) -> None:
        info = RequestInfo(self.command, path, status, page_size, cursor, fault, key_ok)
        self.server.service.record(info)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Verbose mode logs method, path and status only: no query, keys or bodies."""
        if self.server.verbose:
            target = getattr(self, "path", "")  # unset when the request line was unreadable
            path = urlsplit(target).path or "-"
            print(f"{self.command} {path} {code}", file=sys.stderr, flush=True)

    def log_message(self, format: str, *args: object) -> None:
        """Silence BaseHTTPRequestHandler's own logging; it would include request lines."""


def _first(params: dict[str, list[str]], name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _fault_reply(decision: FaultDecision) -> Reply | None:
    """The error reply for faults that replace the answer; None for the others."""
    if decision.kind == "rate_limit":
        retry_after = f"{decision.retry_after:g}"
        return error_reply(429, "Rate limit exceeded", [("Retry-After", retry_after)])
    if decision.kind == "fail":
        status = decision.status or 500
        return error_reply(status, _phrase(status))
    return None


def _phrase(status: int) -> str:
    """The standard reason phrase; a generic one for statuses Python does not name."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error" if status >= 500 else "Client Error"


def _read_tls_record(connection: socket.socket) -> None:
    """Read one whole TLS record (the ClientHello), so closing sends FIN rather than RST."""
    with contextlib.suppress(OSError):
        header = _read_exactly(connection, _TLS_RECORD_HEADER_BYTES)
        if len(header) == _TLS_RECORD_HEADER_BYTES:
            _read_exactly(connection, int.from_bytes(header[3:5], "big"))


def _read_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _effective_fault(decision: FaultDecision, reply: Reply) -> str | None:
    """The fault to record: body faults only hit successful pages; latency is the fallback."""
    fault = decision.kind
    if fault in _BODY_FAULTS and reply.status != 200:
        fault = None
    if fault is None and decision.latency_seconds > 0:
        fault = "latency"
    return fault
