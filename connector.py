"""Fivetran connector for the HED (Higher Education Data) API.

Syncs student academic and engagement records from `GET /hed_data` into `hed_records`,
keyed by `record_id`. The API pages through a change log with an opaque cursor and sends
each change once: saving the cursor after each loaded page makes a crashed sync resume
where it stopped and every later sync incremental, and it also means a record skipped
before a checkpoint is gone for good. So the one rule here is that the cursor never moves
past a record that is not in the warehouse: every value is typed where it converts and
kept raw (in `_hed_invalid_values`) where it does not, and an item that cannot be keyed is
kept whole in `hed_rejected_records`; when even that fails, the sync fails first.

Read top to bottom: constants -> exceptions -> schema() and update(), the entry points ->
configuration -> HTTP client and retry policy -> page stream (fetched one page ahead) ->
value conversion (with its constants) -> sync loop -> setup form and connection test.

Student records are FERPA-protected: nothing here logs a record's values or the API key.
"""

import email.utils
import functools
import hashlib
import ipaddress
import json
import math
import random
import re
import socket
import ssl
import sys
import threading
import time
import traceback
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import closing, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Context, Decimal
from urllib.parse import urlsplit

import requests
from fivetran_connector_sdk import ConfigurationForm, Connector, Test, form_field
from fivetran_connector_sdk import Logging as log
from fivetran_connector_sdk import Operations as op

# urllib3, through requests: a raw body read raises its errors unwrapped, requests takes its
# Timeout, and a plain `import urllib3` would make the SDK's pipreqs list it as a requirement.
from requests.packages.urllib3 import exceptions as urllib3_errors
from requests.packages.urllib3.util import Timeout

TABLE = "hed_records"
PRIMARY_KEY = "record_id"
# Raw values that did not convert to their column's type, kept in the same row as JSON.
INVALID_VALUES_COLUMN = "_hed_invalid_values"
# Items that cannot be keyed (no usable record_id, or not an object), kept whole.
REJECTED_TABLE = "hed_rejected_records"
REJECTED_KEY = "rejection_id"
DATA_PATH = "/hed_data"
DEFAULT_BASE_URL = "https://sdk-demo-api-dot-internal-sales.uc.r.appspot.com"
# The value configuration.json ships with; a sync refuses to start while it is still there.
PLACEHOLDER_API_KEY = "YOUR_HED_API_KEY"
# What an API key may hold: printable ASCII, no spaces (it travels in an HTTP header).
HEADER_TOKEN = re.compile(r"[\x21-\x7e]+")
USER_AGENT = "hed-fivetran-connector/1.1"

# The API's own page-size default and bounds: anything outside gets HTTP 400.
DEFAULT_PAGE_SIZE = 100
MIN_PAGE_SIZE, MAX_PAGE_SIZE = 1, 200
# Rows between checkpoints: each checkpoint costs ~0.04 s in the SDK core (bench/results.json:
# ours vs ours_ckpt_1000), and the rows after the last one are re-fetched after a crash.
DEFAULT_CHECKPOINT_INTERVAL = 100

# Seconds to open a connection / to wait for the next byte: a dead API fails in seconds.
# Each is also cut to what is left of the attempt's deadline.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 30.0
# Seconds one whole attempt (connect, headers, body) may take: the read timeout applies per
# read, so a server trickling a byte at a time would otherwise hold a sync forever. A page
# of 200 records is ~120 KB; a minute leaves room for a slow API on a slow link.
ATTEMPT_DEADLINE_S = 60.0
BODY_CHUNK_BYTES = 64 * 1024  # the most one read of a body takes; a page is a few of these
MIN_READ_WAIT_S = 0.001  # the least an attempt gets: a socket timeout of 0 means non-blocking
# Retry policy for transient failures. A request keeps retrying until the budget is spent,
# the last wait cut short so that one attempt lands at its end: an outage shorter than
# the budget (a 3-minute API deploy) is ridden out anywhere in a sync. No attempt runs past
# the budget's end plus LAST_ATTEMPT_S, so an API that is down, unreachable or too slow
# fails a request within 210 + 15 = 225 s, under SYNC_FAILURE_BOUND_S.
BACKOFF_BASE_S = 1.0  # first backoff; doubles per attempt
BACKOFF_CAP_S = 20.0  # no single backoff waits longer than this
MAX_DOUBLINGS = 30  # beyond this the cap applies anyway; keeps 2**n small
RETRY_BUDGET_S = 210.0  # no request retries past this many seconds after its first try
LAST_ATTEMPT_S = 15.0  # what the attempt at the budget's end may take: ~100x a healthy page
SETUP_TEST_DEADLINE_S = 20.0  # someone waits on the dashboard's one-record setup request
SYNC_FAILURE_BOUND_S = 240.0  # the documented bound: a failing API fails a sync in 4 minutes
RETRY_AFTER_CAP_S = 60.0  # a server asking for more than this gets this
MAX_BAD_BODY_ATTEMPTS = 3  # a 200 that is not the page shape is asked this often, then fatal
# Statuses worth asking again: timeout, too early, rate limited, and every 5xx.
RETRY_STATUSES = frozenset({408, 425, 429})
API_ERROR_PREVIEW_CHARS = 200  # how much of an API error message to quote to the user
# A 400 whose error message names the cursor (the API says "Invalid cursor") rejects it.
CURSOR_ERROR = re.compile(r"\bcursor\b", re.IGNORECASE)

# Runaway pagination guard: this many empty pages in a row that still say has_more.
MAX_EMPTY_PAGES_IN_A_ROW = 50
PREFETCH_THREAD_NAME = "hed-prefetch"  # names the fetch threads in a stack dump
# In every checkpoint: a saved cursor without it was written by the lab connector (version 1,
# `{"next_cursor": ...}` alone), whose tables hold untyped columns a re-sync must replace.
STATE_VERSION_KEY = "state_version"
STATE_VERSION = 2

# Column types. Every known field is declared because inference is wrong for them:
# measured, undeclared floats land as 32-bit FLOAT, the API's timestamps stay text, a
# numeric-looking string id becomes BIGINT, and one malformed value turns an inferred
# integer or boolean column into VARCHAR. Fields the API adds later are not listed and
# still land, as new columns with inferred types.
STRING_COLUMNS = ("record_id", "student_id", "academic_standing", "major_code", "advisor_id")
TIMESTAMP_COLUMNS = ("enrollment_date", "last_login_date", "last_updated")
DOUBLE_COLUMNS = (
    "current_gpa",
    "avg_assignment_score",
    "course_completion_rate",
    "writing_quality_score",
    "engagement_score",
)
COUNT_COLUMNS = (
    "credit_hours_attempted",
    "credit_hours_earned",
    "total_course_views",
    "assignment_submissions",
    "discussion_posts",
    "plagiarism_incidents",
    "intervention_count",
)
BOOLEAN_COLUMNS = ("at_risk_flag",)
MONEY_COLUMNS = ("financial_aid_amount",)


