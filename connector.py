"""Fivetran connector for the HED (Higher Education Data) API.

Syncs student academic and engagement records from `GET /hed_data` into one table,
`hed_records`, keyed by `record_id`. The API pages through a change log with an opaque
cursor: saving the cursor after each loaded page makes a crashed sync resume where it
stopped and makes every sync after the first incremental.

Read top to bottom: constants -> configuration -> HTTP client and retry policy -> page
stream (fetched one page ahead) -> record checks -> sync loop -> schema(), update(),
configuration_form().

Student records are FERPA-protected: nothing here logs a record's values or the API key.
"""

import email.utils
import ipaddress
import json
import math
import queue
import random
import re
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlsplit

import requests
from fivetran_connector_sdk import ConfigurationForm, Connector, Test, form_field
from fivetran_connector_sdk import Logging as log
from fivetran_connector_sdk import Operations as op

TABLE = "hed_records"
PRIMARY_KEY = "record_id"
DATA_PATH = "/hed_data"
DEFAULT_BASE_URL = "https://sdk-demo-api-dot-internal-sales.uc.r.appspot.com"
# The value configuration.json ships with; a sync refuses to start while it is still there.
PLACEHOLDER_API_KEY = "YOUR_HED_API_KEY"
USER_AGENT = "hed-fivetran-connector/1.0"

# The API's own page-size default and bounds: anything outside gets HTTP 400.
DEFAULT_PAGE_SIZE = 100
MIN_PAGE_SIZE, MAX_PAGE_SIZE = 1, 200
# Rows between checkpoints: each checkpoint costs ~0.1 s in the SDK core, and the rows
# after the last one are re-fetched after a crash.
DEFAULT_CHECKPOINT_INTERVAL = 100

# Seconds to open a connection / to wait for the next byte: a dead API fails in seconds.
CONNECT_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 30.0
# Retry policy for transient failures (connection errors, timeouts, 429, 5xx).
MAX_ATTEMPTS = 8  # per request, first try included
BACKOFF_BASE_S = 1.0  # first backoff; doubles per attempt
BACKOFF_CAP_S = 30.0  # no single backoff waits longer than this
RETRY_AFTER_CAP_S = 60.0  # a server asking for more than this gets this
RETRY_BUDGET_S = 120.0  # total retry time for one request, so a dead API fails in minutes
MAX_BAD_BODY_ATTEMPTS = 3  # a 200 that is not the expected JSON is re-asked this often
API_ERROR_PREVIEW_CHARS = 200  # how much of an API error message to quote to the user

# Runaway pagination guard: this many empty pages in a row that still say has_more.
MAX_EMPTY_PAGES_IN_A_ROW = 50
# Pages fetched ahead of the one being loaded: hides API latency, keeps memory to 2 pages
# and a crash's re-fetch to checkpoint_interval + page_size rows.
PREFETCH_DEPTH = 1
# How long closing the sync waits for the fetch thread; a request still in flight then
# ends within READ_TIMEOUT_S in a daemon thread that makes no further requests.
PREFETCH_JOIN_TIMEOUT_S = 5.0
PREFETCH_POLL_S = 0.1  # how often a blocked fetch thread checks for a stop request

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
# Money is exact DECIMAL: cents survive sums. 18 digits hold any realistic aid amount.
MONEY_PRECISION, MONEY_SCALE = 18, 2
MONEY_LIMIT = 10 ** (MONEY_PRECISION - MONEY_SCALE)  # exclusive bound of what DECIMAL(18,2) holds
LONG_MIN, LONG_MAX = -(2**63), 2**63 - 1  # the SDK's LONG range
# Naive timestamps as the SDK parses them; the API sends "2024-08-04 0:00:00" (unpadded
# hour). A regex, not strptime: measured 15x cheaper per record. A date it lets through
# that does not exist (2024-02-30) is refused by op.upsert and skipped all the same.
NAIVE_TIMESTAMP = re.compile(
    r"\s*\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[ T]"
    r"(?:[01]?\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d{1,6})?\s*"
)


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


class BadBodyError(TransientError):
    """HTTP 200 whose body is not the page shape; retried a few times, then fatal."""


