"""The API's behaviour, independent of HTTP plumbing: auth, paging, changes, canned replies,
drift and the truth behind it, and the outage schedule.

The HTTP handler (server.py) turns requests into calls here and writes the returned Reply;
HedSimulator (simulator.py) exposes the same state to tests. Every served record goes
through serve(), so pages, records() and expected() always agree.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from hed_simulator.api_spec import spec_bytes
from hed_simulator.changelog import ChangeLog, CursorCodec, InvalidCursorError, LogEntry
from hed_simulator.data import RecordFactory
from hed_simulator.drift import Drift, Expected, Rendition, is_keyable
from hed_simulator.faults import FaultInjector
from hed_simulator.outage import OutageSchedule

# Page size limits of the real API.
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 200
# Request log cap: enough for any test or soak run, bounded so a 1M-record sync stays small.
REQUEST_LOG_LIMIT = 100_000
_DIGITS = re.compile(r"[0-9]{1,9}")
_JSON = "application/json"
_TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True, slots=True)
class RequestInfo:
    """What the simulator saw and answered for one request; never holds keys or bodies.

    status is None when the connection was dropped on purpose; page_size is None when absent
    or not an integer; cursor is the raw query value after normal query-string decoding.
    """

    method: str
    path: str
    status: int | None
    page_size: int | None
    cursor: str | None
    fault: str | None
    api_key_ok: bool


@dataclass(frozen=True, slots=True)
class Reply:
    """A complete HTTP answer; the handler adds Content-Length."""

    status: int
    body: bytes
    content_type: str = _JSON
    headers: tuple[tuple[str, str], ...] = ()


def encode_json(payload: Any) -> bytes:
    """Compact JSON, as an API would send it."""
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


def json_reply(status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()) -> Reply:
    return Reply(status, encode_json(payload), _JSON, tuple(headers))


def error_reply(status: int, message: str, headers: Iterable[tuple[str, str]] = ()) -> Reply:
    """All errors are JSON `{"error": ...}` so clients can always parse them."""
    return json_reply(status, {"error": message}, headers)


def canned_reply(status: int, body: Any, headers: dict[str, str] | None) -> Reply:
    """dict/list -> JSON; str/bytes -> sent as-is as text/plain (for malformed-body tests)."""
    if isinstance(body, dict | list):
        content, content_type = encode_json(body), _JSON
    elif isinstance(body, str):
        content, content_type = body.encode("utf-8"), _TEXT
    elif isinstance(body, bytes | bytearray):
        content, content_type = bytes(body), _TEXT
    elif body is None:
        content, content_type = b"", _TEXT
    else:
        raise TypeError("body must be a dict, list, str, bytes or None")
    return Reply(status, content, content_type, tuple((headers or {}).items()))


def parse_page_size(raw: str | None) -> int | None:
    """The page_size as an int, or None when absent or not a plain non-negative integer."""
    if raw is None or not _DIGITS.fullmatch(raw):
        return None
    return int(raw)


class HedService:
    """All mutable simulator state behind thread-safe methods."""

    def __init__(self, records: int, seed: int, api_key: str) -> None:
        if records < 0:
            raise ValueError("records must not be negative")
        self.factory = RecordFactory(seed, records)
        self.log = ChangeLog(records, self.factory.end_of_initial_window(), seed)
        self.codec = CursorCodec(seed)
        self.faults = FaultInjector()
        self.outage = OutageSchedule()
        self._drift: Drift | None = None
        self._api_key = api_key.encode("utf-8")
        self._lock = threading.Lock()
        self._queued: deque[list[Any]] = deque()  # [Reply, remaining uses]
        self._corruptions: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {}
        self._requests: deque[RequestInfo] = deque(maxlen=REQUEST_LOG_LIMIT)

    # --- requests as the HTTP handler sees them ---

    def check_key(self, presented: str | None) -> bool:
        """Constant-time comparison, so the key can't be guessed from timings."""
        if presented is None:
            return False
        return hmac.compare_digest(presented.encode("utf-8"), self._api_key)

    def next_queued(self) -> Reply | None:
        """Consume one use of the oldest canned response, if any."""
        with self._lock:
            if not self._queued:
                return None
            slot = self._queued[0]
            slot[1] -= 1
            if slot[1] <= 0:
                self._queued.popleft()
            return slot[0]

    def answer_page(self, key_ok: bool, raw_page_size: str | None, cursor: str | None) -> Reply:
        """GET /hed_data: auth, then page_size, then cursor, then the page itself."""
        if not key_ok:
            return error_reply(401, "Missing or invalid API key")
        page_size = DEFAULT_PAGE_SIZE if raw_page_size is None else parse_page_size(raw_page_size)
        if page_size is None or not 1 <= page_size <= MAX_PAGE_SIZE:
            return error_reply(400, f"page_size must be an integer from 1 to {MAX_PAGE_SIZE}")
        try:
            start = self.position_of(cursor)
        except InvalidCursorError:
            return error_reply(400, "Invalid cursor")
        page = self.log.page(start, page_size)
        drift = self._drift
        payload = {
            "hed_records": [self.serve(entry) for entry in page.entries],
            "next_cursor": self.codec.encode(page.next_position),
            "has_more": page.has_more,
        }
        if drift is None:
            return json_reply(200, payload)
        return Reply(200, drift.encode_page(payload), drift.content_type or _JSON)

    def answer_spec(self) -> Reply:
        """GET /hed_api_spec: the OpenAPI document; public, like most API descriptions."""
        return Reply(200, spec_bytes(), _JSON)

    def answer_changes(self, key_ok: bool, body: bytes) -> Reply:
        """POST /_simulator/changes with `{"new": n, "updated": m}`."""
        if not key_ok:
            return error_reply(401, "Missing or invalid API key")
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            return error_reply(400, "Body must be JSON")
        counts = read_change_counts(request)
        if counts is None:
            return error_reply(400, 'Expected {"new": <int >= 0>, "updated": <int >= 0>}')
        try:
            return json_reply(200, self.add_changes(*counts))
        except ValueError as error:
            return error_reply(400, str(error))

    def position_of(self, cursor: str | None) -> int:
        """Start of the log for no cursor; else the decoded position, if this log issued it."""
        if not cursor:
            return 0
        position = self.codec.decode(cursor)
        if position > self.log.length:
            raise InvalidCursorError(cursor)
        return position

    def record(self, info: RequestInfo) -> None:
        with self._lock:  # the lock also keeps snapshots from seeing a deque mid-mutation
            self._requests.append(info)  # maxlen drops the oldest entry

    # --- state as tests see it ---

    def serve(self, entry: LogEntry) -> Any:
        """The item as served: latest version, drifted, with any test corruption applied.
        Usually a record dict; drift may serve any JSON value."""
        record = self.factory.build(entry.index, entry.version, entry.updated_at)
        if self._drift is None and not self._corruptions:
            return record  # the hot path: nothing to change
        return self.render(record, entry.version).served

    def render(self, record: dict[str, Any], version: int) -> Rendition:
        """Drift, then corruption (a test's explicit override wins). Corrupted fields are
        taken into the truth as served: the simulator does not judge a test's own values."""
        drift = self._drift
        if drift is None:
            rendition = Rendition(record, dict(record))
        else:
            rendition = drift.render(record, version)
        corruption = self._corruptions.get(record["record_id"])  # keyed by the original id
        if corruption is not None and isinstance(rendition.served, dict):
            apply_corruption(rendition, *corruption)
        return rendition

    def expected(self) -> Expected:
        """What a full sync of the current data must land (see drift.Expected)."""
        rows: dict[Any, dict[str, Any]] = {}
        invalid: dict[Any, dict[str, Any]] = {}
        rejected: list[Any] = []
        for entry in self.log.live_entries():
            record = self.factory.build(entry.index, entry.version, entry.updated_at)
            rendition = self.render(record, entry.version)
            if not is_keyable(rendition.served):
                rejected.append(rendition.served)
                continue
            record_id = rendition.served["record_id"]
            truth = rendition.truth
            rows[record_id] = dict(rendition.served) if truth is None else truth  # re-keyed
            if rendition.invalid:
                invalid[record_id] = rendition.invalid
        return Expected(rows, invalid, rejected)

    def set_drift(self, drift: Drift | None) -> None:
        self._drift = drift if drift is not None and drift.modes else None

    def add_changes(self, new: int, updated: int) -> dict[str, list[str]]:
        new_indices, updated_indices = self.log.add_changes(new, updated)
        return {
            "new": [self.factory.record_id(index) for index in new_indices],
            "updated": [self.factory.record_id(index) for index in updated_indices],
        }

    def queue(self, reply: Reply, times: int) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._queued.append([reply, times])

    def corrupt(self, record_id: str, drop: Iterable[str], overrides: dict[str, Any]) -> None:
        """Accumulates: later calls for the same record add to earlier ones."""
        with self._lock:
            old_drop, old_overrides = self._corruptions.get(record_id, ((), {}))
            merged = (tuple(dict.fromkeys((*old_drop, *drop))), {**old_overrides, **overrides})
            self._corruptions[record_id] = merged

    def records(self) -> list[Any]:
        return [self.serve(entry) for entry in self.log.live_entries()]

    def requests(self) -> list[RequestInfo]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()


def apply_corruption(rendition: Rendition, drop: Iterable[str], overrides: dict[str, Any]) -> None:
    """Drop and override fields in place (kept in their order), in the served item and its
    truth alike; a changed field is no longer one of drift's invalid values."""
    for target in (rendition.served, rendition.truth):
        if target is not None:
            for name in drop:
                target.pop(name, None)
            target.update(overrides)
    for name in (*drop, *overrides):
        rendition.invalid.pop(name, None)


def read_change_counts(request: Any) -> tuple[int, int] | None:
    """(new, updated) from a control request, or None if malformed."""
    if not isinstance(request, dict):
        return None
    counts = (request.get("new", 0), request.get("updated", 0))
    for count in counts:
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            return None
    return counts