class SyncError(RuntimeError):
    """A failure the user can act on; its message says what to do."""


class ApiError(SyncError):
    """The API answered in a way retrying cannot fix (bad key, wrong URL, bad request)."""


class CursorRejectedError(ApiError):
    """The API no longer accepts the cursor the sync started from."""


class PaginationError(SyncError):
    """The API's paging would never end or skipped data: stop rather than spin."""


class TransientError(Exception):
    """A failure worth retrying: `status` is the HTTP status (None for a network failure),
    `retry_after` the server's requested wait, if any."""

    def __init__(self, message: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class SlowResponseError(TransientError):
    """An attempt that did not finish within ATTEMPT_DEADLINE_S (headers and body)."""


class BadBodyError(TransientError):
    """A 2xx whose body is not the page shape; asked again a few times, then fatal."""


class FetchCancelledError(Exception):
    """The sync is stopping: the fetch thread must make no further requests."""


class UnconvertibleError(ValueError):
    """A value its column cannot hold; `reason` is safe to log (it never quotes the value)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# ---------------------------------------------------------------------------------------
# Fivetran entry points: schema() and update()


def declared_columns() -> dict:
    """hed_records' column types: one per known field, and the raw values that did not fit."""
    columns = {column: kind for columns, kind, _ in COLUMN_GROUPS for column in columns}
    columns[INVALID_VALUES_COLUMN] = "JSON"
    return columns


def schema(configuration: dict) -> list:
    """hed_records keyed by record_id, and the quarantine for items that cannot be keyed."""
    rejected_columns = {
        REJECTED_KEY: "STRING",
        "raw_record": "JSON",
        "reason": "STRING",
        "seen_at": "UTC_DATETIME",
        "source_cursor": "STRING",
    }
    return [
        {"table": TABLE, "primary_key": [PRIMARY_KEY], "columns": declared_columns()},
        {"table": REJECTED_TABLE, "primary_key": [REJECTED_KEY], "columns": rejected_columns},
    ]


def update(configuration: dict, state: dict) -> None:
    """Called by Fivetran for each sync. The parameter names are the SDK's contract."""
    sync(configuration, state)


# ---------------------------------------------------------------------------------------
# Configuration


@dataclass(frozen=True)
class Settings:
    """Validated configuration. The key is kept out of repr so it never reaches a log."""

    api_key: str = field(repr=False)
    base_url: str
    page_size: int
    checkpoint_interval: int


def validate_configuration(configuration: dict) -> Settings:
    """Check every configuration value before any request is made.

    Raises:
        ValueError: naming the key and what it allows; never quoting the api_key.
    """
    if not isinstance(configuration, dict):
        raise ValueError("The configuration must be a JSON object of string values.")
    for key, value in configuration.items():
        if not isinstance(value, str):
            raise ValueError(f"Configuration key '{key}' must be a string (in quotes).")
    return Settings(
        api_key=read_api_key(configuration),
        base_url=read_base_url(configuration),
        page_size=read_integer(
            configuration, "page_size", DEFAULT_PAGE_SIZE, MIN_PAGE_SIZE, MAX_PAGE_SIZE
        ),
        checkpoint_interval=read_integer(
            configuration, "checkpoint_interval", DEFAULT_CHECKPOINT_INTERVAL, 1, None
        ),
    )


def read_api_key(configuration: dict) -> str:
    """The API key: required, not the repository placeholder, and something an HTTP header
    can carry (a pasted line break or letter outside ASCII would otherwise fail every
    request with an error that names the wrong setting)."""
    api_key = configuration.get("api_key", "").strip()
    if not api_key:
        raise ValueError("Configuration key 'api_key' is required: set it to your HED API key.")
    if api_key == PLACEHOLDER_API_KEY:
        raise ValueError(
            "Configuration key 'api_key' still holds the placeholder: set it to your HED API key."
        )
    if not HEADER_TOKEN.fullmatch(api_key):
        raise ValueError(
            "Configuration key 'api_key' must be printable ASCII without spaces or line "
            "breaks: paste the key again from its source."
        )
    return api_key


def read_base_url(configuration: dict) -> str:
    """An http(s) URL; plain http only to this machine, so the key never travels in clear."""
    base_url = configuration.get("base_url", "").strip() or DEFAULT_BASE_URL
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"Configuration key 'base_url' must be an http(s) URL such as {DEFAULT_BASE_URL}."
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValueError(
            "Configuration key 'base_url' must use https: plain http is allowed only for "
            "localhost, so the API key never travels in clear."
        )
    if parts.query or parts.fragment:
        raise ValueError("Configuration key 'base_url' must not contain a query or fragment.")
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "Configuration key 'base_url' must not contain a user name or password: the "
            "HED API takes its key in api_key, and base_url is shown in messages."
        )
    return base_url.rstrip("/")


def is_loopback(hostname: str) -> bool:
    """True for localhost and the loopback ranges (127.0.0.0/8, ::1)."""
    if hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def read_integer(configuration: dict, key: str, default: int, low: int, high: int | None) -> int:
    """An integer setting given as a string, within [low, high].

    Errors never quote the value: a key pasted into the wrong field must not be printed.
    """
    text = configuration.get(key, "").strip()
    if not text:
        return default
    allowed = f"an integer from {low} to {high}" if high else f"an integer of at least {low}"
    error = ValueError(f"Configuration key '{key}' must be {allowed}, written as a string.")
    try:
        value = int(text)
    except ValueError:
        raise error from None
    if value < low or (high is not None and value > high):
        raise error
    return value


# ---------------------------------------------------------------------------------------
# HTTP client


@dataclass
class Page:
    """One page of the change log, as the API returned it, and the cursor that asked for it."""

    records: list = field(repr=False)  # student data: never in a repr or crash report
    next_cursor: str | None
    has_more: bool
    cursor: str | None = None


class WallClock:
    """Real time. A backoff wait ends early when the sync stops, so a failed sync makes no
    further requests; tests pass a clock that only counts."""

    @staticmethod
    def now() -> float:
        return time.monotonic()

    @staticmethod
    def sleep(seconds: float, stop: threading.Event) -> None:
        if stop.wait(seconds):
            raise FetchCancelledError