class FetchCancelledError(Exception):
    """The sync is stopping: the fetch thread must make no further requests."""


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
    """The API key, required and not the repository placeholder."""
    api_key = configuration.get("api_key", "").strip()
    if not api_key:
        raise ValueError("Configuration key 'api_key' is required: set it to your HED API key.")
    if api_key == PLACEHOLDER_API_KEY:
        raise ValueError(
            "Configuration key 'api_key' still holds the placeholder: set it to your HED API key."
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
    """One page of the change log, as the API returned it."""

    records: list = field(repr=False)  # student data: never in a repr or crash report
    next_cursor: str | None
    has_more: bool


class HedClient:
    """Fetches pages over one session, retrying only what is transient.

    `sleep`, `clock` and `jitter` are injectable so tests check the retry policy
    without waiting for it; by default a backoff wait ends early when the sync stops.
    """

    def __init__(
        self,
        settings: Settings,
        sleep: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        jitter: Callable[[], float] = random.random,
    ):
        self.settings = settings
        self.requests_made = 0
        self.retries = 0
        self._sleep = sleep
        self._clock = clock
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
        started = self._clock()
        attempt = 0
        bad_bodies = 0
        while True:
            attempt += 1
            if stop.is_set():
                raise FetchCancelledError
            try:
                return self.request_page(cursor, self.settings.page_size)
            except TransientError as error:
                bad_bodies += isinstance(error, BadBodyError)
                delay = self.backoff_delay(attempt, error.retry_after)
                spent = self._clock() - started
                if self.retries_exhausted(attempt, bad_bodies, spent + delay):
                    raise ApiError(
                        f"The HED API at {self.settings.base_url} kept failing: {error} "
                        f"({attempt} attempts over {spent:.0f} s). Check that the API is up and "
                        "base_url is right, then rerun: the sync resumes from its last checkpoint."
                    ) from error
                log.warning(f"HED API request failed ({error}); retry {attempt} in {delay:.1f} s")
                self.retries += 1
                self.wait(delay, stop)

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Sleep through a backoff, waking early if the sync is stopping."""
        if self._sleep is not None:
            self._sleep(seconds)
        elif stop.wait(seconds):
            raise FetchCancelledError

    @staticmethod
    def retries_exhausted(attempt: int, bad_bodies: int, elapsed_after_wait: float) -> bool:
        """Stop on the attempt cap, the bad-body cap, or the per-request time budget."""
        return (
            attempt >= MAX_ATTEMPTS
            or bad_bodies >= MAX_BAD_BODY_ATTEMPTS
            or elapsed_after_wait > RETRY_BUDGET_S
        )

    def backoff_delay(self, attempt: int, retry_after: float | None) -> float:
        """Honour the server's Retry-After (capped); else capped exponential backoff.

        Jitter spreads retries so many connectors do not hammer a recovering API at once.
        """
        if retry_after is not None:
            return min(retry_after, RETRY_AFTER_CAP_S)
        ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1))
        return ceiling / 2 + self._jitter() * ceiling / 2

    def request_page(self, cursor: str | None, page_size: int) -> Page:
        """One GET /hed_data, classified into a page, a TransientError or an ApiError."""
        params = {"page_size": page_size}
        if cursor:
            params["cursor"] = cursor
        self.requests_made += 1
        try:
            response = self._session.get(
                self.settings.base_url + DATA_PATH,
                params=params,
                timeout=(CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
                allow_redirects=False,  # a redirect would carry x-api-key to another host
            )
        except requests.exceptions.SSLError:
            raise ApiError(
                f"A secure (TLS) connection to {self.settings.base_url} failed: the host's "
                "certificate is invalid or it does not speak https. Check base_url."
            ) from None
        except requests.Timeout:
            raise TransientError("the request timed out") from None
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
            raise TransientError("the connection failed or was dropped") from None
        except requests.RequestException as error:
            raise ApiError(
                f"The request to the HED API could not be made ({type(error).__name__}). "
                "Check base_url in the connector configuration."
            ) from None
        if response.status_code == 200:
            return parse_page(response)
        raise self.classify_failure(response, cursor)

    def classify_failure(self, response: requests.Response, cursor: str | None) -> Exception:
        """The exception a non-200 answer deserves: retry 429/5xx, fail fast on the rest."""
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            label = "rate limited" if status == 429 else "server error"
            return TransientError(f"{label} (HTTP {status})", status, retry_after)
        if 300 <= status < 400:
            return ApiError(
                f"{self.settings.base_url} redirects (HTTP {status}); the API key is not sent "
                "on to another address. Set base_url to the final https URL."
            )
        detail = self.api_error_text(response)
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
        if status == 400 and cursor:  # page_size is validated, so the cursor is the suspect
            return CursorRejectedError(
                f"The HED API rejected the cursor (HTTP 400: {detail}). Rerun the sync: it "
                "resumes from its last checkpoint, and re-syncs from the start if that fails too."
            )
        return ApiError(
            f"The HED API rejected the request (HTTP {status}: {detail}). "
            "Check page_size and base_url in the connector configuration."
        )

    def api_error_text(self, response: requests.Response) -> str:
        """The API's own error message, short and with the key scrubbed, for the user."""
        try:
            body = response.json()
            text = str(body.get("error", "")) if isinstance(body, dict) else ""
        except ValueError:
            text = ""
        text = text.replace(self.settings.api_key, "***")[:API_ERROR_PREVIEW_CHARS]
        return text or "no error message"


def parse_page(response: requests.Response) -> Page:
    """Check a 200 body is the page shape; anything else is retried as a bad body."""
    try:
        body = response.json()
    except ValueError:
        raise BadBodyError("the API answered 200 with a body that is not JSON") from None
    if not isinstance(body, dict) or not isinstance(body.get("hed_records"), list):
        raise BadBodyError("the API answered 200 without a 'hed_records' list")
    next_cursor = body.get("next_cursor")
    has_more = body.get("has_more")
    if not isinstance(has_more, bool) or not isinstance(next_cursor, str | None):
        raise BadBodyError("the API answered 200 with invalid 'has_more' or 'next_cursor'")
    return Page(records=body["hed_records"], next_cursor=next_cursor, has_more=has_more)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
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


class Prefetcher:
    """Runs a page iterator in a background thread, at most `depth` pages ahead of its reader.

    The next request is in flight while the current page is being upserted, so API
    latency hides behind load time. A page is fetched only once the reader has taken the
    one before it: with depth 1 a crash re-fetches at most the rows since the checkpoint,
    the page being loaded and the one fetched ahead, and memory holds two pages. Errors
    in the thread are re-raised to the reader. Leaving the `with` block sets `stop`, which
    the iterator's fetches also watch.
    """

    _END = object()

    def __init__(self, pages: Iterator[Page], stop: threading.Event, depth: int = PREFETCH_DEPTH):
        self._pages = pages
        self._stop = stop
        self._slots = threading.Semaphore(depth)  # pages fetched and not yet taken
        self._queue: queue.SimpleQueue = queue.SimpleQueue()  # bounded by the slots
        self._thread = threading.Thread(target=self._run, name="hed-prefetch", daemon=True)

    def __enter__(self) -> "Prefetcher":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(PREFETCH_JOIN_TIMEOUT_S)

    def __iter__(self) -> Iterator[Page]:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            self._slots.release()  # taken: the thread may fetch the next page
            yield item

    def _run(self) -> None:
        outcome = self._END
        try:
            while self._take_slot():
                page = next(self._pages, None)
                if page is None:
                    break
                self._queue.put(page)
        except Exception as error:  # handed to the reader, which raises it
            outcome = error
        except BaseException:  # never let the reader take a dead thread for the end of data
            outcome = SyncError("The page fetch thread stopped unexpectedly; rerun the sync.")
            raise
        finally:
            self._queue.put(outcome)

    def _take_slot(self) -> bool:
        """Wait until the reader has taken the page fetched before; False once stopping."""
        while not self._stop.is_set():
            if self._slots.acquire(timeout=PREFETCH_POLL_S):
                return True
        return False


# ---------------------------------------------------------------------------------------
# Record checks


def declared_columns() -> dict:
    """The schema's column types, one entry per known field."""
    columns = {}
    columns.update(dict.fromkeys(STRING_COLUMNS, "STRING"))
    columns.update(dict.fromkeys(TIMESTAMP_COLUMNS, "NAIVE_DATETIME"))
    columns.update(dict.fromkeys(DOUBLE_COLUMNS, "DOUBLE"))
    columns.update(dict.fromkeys(COUNT_COLUMNS, "LONG"))
    columns.update(dict.fromkeys(BOOLEAN_COLUMNS, "BOOLEAN"))
    money = {"type": "DECIMAL", "precision": MONEY_PRECISION, "scale": MONEY_SCALE}
    columns.update(dict.fromkeys(MONEY_COLUMNS, money))
    return columns


def is_number(value) -> bool:
    """A JSON number a DOUBLE can hold: finite, not a bool."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int beyond any double
        return False


def is_text(value) -> bool:
    """A string, or an integer id the SDK stores as its decimal text."""
    return isinstance(value, str | int) and not isinstance(value, bool)


def is_count(value) -> bool:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return isinstance(value, int) and not isinstance(value, bool) and LONG_MIN <= value <= LONG_MAX


def is_money(value) -> bool:
    return is_number(value) and abs(value) < MONEY_LIMIT


def is_naive_timestamp(value) -> bool:
    """True if the value has the shape the SDK's NAIVE_DATETIME parser takes."""
    return isinstance(value, str) and NAIVE_TIMESTAMP.fullmatch(value) is not None


# Which check each declared column's non-null values must pass.
VALUE_CHECKS = {
    **dict.fromkeys(STRING_COLUMNS, is_text),
    **dict.fromkeys(TIMESTAMP_COLUMNS, is_naive_timestamp),
    **dict.fromkeys(DOUBLE_COLUMNS, is_number),
    **dict.fromkeys(COUNT_COLUMNS, is_count),
    **dict.fromkeys(BOOLEAN_COLUMNS, lambda value: isinstance(value, bool)),
    **dict.fromkeys(MONEY_COLUMNS, is_money),
}


def find_defect(record) -> str | None:
    """Why `record` cannot be loaded, as a category safe to log; None if it can.

    Only field names appear in the answer, never values.
    """
    if not isinstance(record, dict):
        return "not a JSON object"
    record_id = record.get(PRIMARY_KEY)
    if not is_text(record_id) or not str(record_id).strip():
        return "missing, null or empty record_id"
    for column, check in VALUE_CHECKS.items():
        value = record.get(column)
        if value is not None and not check(value):
            return f"invalid {column}"
    return None


def to_row(record: dict) -> dict:
    """The row to upsert: money as exact two-decimal text for the DECIMAL column."""
    for column in MONEY_COLUMNS:
        value = record.get(column)
        if value is not None:
            record[column] = f"{value:.{MONEY_SCALE}f}"
    return record


# ---------------------------------------------------------------------------------------
# Sync


@dataclass
class SyncProgress:
    """What this sync has done; `cursor` always points past the last fully loaded page."""

    cursor: str | None
    upserted: int = 0
    skipped: Counter = field(default_factory=Counter)
    pages: int = 0
    since_checkpoint: int = 0
    started: float = field(default_factory=time.monotonic)

    def state(self) -> dict:
        """Only what the next sync needs: never the key."""
        return {"next_cursor": self.cursor} if self.cursor else {}

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


def load_page(page: Page, progress: SyncProgress) -> None:
    """Upsert a page's loadable records; count, never log, the rest.

    Raises:
        SyncError: the SDK refused every record of the page although all passed our
            checks: a systematic mismatch, not bad data, so skipping would lose the table.
    """
    refused = 0
    for record in page.records:
        defect = find_defect(record)
        if defect:
            progress.skipped[defect] += 1
            continue
        try:
            op.upsert(TABLE, to_row(record))
        except (TypeError, ValueError, ArithmeticError):  # a value our checks let by
            refused += 1
            progress.skipped["value the SDK refused"] += 1
            continue
        progress.upserted += 1
        progress.since_checkpoint += 1
    if page.records and refused == len(page.records):
        raise SyncError(
            "The Fivetran SDK refused every record of a page that passed the connector's "
            "checks. Check that the SDK version matches requirements-dev.txt."
        )
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
    with Prefetcher(iterate_pages(client, progress.cursor, stop), stop) as pages:
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


def report_skipped(progress: SyncProgress) -> None:
    """One warning with the counts of malformed records, by reason; never their contents."""
    total = sum(progress.skipped.values())
    if not total:
        return
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(progress.skipped.items()))
    op.warning(
        f"Skipped {total} malformed HED records ({reasons}). Their contents are not logged "
        "(student data); ask the API owner to fix them at the source."
    )


