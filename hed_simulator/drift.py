"""Drift: the value formats a real HED API started serving, and the truth behind them.

The real API changed how it spells values (ISO timestamps with offsets, numbers and booleans
as text, a page without a charset) and sometimes serves values or items a connector cannot
use. Each drift mode rewrites a record as served; `Rendition` keeps, next to it, the truth a
correct connector must land: the record's values in the API's standard form (representation
modes change only the spelling), None where the served value cannot convert (with the raw
value in `invalid`), and nothing at all for an item that cannot be keyed.

Which records drift, and how, is a pure function of (seed, record_id, version): pages,
records() and expected() always agree, and reruns are reproducible. Each mode picks its
records independently, so with several modes at a rate below 1 the modes overlap by chance.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from hed_simulator.data import DOUBLE_PLACES, FIELD_KINDS, TIMESTAMP_FORMAT

# Every mode, in the order their random draws are taken: adding a mode to a set never
# changes which records the other modes pick.
DRIFT_MODES: tuple[str, ...] = (
    "iso-timestamps",
    "string-numbers",
    "string-booleans",
    "invalid-values",
    "no-charset",
    "unkeyed",
    "new-fields",
)
# Modes that change only how a value is spelled, never the value itself.
REPRESENTATION_MODES = frozenset(
    ("iso-timestamps", "string-numbers", "string-booleans", "no-charset")
)
# How the no-charset mode serves a page: text/plain with no charset, so a client that trusts
# HTTP's ISO-8859-1 default for text/* mangles the UTF-8 body.
NO_CHARSET_CONTENT_TYPE = "text/plain"

_TIMESTAMPS = tuple(name for name, kind in FIELD_KINDS.items() if kind == "timestamp")
_DOUBLES = tuple(name for name, kind in FIELD_KINDS.items() if kind == "double")
_COUNTS = tuple(name for name, kind in FIELD_KINDS.items() if kind == "count")
_MONEY = tuple(name for name, kind in FIELD_KINDS.items() if kind == "money")
_BOOLEANS = tuple(name for name, kind in FIELD_KINDS.items() if kind == "boolean")
_ISO = "%Y-%m-%dT%H:%M:%S"
# Offsets the iso-timestamps mode writes local times in; the truth is the UTC instant.
_EAST = timedelta(hours=2)
_WEST = timedelta(hours=-5)
# Spellings of true and false a drifted API uses (mixed case, letters, digits, integers).
_TRUE_SPELLINGS: tuple[Any, ...] = ("true", "True", "TRUE", "t", "T", "yes", "Yes", "YES", "1", 1)
_FALSE_SPELLINGS: tuple[Any, ...] = ("false", "False", "FALSE", "f", "F", "no", "No", "NO", "0", 0)
# The no-charset mode's academic standings: each has text inside Latin-1 (é, è) and outside
# it (U+2019 right single quote, U+2013 en dash), so any wrong decoding shows.
ACCENTED_STANDINGS = {
    "Dean's List": "Dean\u2019s List \u2013 Mention Tr\u00e8s Bien",
    "Good Standing": "Good Standing \u2013 R\u00e9ussite",
    "Academic Warning": "Academic Warning \u2013 Avertissement Pr\u00e9alable",
    "Academic Probation": "Academic Probation \u2013 P\u00e9riode d\u2019Essai",
}
# Ways an item cannot be keyed (the whole-item ones keep items distinct per record).
_UNKEYED_KINDS = ("missing", "null", "empty", "blank", "string", "list")
# Undeclared fields the new-fields mode adds. retention_score is large with cents, so a
# 32-bit FLOAT would visibly lose it (12345.67 -> 12345.669921875); it must land as DOUBLE.
_RETENTION_RANGE = (10_000.0, 99_999.0)
# Cents 1..98, skipping multiples of 25 (.25, .50, .75 are exact in binary floats).
_CENTS_SPAN = 98
_QUARTER_CENTS = 25
_LIBRARY_VISITS_MAX = 400
_CAMPUSES = ("Main", "North", "Online")


def _invalid_values() -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """(column, value maker) pairs for invalid-values: none of these converts to its column's
    declared type. The last two catch lax converters (float(True), int(12.5))."""
    return (
        ("current_gpa", lambda value: "N/A"),
        ("credit_hours_attempted", lambda value: f"{value}abc"),
        ("enrollment_date", lambda value: "2024-13-01 0:00:00"),
        ("at_risk_flag", lambda value: "maybe"),
        ("financial_aid_amount", lambda value: "lots"),
        ("last_login_date", lambda value: "not a date"),
        ("writing_quality_score", lambda value: True),
        ("discussion_posts", lambda value: value + 0.5),
    )


_INVALID_VALUES = _invalid_values()


@dataclass(frozen=True)
class Expected:
    """What a correct connector lands from a full sync of the current data.

    rows: record_id -> {column: value in the API's standard (pre-drift) form, None where the
    served value is invalid, plus any new fields}. invalid: record_id -> {column: raw served
    value}. rejected: the served items that cannot be keyed, exactly as served, in log order.
    """

    rows: dict[Any, dict[str, Any]]
    invalid: dict[Any, dict[str, Any]]
    rejected: list[Any]


@dataclass(slots=True)
class Rendition:
    """One record as served, beside its truth (None once the item cannot be keyed)."""

    served: Any
    truth: dict[str, Any] | None
    invalid: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Drift:
    """A set of drift modes applied to a share `rate` of records, reproducibly from `seed`."""

    modes: frozenset[str]
    rate: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.modes) - set(DRIFT_MODES))
        if unknown:
            raise ValueError(f"unknown drift mode {unknown[0]!r}; modes: {', '.join(DRIFT_MODES)}")
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError("drift rate must be between 0 and 1")

    @classmethod
    def of(cls, modes: str | Iterable[str], rate: float = 1.0, seed: int = 0) -> Drift:
        """Accepts one mode name or several."""
        names = (modes,) if isinstance(modes, str) else tuple(modes)
        return cls(frozenset(names), rate, seed)

    @property
    def content_type(self) -> str | None:
        """The page Content-Type this drift imposes, or None for the normal JSON type."""
        return NO_CHARSET_CONTENT_TYPE if "no-charset" in self.modes else None

    def encode_page(self, payload: Any) -> bytes:
        """Compact JSON; raw UTF-8 (not \\u escapes) under no-charset, so decoding matters."""
        ascii_only = "no-charset" not in self.modes
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=ascii_only).encode()

    def render(self, record: dict[str, Any], version: int) -> Rendition:
        """The record as served under this drift, with its truth. `record` is not changed."""
        picks = self._picks(record["record_id"], version)
        rendition = Rendition(dict(record), dict(record))
        for mode, apply in _APPLY_ORDER:
            if mode in picks:
                apply(rendition, picks[mode])
        return rendition

    def _picks(self, record_id: Any, version: int) -> dict[str, float]:
        """Mode -> a draw in [0, 1) for the enabled modes that hit this record version."""
        rng = random.Random(f"hed-simulator-drift:{self.seed}:{record_id}:{version}")
        picks: dict[str, float] = {}
        for mode in DRIFT_MODES:
            hit, pick = rng.random() < self.rate, rng.random()  # always two draws per mode
            if hit and mode in self.modes:
                picks[mode] = pick
        return picks


# --- one function per mode: each rewrites rendition.served (and the truth where the value
# itself changes); `pick` in [0, 1) chooses the variant ---


def add_new_fields(rendition: Rendition, pick: float) -> None:
    extra = {
        "retention_score": retention_score(pick),
        "library_visits": int(pick * 7919) % _LIBRARY_VISITS_MAX,
        "campus": _CAMPUSES[int(pick * 104_729) % len(_CAMPUSES)],
    }
    rendition.served.update(extra)
    rendition.truth.update(extra)


def retention_score(pick: float) -> float:
    """A large amount with cents that no 32-bit float holds: never whole, never a quarter."""
    low, high = _RETENTION_RANGE
    whole = int(low + pick * (high - low))
    cents = 1 + int(pick * 1_000_003) % _CENTS_SPAN
    if cents % _QUARTER_CENTS == 0:
        cents += 1
    return round(whole + cents / 100, 2)


def add_non_ascii_text(rendition: Rendition, pick: float) -> None:
    standing = rendition.served["academic_standing"]
    accented = ACCENTED_STANDINGS.get(standing, f"{standing} \u2013 R\u00e9vis\u00e9")
    rendition.served["academic_standing"] = accented
    rendition.truth["academic_standing"] = accented


def spell_timestamps_iso(rendition: Rendition, pick: float) -> None:
    for offset, name in enumerate(_TIMESTAMPS):
        moment = datetime.strptime(rendition.served[name], TIMESTAMP_FORMAT)
        spellings = iso_spellings(moment)
        rendition.served[name] = spellings[(int(pick * 60) + offset) % len(spellings)]


def iso_spellings(moment: datetime) -> list[str]:
    """The same UTC instant as other ISO 8601 spellings; date-only only at midnight."""
    spellings = [
        (moment + _EAST).strftime(_ISO) + "+02:00",
        moment.strftime(_ISO) + "Z",
        (moment + _WEST).strftime(_ISO) + "-05:00",
        moment.strftime(_ISO) + ".0000000Z",
        moment.strftime(_ISO),
    ]
    if moment.time() == datetime.min.time():
        spellings.append(moment.date().isoformat())
    return spellings


def spell_numbers_as_text(rendition: Rendition, pick: float) -> None:
    served = rendition.served
    variant = int(pick * 60)
    for offset, name in enumerate(_DOUBLES):
        places = DOUBLE_PLACES[name]
        texts = (f"{served[name]:.{places}f}", repr(served[name]), f" {served[name]:.{places}f} ")
        served[name] = texts[(variant + offset) % len(texts)]
    for offset, name in enumerate(_COUNTS):
        texts = (str(served[name]), f"{served[name]}.0", f" {served[name]} ")
        served[name] = texts[(variant + offset) % len(texts)]
    for offset, name in enumerate(_MONEY):
        texts = (f"{served[name]:.2f}", f" {served[name]:.2f} ")
        served[name] = texts[(variant + offset) % len(texts)]


def spell_booleans_as_text(rendition: Rendition, pick: float) -> None:
    for name in _BOOLEANS:
        spellings = _TRUE_SPELLINGS if rendition.served[name] else _FALSE_SPELLINGS
        rendition.served[name] = spellings[int(pick * len(spellings))]


def serve_invalid_value(rendition: Rendition, pick: float) -> None:
    name, make = _INVALID_VALUES[int(pick * len(_INVALID_VALUES))]
    raw = make(rendition.truth[name])
    rendition.served[name] = raw
    rendition.truth[name] = None
    rendition.invalid[name] = raw


def make_unkeyed(rendition: Rendition, pick: float) -> None:
    kind = _UNKEYED_KINDS[int(pick * len(_UNKEYED_KINDS))]
    served = rendition.served
    if kind == "missing":
        del served["record_id"]
    elif kind == "string":  # double-encoded JSON, a classic upstream bug; distinct per record
        rendition.served = json.dumps(served, separators=(",", ":"))
    elif kind == "list":  # the values without their names; distinct per record
        rendition.served = list(served.values())
    else:
        served["record_id"] = {"null": None, "empty": "", "blank": "   "}[kind]
    rendition.truth = None
    rendition.invalid = {}


# Application order: fields and text first, then spellings, then invalid values (which
# override a spelling), and last the unkeyed items (which may replace the whole item).
_APPLY_ORDER: tuple[tuple[str, Callable[[Rendition, float], None]], ...] = (
    ("new-fields", add_new_fields),
    ("no-charset", add_non_ascii_text),
    ("iso-timestamps", spell_timestamps_iso),
    ("string-numbers", spell_numbers_as_text),
    ("string-booleans", spell_booleans_as_text),
    ("invalid-values", serve_invalid_value),
    ("unkeyed", make_unkeyed),
)


def is_keyable(item: Any) -> bool:
    """Whether a connector can key the item: an object whose record_id is non-blank text or an
    integer (the warehouse contract's rule for hed_rejected_records)."""
    if not isinstance(item, dict):
        return False
    record_id = item.get("record_id")
    if isinstance(record_id, str):
        return bool(record_id.strip())
    return isinstance(record_id, int) and not isinstance(record_id, bool)