class HedClient:
    """Fetches pages over one session, retrying only what is transient.

    The retry loop is written here rather than with urllib3's `Retry` on the adapter:
    `Retry` cannot bound the total time, wait in a way a stopping sync can interrupt, or
    retry a body that breaks off after the headers (requests reads it after urllib3 has
    returned), so half of the policy would live here anyway. One loop reads simpler.
    """

    def __init__(
        self,
        settings: Settings,
        clock: WallClock | None = None,
        jitter: Callable[[], float] = random.random,
    ):
        self.settings = settings
        self.requests_made = 0
        self.retries = 0
        self._clock = clock or WallClock()
        self._jitter = jitter
        self._session = requests.Session()
        self._session.headers.update(
            {"x-api-key": settings.api_key, "Accept": "application/json", "User-Agent": USER_AGENT}
        )

    def close(self) -> None:
        self._session.close()

    def fetch_page(self, cursor: str | None, stop: threading.Event | None = None) -> Page:
        """Fetch one page, retrying transient failures within the retry budget.

        Raises:
            ApiError: on an answer retrying cannot fix, or once retries are spent.
            FetchCancelledError: `stop` was set; no further request is made.
        """
        stop = stop or threading.Event()
        started = self._clock.now()
        attempt = bad_bodies = 0
        while True:
            attempt += 1
            if stop.is_set():
                raise FetchCancelledError
            seconds = attempt_seconds(self._clock.now() - started)
            try:
                return self.request_page(cursor, self.settings.page_size, seconds)
            except TransientError as error:
                bad_bodies += isinstance(error, BadBodyError)
                if bad_bodies >= MAX_BAD_BODY_ATTEMPTS:
                    raise self.contract_broken(error, attempt) from None
                if stop.is_set():  # the sync already failed: no retry, and no retry warning
                    raise FetchCancelledError from None
                spent = self._clock.now() - started
                if spent >= RETRY_BUDGET_S:
                    raise self.gave_up(error, attempt, spent) from None
                # The last wait is cut short so one more attempt lands at the budget's end:
                # an outage shorter than the budget is ridden out whatever the waits were.
                delay = min(self.backoff_delay(attempt, error.retry_after), RETRY_BUDGET_S - spent)
                log.warning(f"HED API request failed ({error}); retry {attempt} in {delay:.1f} s")
                self.retries += 1
                self._clock.sleep(delay, stop)

    def backoff_delay(self, attempt: int, retry_after: float | None) -> float:
        """Honour the server's Retry-After (capped, and never below the first backoff, so
        `Retry-After: 0` cannot make a tight loop); else capped exponential backoff.

        Jitter spreads retries so many connectors do not hammer a recovering API at once.
        """
        if retry_after is not None:
            return max(BACKOFF_BASE_S, min(retry_after, RETRY_AFTER_CAP_S))
        doublings = min(attempt - 1, MAX_DOUBLINGS)
        ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**doublings)
        return ceiling / 2 + self._jitter() * ceiling / 2

    def gave_up(self, error: TransientError, attempt: int, spent: float) -> ApiError:
        """The error once the retry budget is spent, pointing at the likely setting."""
        tried = f"{attempt} attempts over {spent:.0f} s"
        if isinstance(error, SlowResponseError):
            return ApiError(
                f"The HED API at {self.settings.base_url} was too slow: {error} ({tried}). "
                "It may be overloaded, or the network to it degraded; rerun later: the sync "
                "resumes from its last checkpoint."
            )
        if error.status is None:
            return ApiError(
                f"Could not get a page from the HED API at {self.settings.base_url}: {error} "
                f"({tried}). Check base_url and that this host can reach it (DNS, firewall, "
                "proxy); then rerun: the sync resumes from its last checkpoint."
            )
        return ApiError(
            f"The HED API at {self.settings.base_url} kept failing: {error} ({tried}). "
            "It may be down or overloaded; rerun later: the sync resumes from its last checkpoint."
        )

    def contract_broken(self, error: TransientError, attempt: int) -> ApiError:
        """The error once malformed 200s are spent: not an outage, so say so."""
        return ApiError(
            f"The HED API broke its contract: it {error} ({attempt} attempts). Check that "
            "base_url points at the HED API itself, not a proxy or web page; if it does, report "
            "it to the API owner. The sync resumes from its last checkpoint."
        )

    def request_page(self, cursor: str | None, page_size: int, seconds: float) -> Page:
        """One GET /hed_data within `seconds`, classified into a page, a TransientError or
        an ApiError."""
        params = {"page_size": page_size}
        if cursor:
            params["cursor"] = cursor
        self.requests_made += 1
        deadline = time.monotonic() + seconds
        try:
            response = self._session.get(
                self.settings.base_url + DATA_PATH,
                params=params,
                timeout=attempt_timeout(seconds),
                allow_redirects=False,  # a redirect would carry x-api-key to another host
                stream=True,  # the body is read against the attempt's deadline
            )
        except requests.RequestException as error:  # no headers in time is a read timeout
            raise classify_transport_error(error, self.settings.base_url) from None
        with closing(response):
            if time.monotonic() >= deadline:  # headers that came a byte at a time
                raise too_slow(seconds)
            body = read_body(response, deadline, seconds)
        if 200 <= response.status_code < 300:
            return parse_page(body, cursor)
        raise self.classify_failure(response, body, cursor)

    def classify_failure(
        self, response: requests.Response, body: bytes, cursor: str | None
    ) -> Exception:
        """The exception a non-2xx answer deserves: retry 408/425/429/5xx, fail fast on the
        rest with the setting to check."""
        status = response.status_code
        if status in RETRY_STATUSES or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            return TransientError(f"{status_label(status)} (HTTP {status})", status, retry_after)
        if 300 <= status < 400:
            return ApiError(
                f"{self.settings.base_url} redirects (HTTP {status}); the API key is not sent "
                "on to another address. Set base_url to the final https URL."
            )
        detail = self.api_error_text(body)
        if status in (401, 403):
            return ApiError(
                f"The HED API refused the credentials (HTTP {status}: {detail}). "
                "Check api_key in the connector configuration."
            )
        if status == 404:
            return ApiError(
                f"No HED API at {self.settings.base_url} (HTTP 404 for {DATA_PATH}). "
                "Check base_url in the connector configuration."
            )
        if status == 400 and cursor and CURSOR_ERROR.search(detail):
            return CursorRejectedError(
                f"The HED API rejected the cursor (HTTP 400: {detail}). Rerun the sync: it "
                "resumes from its last checkpoint, and re-syncs from the start if that fails too."
            )
        return ApiError(
            f"The HED API rejected the request (HTTP {status}: {detail}). "
            "Check page_size and base_url in the connector configuration."
        )

    def api_error_text(self, body: bytes) -> str:
        """The API's own error message, short and with the key scrubbed, for the user."""
        try:
            answer = decode_json(body)
        except ValueError:
            answer = None
        text = str(answer.get("error", "")) if isinstance(answer, dict) else ""
        text = text.replace(self.settings.api_key, "***")[:API_ERROR_PREVIEW_CHARS]
        return text or "no error message"


def status_label(status: int) -> str:
    if status == 429:
        return "rate limited"
    if status in RETRY_STATUSES:
        return "request timed out or came too early"
    return "server error"