def fail_sync(progress: SyncProgress, error: Exception) -> RuntimeError:
    """Checkpoint what was loaded, then build the error the sync raises.

    An unexpected error is described by type and place only: its message may quote a
    record's value. The caller raises `from None`, because the cause's frames hold page
    data that the SDK's crash report would print.
    """
    save_checkpoint(progress)
    report_skipped(progress)
    if isinstance(error, SyncError):
        reason = str(error)
    else:
        where = traceback.extract_tb(error.__traceback__)[-1]
        reason = (
            f"unexpected {type(error).__name__} at {where.name}:{where.lineno}. Rerun; the "
            "sync resumes from its last checkpoint. Report it if it happens again."
        )
    return RuntimeError(f"HED sync failed after {progress.upserted:,} records: {reason}")


def sync(configuration: dict, state: dict, sleep: Callable[[float], None] | None = None) -> None:
    """Run one sync; `sleep` is injectable so tests need not wait for backoff.

    Raises:
        ValueError: a configuration error, before any request.
        RuntimeError: the sync could not finish; what it loaded is checkpointed first.
    """
    settings = validate_configuration(configuration)
    progress = SyncProgress(cursor=read_saved_cursor(state))
    log.info("Incremental sync from saved cursor" if progress.cursor else "Initial sync")
    client = HedClient(settings, sleep=sleep)
    try:
        load_all(client, settings, progress)
    except Exception as error:  # every failure must checkpoint first and leak no page data
        raise fail_sync(progress, error) from None
    finally:
        client.close()
    save_checkpoint(progress)
    report_skipped(progress)
    log.info(
        f"Sync complete: {progress.upserted:,} upserted, {sum(progress.skipped.values()):,} "
        f"skipped, {progress.pages:,} pages, {client.requests_made:,} requests, "
        f"{client.retries:,} retries, {progress.elapsed():.1f} s"
    )


