"""The change log that orders records, and the opaque cursors that point into it.

Log positions 0..N-1 are the initial records (record index = position, because their
last_updated grows with the index). Every change (a new record or an update) appends one
position at the end with a later timestamp from a simulated clock, so last_updated order and
log order always agree. An update leaves a dead entry at the record's old position; paging
skips dead entries. Only changed records cost memory.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import random
import re
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import quote, unquote

# Fernet's version byte; with a small timestamp it makes tokens start with "gAAAAA" like the API.
_VERSION = b"\x80"
# Fixed token timestamp, so the same position always yields the same token.
_TOKEN_TIME = 1_704_067_200
_IV_BYTES = 16
_BLOCK_BYTES = 16
_MAC_BYTES = 32
_TOKEN_BYTES = 1 + 8 + _IV_BYTES + _BLOCK_BYTES + _MAC_BYTES
_TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]+={0,2}")
# Simulated seconds between two consecutive changes.
_CHANGE_GAP_SECONDS = (1, 90)


class InvalidCursorError(ValueError):
    """A cursor that was tampered with, or points past anything this log ever issued."""


class CursorCodec:
    """Encodes log positions as Fernet-looking tokens signed with a seed-derived HMAC key.

    Not encryption-grade: the position is only masked. It exists so clients treat cursors as
    opaque and so tampering is detected, as with the real API.
    """

    def __init__(self, seed: int) -> None:
        self._key = hashlib.sha256(f"hed-simulator-cursor:{seed}".encode()).digest()

    def encode(self, position: int) -> str:
        """Return the URL-quoted token for `position`, as the API puts it in JSON bodies."""
        header = _VERSION + _TOKEN_TIME.to_bytes(8, "big")
        iv = self._digest(b"iv", position.to_bytes(8, "big"))[:_IV_BYTES]
        masked = self._mask(iv, position.to_bytes(_BLOCK_BYTES, "big"))
        signed = header + iv + masked
        token = base64.urlsafe_b64encode(signed + self._digest(b"mac", signed))
        return quote(token.decode("ascii"), safe="")

    def decode(self, cursor: str) -> int:
        """Return the position in `cursor` (quoted or not); raise InvalidCursorError otherwise."""
        token = unquote(cursor)
        if not _TOKEN_PATTERN.fullmatch(token):
            raise InvalidCursorError(cursor)
        try:
            raw = base64.urlsafe_b64decode(token)
        except ValueError as error:
            raise InvalidCursorError(cursor) from error
        if len(raw) != _TOKEN_BYTES or raw[:1] != _VERSION:
            raise InvalidCursorError(cursor)
        signed, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
        if not hmac.compare_digest(mac, self._digest(b"mac", signed)):
            raise InvalidCursorError(cursor)
        iv = signed[9 : 9 + _IV_BYTES]
        return int.from_bytes(self._mask(iv, signed[9 + _IV_BYTES :]), "big")

    def _digest(self, purpose: bytes, data: bytes) -> bytes:
        return hmac.new(self._key, purpose + data, hashlib.sha256).digest()

    def _mask(self, iv: bytes, block: bytes) -> bytes:
        """XOR with a keystream derived from the IV; applying it twice restores the block."""
        stream = self._digest(b"stream", iv)
        return bytes(a ^ b for a, b in zip(block, stream, strict=False))


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One live entry: which record, which version, and its last_updated (None = initial)."""

    index: int
    version: int
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class Page:
    """Entries of one page, where the next page starts, and whether live entries remain."""

    entries: list[LogEntry]
    next_position: int
    has_more: bool


class ChangeLog:
    """Thread-safe log of record positions; knows nothing about record contents."""

    def __init__(self, initial_records: int, clock_start: datetime, seed: int) -> None:
        self._initial = initial_records
        self._appended: list[int] = []  # record index at position initial + k
        self._changed: dict[int, LogEntry] = {}  # latest entry of every new or updated record
        self._position_of: dict[int, int] = {}  # current position of every changed record
        self._clock = clock_start
        self._seed = seed
        self._batches = 0
        self._new_records = 0
        self._lock = threading.Lock()

    @property
    def length(self) -> int:
        """Number of positions ever issued; a valid cursor points at most here."""
        return self._initial + len(self._appended)

    @property
    def record_count(self) -> int:
        """Number of distinct records."""
        with self._lock:
            return self._initial + self._new_records

    def page(self, start: int, limit: int) -> Page:
        """Return up to `limit` live entries from `start`, skipping dead (moved) ones."""
        with self._lock:
            end = self.length
            entries: list[LogEntry] = []
            position = start
            while position < end and len(entries) < limit:
                entry = self._live_entry(position)
                if entry is not None:
                    entries.append(entry)
                position += 1
            while position < end and self._live_entry(position) is None:
                position += 1
            return Page(entries, position, position < end)

    def live_entries(self) -> list[LogEntry]:
        """Every record once, latest version, in log order."""
        return self.page(0, self.length).entries

    def add_changes(self, new: int, updated: int) -> tuple[list[int], list[int]]:
        """Update `updated` distinct existing records, then append `new` ones.

        Deterministic: the n-th call with the same arguments on the same seed picks the same
        records. Returns the record indices (new, updated).
        """
        with self._lock:
            existing = self._initial + self._new_records
            if new < 0 or updated < 0 or updated > existing:
                raise ValueError(f"cannot add {new} new / update {updated} of {existing}")
            self._batches += 1
            rng = random.Random(f"hed-simulator-changes:{self._seed}:{self._batches}")
            updated_indices = rng.sample(range(existing), updated)
            for index in updated_indices:
                previous = self._changed.get(index)
                self._append(rng, index, previous.version + 1 if previous else 1)
            new_indices = list(range(existing, existing + new))
            for index in new_indices:
                self._append(rng, index, 0)
            self._new_records += new
            return new_indices, updated_indices

    def _append(self, rng: random.Random, index: int, version: int) -> None:
        self._clock += timedelta(seconds=rng.randint(*_CHANGE_GAP_SECONDS))
        self._changed[index] = LogEntry(index, version, self._clock)
        self._position_of[index] = self.length
        self._appended.append(index)

    def _live_entry(self, position: int) -> LogEntry | None:
        """The entry at `position` if the record still lives there, else None."""
        if position < self._initial:
            if position in self._changed:
                return None
            return LogEntry(position, 0, None)
        index = self._appended[position - self._initial]
        if self._position_of[index] != position:
            return None
        return self._changed[index]