def classify_transport_error(error: requests.RequestException, base_url: str) -> Exception:
    """Transport failures are transient (the network, a TLS hiccup, a garbled body), except
    a certificate that does not verify and a URL requests cannot use: those are settings."""
    if isinstance(error, requests.exceptions.SSLError):
        if caused_by(error, ssl.SSLCertVerificationError):
            return ApiError(
                f"The TLS certificate of {base_url} does not verify (wrong host name, expired, "
                "or signed by an unknown authority). Check base_url; if a proxy re-signs TLS, "
                "give its CA to the connector's host (REQUESTS_CA_BUNDLE)."
            )
        return TransientError("the secure (TLS) connection failed")
    if isinstance(error, requests.exceptions.ContentDecodingError):
        return TransientError("the response body could not be decoded")
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return TransientError("the connection timed out")
    if isinstance(error, requests.Timeout):
        return TransientError("the API stopped answering (read timeout)")
    if isinstance(error, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        return TransientError("the connection failed or was dropped")
    return ApiError(
        f"The request to the HED API could not be made ({type(error).__name__}). "
        "Check base_url in the connector configuration."
    )


def caused_by(error: BaseException, kind: type) -> bool:
    """True if `kind` is anywhere in the chain of wrapped errors (requests wraps urllib3,
    which wraps the ssl module's error in its `reason` or `args`)."""
    pending, seen = [error], set()
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return True
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        pending += [e for e in (*linked, *current.args) if isinstance(e, BaseException)]
    return False


def decode_json(body: bytes):
    """Parse a body as JSON decoded from UTF-8, whatever the Content-Type claims (RFC 8259;
    requests would guess ISO-8859-1 for text/plain and garble every non-ASCII letter).
    Numbers with a point or exponent become Decimal, so money stays exact to the text.

    Raises:
        ValueError: the body is not UTF-8 JSON.
    """
    return json.loads(body.decode("utf-8-sig"), parse_float=Decimal)


def attempt_seconds(spent: float) -> float:
    """How long the next attempt may take, `spent` seconds into a request's retries: the
    attempt deadline, cut so that no attempt ends later than LAST_ATTEMPT_S after the
    budget. The last attempt starts at the budget's end at the latest, so it always gets
    LAST_ATTEMPT_S, and a request that keeps failing ends within the documented bound."""
    return max(MIN_READ_WAIT_S, min(ATTEMPT_DEADLINE_S, RETRY_BUDGET_S + LAST_ATTEMPT_S - spent))


def attempt_timeout(seconds: float) -> Timeout:
    """Connecting and waiting for the headers share the attempt's `seconds` (urllib3 cuts the
    read timeout to what the connect left of `total`); read_body keeps to it after that."""
    return Timeout(
        connect=min(CONNECT_TIMEOUT_S, seconds),
        read=min(READ_TIMEOUT_S, seconds),
        total=seconds,
    )


def too_slow(seconds: float) -> SlowResponseError:
    return SlowResponseError(
        f"the whole response (headers and body) took longer than {seconds:.3g} s"
    )


def read_body(response: requests.Response, deadline: float, seconds: float) -> bytes:
    """The whole body, read a chunk at a time until `deadline` (time.monotonic()).

    A watchdog shuts the socket at the deadline, so no attempt outlasts it however slowly
    the bytes come: the read timeout bounds each socket read only on its own, and one read
    of a chunked or compressed body can make many (chunk-size lines, bytes the decoder
    turns into nothing). requests' own reading (`response.content`) would wait
    READ_TIMEOUT_S per read and never for the whole.

    Raises:
        SlowResponseError: the deadline passed before the body was complete.
        TransientError: the body broke off or could not be decoded.
    """
    expired = threading.Event()
    watchdog = threading.Timer(max(deadline - time.monotonic(), 0.0), cut_off, (response, expired))
    watchdog.daemon = True
    watchdog.start()
    try:
        return read_chunks(response, deadline, expired, seconds)
    finally:
        watchdog.cancel()


def read_chunks(
    response: requests.Response, deadline: float, expired: threading.Event, seconds: float
) -> bytes:
    """read_body's loop; `expired` is set once the watchdog has cut the connection off."""
    chunks = []
    while True:
        if expired.is_set() or time.monotonic() >= deadline:
            raise too_slow(seconds)
        try:
            chunk = response.raw.read1(BODY_CHUNK_BYTES, decode_content=True)
        except (urllib3_errors.HTTPError, OSError) as error:
            if expired.is_set() or time.monotonic() >= deadline:
                raise too_slow(seconds) from None
            raise classify_body_error(error) from None
        if expired.is_set():  # what the cut-off left may look like a complete body
            raise too_slow(seconds)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def classify_body_error(error: Exception) -> TransientError:
    if isinstance(error, urllib3_errors.DecodeError):
        return TransientError("the response body could not be decoded")
    if isinstance(error, urllib3_errors.ReadTimeoutError | TimeoutError):
        return TransientError("the API stopped answering (read timeout)")
    return TransientError("the connection failed or was dropped")


def cut_off(response: requests.Response, expired: threading.Event) -> None:
    """The watchdog's work at the deadline: shut the socket, so a read blocked anywhere in
    urllib3 returns at once."""
    expired.set()
    sock = response_socket(response)
    if sock is not None:
        with suppress(OSError):  # already closed: nothing left to unblock
            sock.shutdown(socket.SHUT_RDWR)


def response_socket(response: requests.Response) -> socket.socket | None:
    """The socket a streamed body is read from. For a body that ends when the server closes
    the connection, http.client hands the socket to the response and the connection no
    longer has it: then it is behind the response's file object."""
    sock = getattr(response.raw.connection, "sock", None)
    if sock is None:
        reader = getattr(getattr(response.raw, "_fp", None), "fp", None)
        sock = getattr(getattr(reader, "raw", None), "_sock", None)
    return sock


def parse_page(body: bytes, cursor: str | None) -> Page:
    """Check a 2xx body is the page shape; anything else is asked again as a bad body."""
    try:
        answer = decode_json(body)
    except ValueError:  # includes UnicodeDecodeError
        raise BadBodyError("answered with a body that is not UTF-8 JSON") from None
    if not isinstance(answer, dict) or not isinstance(answer.get("hed_records"), list):
        raise BadBodyError("answered without a 'hed_records' list")
    next_cursor = answer.get("next_cursor")
    has_more = answer.get("has_more")
    if not isinstance(has_more, bool):
        raise BadBodyError("answered with a 'has_more' that is not true or false")
    if not isinstance(next_cursor, str | None):
        raise BadBodyError("answered with a 'next_cursor' that is not a string")
    return Page(answer["hed_records"], next_cursor, has_more, cursor)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return max(0.0, seconds) if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


# ---------------------------------------------------------------------------------------
# Page stream


def iterate_pages(
    client: HedClient, start_cursor: str | None, stop: threading.Event
) -> Iterator[Page]:
    """Yield pages from `start_cursor` to the end, refusing to page forever.

    Raises:
        PaginationError: a cursor seen before in this sync, more pages promised with no
            cursor, or a long run of empty pages that still promise more.
    """
    cursor = start_cursor
    seen = {cursor}
    empty_in_a_row = 0
    while True:
        page = client.fetch_page(cursor, stop)
        yield page
        if not page.has_more:
            return
        empty_in_a_row = 0 if page.records else empty_in_a_row + 1
        check_next_cursor(page.next_cursor, seen, empty_in_a_row)
        cursor = page.next_cursor
        seen.add(cursor)


def check_next_cursor(next_cursor: str | None, seen: set, empty_in_a_row: int) -> None:
    """Raise PaginationError where following `next_cursor` would spin or skip data."""
    if not next_cursor:
        raise PaginationError(
            "The HED API said more pages follow but sent no next_cursor. Rerun later; if it "
            "persists, report it to the API owner."
        )
    if next_cursor in seen:
        raise PaginationError(
            "The HED API sent a next_cursor already seen in this sync, so paging would never "
            "end. Rerun later; if it persists, report it to the API owner."
        )
    if empty_in_a_row >= MAX_EMPTY_PAGES_IN_A_ROW:
        raise PaginationError(
            f"The HED API sent {empty_in_a_row} empty pages in a row that still promised more. "
            "Rerun later; if it persists, report it to the API owner."
        )


def prefetch(pages: Iterator[Page], stop: threading.Event) -> Iterator[Page]:
    """Yield `pages` while a worker thread fetches the next one, so API latency hides behind
    load time.

    One fetch in flight at a time: the next page is asked for only when the reader takes the
    current one, so memory holds two pages and a crash re-fetches at most the rows since the
    last checkpoint plus one page. A fetch error is raised to the reader in page order.
    Closing the generator sets `stop`: a fetch waiting out a backoff ends at once, and one
    in flight ends within its attempt's deadline without a further request.
    """
    try:
        pending = fetch_in_background(pages)
        while (page := pending.result()) is not None:
            pending = fetch_in_background(pages)
            yield page
    finally:
        stop.set()


def fetch_in_background(pages: Iterator[Page]) -> Future:
    """The next page (None at the end), fetched in a daemon thread of its own.

    Daemon, unlike a ThreadPoolExecutor's workers (which the interpreter joins at exit): a
    fetch still in flight when the sync fails must not keep the process alive after it.
    """
    future = Future()

    def fetch() -> None:
        try:
            future.set_result(next(pages, None))
        except BaseException as error:  # FetchCancelledError and SDK exits included
            future.set_exception(error)

    threading.Thread(target=fetch, name=PREFETCH_THREAD_NAME, daemon=True).start()
    return future


# ---------------------------------------------------------------------------------------
# Value conversion: the API's values into the declared column types.
#
# Each converter returns the value to upsert (None for null) or raises UnconvertibleError with
# a reason that never quotes the value. They accept every unambiguous spelling (numbers as
# text, ISO timestamps, "yes"/"no"), so an API that drifts keeps loading; what still does
# not fit lands as NULL with the raw value kept beside it, never dropped.

# Money is exact DECIMAL: cents survive sums. 18 digits hold any realistic aid amount.
MONEY_PRECISION, MONEY_SCALE = 18, 2
MONEY_LIMIT = 10 ** (MONEY_PRECISION - MONEY_SCALE)  # exclusive bound of what DECIMAL(18,2) holds
MONEY_TYPE = {"type": "DECIMAL", "precision": MONEY_PRECISION, "scale": MONEY_SCALE}
CENT = Decimal(1).scaleb(-MONEY_SCALE)
# Enough digits that rounding any in-range amount to cents is exact.
MONEY_CONTEXT = Context(prec=2 * MONEY_PRECISION)
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1  # the SDK's LONG range
# The words a BOOLEAN column takes as text, in any case (Fivetran's and YAML's usual ones).
TRUE_WORDS = frozenset({"true", "t", "yes", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "0"})
# Numbers written as text: sign, digits with an optional point, optional exponent. Stricter
# than float(), which also takes "nan", "inf" and "1_000".
NUMBER_TEXT = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# Timestamps: the API's `2024-08-04 0:00:00` (unpadded hour), ISO 8601 with `T` or a space,
# optional seconds and fraction (any digits; kept to microseconds), an optional `Z` or
# `+HH:MM` / `+HHMM` / `+HH` offset, or a date alone (midnight). A regex, not strptime:
# one pattern for every form, and measured 15x cheaper per record.
TIMESTAMP_TEXT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt ](\d{1,2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r"([Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
)
MICROSECOND_DIGITS = 6
# Fivetran's column naming (see destination_name): what counts as a word character, which
# names need no accent folding, and where runs of underscores collapse.
NON_WORD = re.compile(r"\W", re.ASCII)
PLAIN_NAME = re.compile(r"[\w\-.]*", re.ASCII)
UNDERSCORES = re.compile(r"_+")
WORD_START = re.compile(r"\w", re.ASCII)
NAME_CACHE_SIZE = 1024  # distinct field names worth remembering: an API sends few
# Columns a new field must never land in: the connector's own, and Fivetran's.
RESERVED_PREFIXES = (INVALID_VALUES_COLUMN, "_fivetran")
# JSON's non-standard constants (which Python's parser accepts) as the API spells them.
JSON_CONSTANTS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def is_blank(value) -> bool:
    """An empty or all-space string: null in a non-text column, not an invalid value."""
    return isinstance(value, str) and not value.strip()


def check_text(text: str) -> str:
    """Text that lands exactly as sent: encodable as UTF-8 (JSON can carry a lone surrogate,
    which no destination stores) and free of NUL, which the core silently strips."""
    if not text.isascii() and not is_unicode(text):
        raise UnconvertibleError("not valid Unicode")
    if "\x00" in text:
        raise UnconvertibleError("contains a NUL character")
    return text


def is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def to_text(value):
    """STRING: text as sent; a JSON number as its digits (an id sent as a number)."""
    if value is None:
        return None
    if isinstance(value, str):
        return check_text(value)
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)
    raise UnconvertibleError("not text")