# ---------------------------------------------------------------------------------------
# Fivetran entry points


def schema(configuration: dict) -> list:
    """One table keyed by record_id, with the declared types above."""
    return [{"table": TABLE, "primary_key": [PRIMARY_KEY], "columns": declared_columns()}]


def update(configuration: dict, state: dict) -> None:
    """Called by Fivetran for each sync. The parameter names are the SDK's contract."""
    sync(configuration, state)


def check_connection(configuration: dict):
    """The dashboard's setup test: one small request, failures in plain words."""
    try:
        settings = validate_configuration(configuration)
    except ValueError as error:
        return Test.failure(str(error))
    client = HedClient(settings)
    try:
        client.request_page(cursor=None, page_size=MIN_PAGE_SIZE)
    except ApiError as error:
        return Test.failure(str(error))
    except TransientError as error:
        return Test.failure(describe_transient(settings, error))
    finally:
        client.close()
    return Test.success()


def describe_transient(settings: Settings, error: TransientError) -> str:
    """A setup-test failure in plain words: a busy API differs from an unreachable one."""
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
            "a crashed sync re-fetches up to this many rows plus one page.",
            placeholder=str(DEFAULT_CHECKPOINT_INTERVAL),
        )
    )
    form.add_test(label="Connect to the HED API", func=check_connection)
    return form


connector = Connector(update=update, schema=schema, configuration_form=configuration_form)

if __name__ == "__main__":
    with open("configuration.json", encoding="utf-8") as config_file:
        connector.debug(configuration=json.load(config_file))