def read_number(value) -> Decimal | float:
    """A JSON number or numeric text as an exact Decimal (a float only if one was given)."""
    if isinstance(value, Decimal | float):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if isinstance(value, str) and NUMBER_TEXT.fullmatch(text := value.strip()):
        return Decimal(text)
    raise UnconvertibleError("not a number")


def to_double(value):
    """DOUBLE: JSON numbers and numeric text; NaN and infinities are not numbers here, and a
    value a double cannot hold (beyond ~1.8e308, or so small it would land as 0.0: the core
    stores subnormal doubles as 0.0) is out of range rather than silently changed."""
    if value is None or is_blank(value):
        return None
    exact = read_number(value)
    number = float(exact)
    if math.isnan(number):
        raise UnconvertibleError("not a number")
    if math.isinf(number) or (exact and abs(number) < sys.float_info.min):
        raise UnconvertibleError("out of range")
    return number


def to_long(value):
    """LONG: integers, and numbers or text with nothing after the point ("12", "12.0")."""
    if value is None or is_blank(value):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        whole = value
    else:
        number = read_number(value)
        if not math.isfinite(number) or abs(number) >= 2**64:
            raise UnconvertibleError("out of range")
        if number != int(number):
            raise UnconvertibleError("not an integer")
        whole = int(number)
    if not LONG_MIN <= whole <= LONG_MAX:
        raise UnconvertibleError("out of range")
    return whole


def to_boolean(value):
    """BOOLEAN: true/false, 0/1, and the usual words as text in any case."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if not word:
            return None
        if word in TRUE_WORDS:
            return True
        if word in FALSE_WORDS:
            return False
    raise UnconvertibleError("not a boolean")


def to_money(value):
    """DECIMAL(18,2) as exact text: from the JSON text (never through a float), rounded half
    up to cents as Fivetran's own loader rounds. An amount the column cannot hold is out of
    range, never silently nulled as the core's limiter would."""
    if value is None or is_blank(value):
        return None
    number = read_number(value)
    if isinstance(number, float):
        if not math.isfinite(number):
            raise UnconvertibleError("not a number")
        number = Decimal(repr(number))
    if number.adjusted() >= MONEY_PRECISION - MONEY_SCALE:
        raise UnconvertibleError("out of range")
    cents = number.quantize(CENT, rounding=ROUND_HALF_UP, context=MONEY_CONTEXT)
    if abs(cents) >= MONEY_LIMIT:
        raise UnconvertibleError("out of range")
    return format(abs(cents) if cents.is_zero() else cents, "f")  # "-0.00" is 0.00


def to_timestamp(value):
    """NAIVE_DATETIME as a datetime: the API's form and ISO 8601; an offset is converted to
    UTC and dropped (the column has no zone), a date alone is midnight."""
    if value is None or is_blank(value):
        return None
    match = TIMESTAMP_TEXT.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise UnconvertibleError("not a timestamp")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micros = int((fraction or "")[:MICROSECOND_DIGITS].ljust(MICROSECOND_DIGITS, "0"))
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour or 0),
            int(minute or 0),
            int(second or 0),
            micros,
        )
        return moment - utc_offset(zone) if zone else moment
    except (ValueError, OverflowError):  # 2024-13-01, 25:00, or beyond year 1..9999 in UTC
        raise UnconvertibleError("not a timestamp") from None


def utc_offset(zone: str) -> timedelta:
    """`Z`, `+HH:MM`, `+HHMM` or `+HH` as a timedelta east of UTC."""
    if zone in "Zz":
        return timedelta(0)
    digits = zone[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError("offset out of range")
    offset = timedelta(hours=hours, minutes=minutes)
    return -offset if zone[0] == "-" else offset


def to_new_field(value):
    """A field the schema does not declare, shaped so the SDK infers a lossless type: a
    number with a point as text (inferred DOUBLE; a Python float would be a 32-bit FLOAT),
    an integer too large for BIGINT as text, objects and lists as JSON."""
    if isinstance(value, float | Decimal):  # floats come only from NaN and Infinity
        to_double(value)  # the range a declared DOUBLE holds
        return double_text(Decimal(repr(value)) if isinstance(value, float) else value)
    if type(value) is int and not LONG_MIN <= value <= LONG_MAX:  # bool is a subclass of int
        return str(value)
    if isinstance(value, str):
        return check_text(value)
    if isinstance(value, dict | list):
        return json_value(value)
    return value


def double_text(number: Decimal) -> str:
    """The number's own digits, with the point the SDK needs to infer DOUBLE ("1E+20" has none)."""
    text = str(number)
    if "." in text:
        return text
    digits, _, exponent = text.partition("E")
    return f"{digits}.0" + (f"E{exponent}" if exponent else "")


def json_value(value):
    """A parsed value as JSON data a JSON column can hold, as close to what was served as
    JSON allows: a number as a number when a double holds it exactly, else as its own text;
    NaN and infinities as the token sent; text that is not valid Unicode with its bad code
    points written as escapes."""
    if isinstance(value, dict):
        return {json_value(key): json_value(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_value(item) for item in value]
    if isinstance(value, Decimal):
        number = float(value)
        return number if math.isfinite(number) and Decimal(repr(number)) == value else str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return JSON_CONSTANTS[repr(value)]
    if isinstance(value, str) and not value.isascii() and not is_unicode(value):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def canonical_json(value) -> str:
    """An item's JSON text with sorted keys and numbers as written, for its key: distinct
    items never share it (floats would merge 0.1 and 0.10000000000000000001)."""
    if isinstance(value, dict):
        items = sorted(value.items())
        return "{" + ",".join(f"{json.dumps(k)}:{canonical_json(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(canonical_json(item) for item in value) + "]"
    if isinstance(value, Decimal | float):
        return str(value)
    return json.dumps(value)  # ASCII, escapes included: any text hashes


# Each group of declared columns: its type in schema() and the converter its values pass
# through. One table, so a column's type and its conversion can never disagree.
COLUMN_GROUPS = (
    (STRING_COLUMNS, "STRING", to_text),
    (TIMESTAMP_COLUMNS, "NAIVE_DATETIME", to_timestamp),
    (DOUBLE_COLUMNS, "DOUBLE", to_double),
    (COUNT_COLUMNS, "LONG", to_long),
    (BOOLEAN_COLUMNS, "BOOLEAN", to_boolean),
    (MONEY_COLUMNS, MONEY_TYPE, to_money),
)
CONVERTERS = {column: convert for columns, _, convert in COLUMN_GROUPS for column in columns}


@dataclass
class ShapedRecord:
    """A record ready to upsert, and which columns did not convert (with safe reasons)."""

    row: dict = field(repr=False)
    problems: dict  # column -> reason; names and reasons only, never values


def shape_record(record: dict) -> ShapedRecord:
    """Convert every value; one that does not fit is NULL in its column and kept raw in
    `_hed_invalid_values`, so the record still lands and an update still replaces the old
    version (which also clears invalid values it had)."""
    row, raw, problems = {}, {}, {}
    placed = set()  # the destination columns new fields of this record land in
    for name, value in record.items():
        column = name
        try:
            column, convert = (
                (name, CONVERTERS[name]) if name in CONVERTERS else place(name, record, placed)
            )
            row[column] = convert(value)
        except UnconvertibleError as problem:
            if column in CONVERTERS:  # a declared column is sent as NULL; a new field not at all
                row[column] = None
            raw[name] = json_value(value)
            problems[name] = problem.reason
    row[INVALID_VALUES_COLUMN] = raw or None
    return ShapedRecord(row, problems)


def place(name: str, record: dict, placed: set) -> tuple:
    """Where a field the schema does not declare lands, and its converter.

    Fivetran renames columns (`currentGpa` -> `current_gpa`) and, when two fields land in
    the same column, keeps one and drops the other silently. So a field that lands on a
    declared column the record lacks is converted as that column (an API that switched to
    camelCase still loads typed), and one that lands where another field does is kept raw.
    """
    column = destination_name(name)
    taken = (
        column in placed
        or (column != name and column in record)  # the field named exactly so owns it
        or column.startswith(RESERVED_PREFIXES)
    )
    if taken:
        raise UnconvertibleError(f"lands in the same column as another field ({column})")
    placed.add(column)
    return (column, CONVERTERS[column]) if column in CONVERTERS else (name, to_new_field)


@functools.lru_cache(maxsize=NAME_CACHE_SIZE)
def destination_name(name: str) -> str:
    """The column name Fivetran gives a field, by its naming rules (as the SDK core applies
    them in its renaming module, installed in .venv): accents dropped, other non-word
    characters as `_`, an `_` where a lower-case letter meets a capital or digits meet
    non-digits, lower case, runs of `_` as one, and an `_` before a leading non-word
    character."""
    if not PLAIN_NAME.fullmatch(name):
        decomposed = unicodedata.normalize("NFD", name)
        unaccented = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
        name = unicodedata.normalize("NFC", unaccented)
    letters, previous = [], "\0"
    for character in NON_WORD.sub("_", name):
        if (previous.islower() and character.isupper()) or (
            previous.isdigit() != character.isdigit()
        ):
            letters.append("_")
        letters.append(character.lower())
        previous = character
    column = UNDERSCORES.sub("_", "".join(letters))
    return "_" + column if column and not WORD_START.match(column) else column


def to_row(record: dict) -> dict:
    """The row to upsert for a keyed record (the benchmark's floor uses this too)."""
    return shape_record(record).row


def unkeyed_reason(item) -> str | None:
    """Why an item cannot be upserted into hed_records, or None if it can be keyed."""
    if not isinstance(item, dict):
        return "not a JSON object"
    if PRIMARY_KEY not in item:
        return "missing record_id"
    key = item[PRIMARY_KEY]
    if key is None:
        return "null record_id"
    if isinstance(key, bool) or not isinstance(key, str | int):
        return "record_id is not text or an integer"
    if isinstance(key, str) and not key.strip():
        return "empty record_id"
    try:
        to_text(key)
    except UnconvertibleError:
        return "record_id is not valid text"
    return None


def rejected_row(item, reason: str, cursor: str | None, seen_at: datetime) -> dict:
    """The item whole, keyed by its content so re-reading the page never duplicates it."""
    return {
        REJECTED_KEY: hashlib.sha256(canonical_json(item).encode("ascii")).hexdigest(),
        "raw_record": json_value(item),
        "reason": reason,
        "seen_at": seen_at,
        "source_cursor": cursor,
    }


# ---------------------------------------------------------------------------------------
# Sync


@dataclass
class SyncProgress:
    """What this sync has done; `cursor` always points past the last fully loaded page."""

    cursor: str | None
    upserted: int = 0
    nulled: Counter = field(default_factory=Counter)  # (column, reason) -> values kept raw
    rejected: Counter = field(default_factory=Counter)  # reason -> items kept whole
    pages: int = 0
    since_checkpoint: int = 0
    started: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def state(self) -> dict:
        """Only what the next sync needs: never the key."""
        cursor = {"next_cursor": self.cursor} if self.cursor else {}
        return {**cursor, STATE_VERSION_KEY: STATE_VERSION}

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> float:
        return self.upserted / max(self.elapsed(), 1e-9)


def read_saved_cursor(state: dict) -> str | None:
    """The cursor the last sync saved, or None for a first (or reset) sync."""
    cursor = (state or {}).get("next_cursor")
    if cursor is None:
        return None
    if not isinstance(cursor, str) or not cursor:
        log.warning("Ignoring an unusable next_cursor in state; starting a full sync.")
        return None
    return cursor


def warn_if_lab_state(state: dict) -> None:
    """Say once how to retype the tables when the saved state is the lab connector's.

    Its cursor is honoured (the sync continues from it), but the rows it loaded sit in the
    lab's column types (timestamps as text, money as FLOAT), and typed rows upserted into
    those columns do not change them. Only a re-sync rebuilds the tables typed.
    """
    if not isinstance(state, dict) or not state.get("next_cursor"):
        return
    if STATE_VERSION_KEY in state:
        return
    log.warning(
        f"The saved state has a cursor but no {STATE_VERSION_KEY}: it was written by the lab "
        f"connector, whose {TABLE} columns are untyped (timestamps as text, money as FLOAT). "
        "This sync continues from that cursor, but the columns keep the lab's types until "
        'a re-sync. In Fivetran, run "Re-sync all historical data" for this connection (or '
        f"a table re-sync of {TABLE}); locally, run ./debug_and_reset.sh --local --yes or "
        "fivetran reset, then sync again."
    )


def upsert(table: str, row: dict) -> None:
    """Hand one row to the SDK; if it refuses one the connector converted, stop the sync.

    The SDK fails every later operation after one fails, and skipping the row would let
    the cursor pass a record that is not in the warehouse. The SDK's message may quote the
    value, so only its type is named.
    """
    try:
        op.upsert(table, row)
    except Exception as error:
        raise SyncError(
            f"The Fivetran SDK refused a row for {table} that the connector had converted "
            f"({type(error).__name__}). Nothing after the last checkpoint was saved. This is a "
            "connector defect: report it with the SDK version (requirements-dev.txt)."
        ) from None


def load_page(page: Page, progress: SyncProgress) -> None:
    """Land every item of a page: keyed records in hed_records (values that do not convert
    kept raw beside them), the rest whole in hed_rejected_records. Only counts are kept."""
    for item in page.records:
        reason = unkeyed_reason(item)
        if reason:
            upsert(REJECTED_TABLE, rejected_row(item, reason, page.cursor, progress.started_at))
            progress.rejected[reason] += 1
        else:
            shaped = shape_record(item)
            upsert(TABLE, shaped.row)
            progress.upserted += 1
            progress.nulled.update(shaped.problems.items())
        progress.since_checkpoint += 1
    progress.pages += 1


def save_checkpoint(progress: SyncProgress) -> None:
    """Checkpoint the cursor past the last loaded page and log progress."""
    op.checkpoint(progress.state())
    progress.since_checkpoint = 0
    log.info(
        f"Checkpoint: {progress.upserted:,} records upserted, {progress.pages:,} pages, "
        f"{progress.rate():,.0f} rows/s"
    )


def load_from(client: HedClient, settings: Settings, progress: SyncProgress) -> None:
    """Load every page from progress.cursor to the end, checkpointing at page boundaries."""
    stop = threading.Event()
    with closing(prefetch(iterate_pages(client, progress.cursor, stop), stop)) as pages:
        for page in pages:
            load_page(page, progress)
            if page.next_cursor:
                progress.cursor = page.next_cursor
            if progress.since_checkpoint >= settings.checkpoint_interval:
                save_checkpoint(progress)


def load_all(client: HedClient, settings: Settings, progress: SyncProgress) -> None:
    """Load from the saved cursor; if the API rejects it, warn and re-sync from the start."""
    try:
        load_from(client, settings, progress)
    except CursorRejectedError:
        if progress.pages:
            raise
        op.warning(
            "The HED API rejected the saved cursor (it may have expired); re-syncing all "
            "records from the beginning. Upserts make re-reading safe."
        )
        progress.cursor = None
        load_from(client, settings, progress)


def plural(count: int, word: str) -> str:
    return f"{count:,} {word}" + ("" if count == 1 else "s")


def describe_data_quality(progress: SyncProgress) -> str | None:
    """The sync's data-quality warning: counts by column and reason, never values."""
    parts = []
    if progress.nulled:
        details = "; ".join(
            f"{column}: {count:,} {reason}"
            for (column, reason), count in sorted(progress.nulled.items())
        )
        parts.append(
            f"{plural(sum(progress.nulled.values()), 'value')} did not fit the column type: "
            f"set null, kept raw in {TABLE}.{INVALID_VALUES_COLUMN} ({details})"
        )
    if progress.rejected:
        details = ", ".join(
            f"{count:,} {reason}" for reason, count in sorted(progress.rejected.items())
        )
        parts.append(
            f"{plural(sum(progress.rejected.values()), 'record')} could not be keyed: kept "
            f"whole in {REJECTED_TABLE} ({details})"
        )
    if not parts:
        return None
    return (
        "Data quality: " + ". ".join(parts) + ". Values are not logged (student data); "
        "ask the API owner to fix them at the source."
    )


def report_data_quality(progress: SyncProgress) -> None:
    """One warning per sync, and only when something did not fit."""
    message = describe_data_quality(progress)
    if message:
        op.warning(message)


def fail_sync(progress: SyncProgress, error: Exception) -> RuntimeError:
    """Checkpoint what was loaded, then build the error the sync raises.

    A sync that loaded no page leaves the saved state as it was (a rejected cursor whose
    re-sync then fails must not erase it). If the SDK already failed (it then refuses
    every operation), the message says so instead of raising the SDK's error. An
    unexpected error is described by type and place only: its message may quote a
    record's value. The caller raises `from None`, because the cause's frames hold page
    data that the SDK's crash report would print.
    """
    saved = "nothing was loaded, so the saved state is unchanged"
    try:
        if progress.pages:
            save_checkpoint(progress)
            saved = "the pages loaded before the failure are checkpointed"
        report_data_quality(progress)
    except Exception as checkpoint_error:  # the SDK refuses every operation after one failed
        saved = f"the SDK also refused the checkpoint ({type(checkpoint_error).__name__})"
    if isinstance(error, SyncError):
        reason = str(error)
    else:
        where = traceback.extract_tb(error.__traceback__)[-1]
        reason = (
            f"unexpected {type(error).__name__} at {where.name}:{where.lineno}. Rerun; the "
            "sync resumes from its last checkpoint. Report it if it happens again."
        )
    return RuntimeError(
        f"HED sync failed after {progress.upserted:,} records: {reason} ({saved}; the next "
        "sync resumes from the last checkpoint)"
    )


def sync(configuration: dict, state: dict, clock: WallClock | None = None) -> None:
    """Run one sync; `clock` (now() and sleep(seconds, stop)) is injectable so tests check
    the retry policy without waiting for it.

    Raises:
        ValueError: a configuration error, before any request.
        RuntimeError: the sync could not finish; what it loaded is checkpointed first.
    """
    settings = validate_configuration(configuration)
    warn_if_lab_state(state)
    progress = SyncProgress(cursor=read_saved_cursor(state))
    log.info("Incremental sync from saved cursor" if progress.cursor else "Initial sync")
    client = HedClient(settings, clock=clock)
    try:
        load_all(client, settings, progress)
        save_checkpoint(progress)  # the core writes the last rows here: its errors may quote them
        report_data_quality(progress)
    except Exception as error:  # every failure must checkpoint first and leak no page data
        raise fail_sync(progress, error) from None
    finally:
        client.close()
    log.info(
        f"Sync complete: {progress.upserted:,} upserted, "
        f"{plural(sum(progress.nulled.values()), 'invalid value')} kept raw, "
        f"{sum(progress.rejected.values()):,} rejected, {progress.pages:,} pages, "
        f"{client.requests_made:,} requests, {client.retries:,} retries, "
        f"{progress.elapsed():.1f} s"
    )


# ---------------------------------------------------------------------------------------
# Setup form and connection test


def check_connection(configuration: dict):
    """The dashboard's setup test: one small request, failures in plain words."""
    try:
        settings = validate_configuration(configuration)
    except ValueError as error:
        return Test.failure(str(error))
    client = HedClient(settings)
    try:
        client.request_page(cursor=None, page_size=MIN_PAGE_SIZE, seconds=SETUP_TEST_DEADLINE_S)
    except ApiError as error:
        return Test.failure(str(error))
    except TransientError as error:
        return Test.failure(describe_transient(settings, error))
    finally:
        client.close()
    return Test.success()


def describe_transient(settings: Settings, error: TransientError) -> str:
    """A setup-test failure in plain words: a busy API differs from an unreachable one, and
    both from one that answers with something that is not a page."""
    if isinstance(error, BadBodyError):
        return (
            f"The HED API at {settings.base_url} {error}. Check that base_url "
            "points at the HED API itself, not a proxy or web page."
        )
    if isinstance(error, SlowResponseError):
        return (
            f"The HED API at {settings.base_url} is reachable but too slow: {error}. "
            "Try the test again in a few minutes."
        )
    if error.status:
        return (
            f"The HED API at {settings.base_url} is reachable but answered {error}. "
            "Try the test again in a few minutes."
        )
    return (
        f"Could not reach the HED API at {settings.base_url}: {error}. "
        "Check base_url and that this host can reach it."
    )


def configuration_form():
    """The setup form shown in the Fivetran dashboard."""
    form = ConfigurationForm()
    form.add_field(
        form_field.TextField(
            "api_key",
            "API key",
            form_field.TextField.password,
            description="Your HED API key, sent in the x-api-key header.",
            required=True,
        )
    )
    form.add_field(
        form_field.TextField(
            "base_url",
            "Base URL",
            description="The HED API's base URL. https is required except for localhost.",
            placeholder=DEFAULT_BASE_URL,
        )
    )
    form.add_field(
        form_field.TextField(
            "page_size",
            "Page size",
            description=f"Records per request, {MIN_PAGE_SIZE} to {MAX_PAGE_SIZE}.",
            placeholder=str(DEFAULT_PAGE_SIZE),
        )
    )
    form.add_field(
        form_field.TextField(
            "checkpoint_interval",
            "Checkpoint interval",
            description="Rows between checkpoints: an integer of at least 1. Larger is faster; "
            "a crashed sync re-fetches the rows after its last checkpoint (up to this many "
            "plus two pages).",
            placeholder=str(DEFAULT_CHECKPOINT_INTERVAL),
        )
    )
    form.add_test(label="Connect to the HED API", func=check_connection)
    return form


connector = Connector(update=update, schema=schema, configuration_form=configuration_form)

if __name__ == "__main__":
    with open("configuration.json", encoding="utf-8") as config_file:
        connector.debug(configuration=json.load(config_file))
