"""The shared checker: does the warehouse hold exactly what the source served?

Every phase ends here. Three figures, kept apart because each means a different bug:

- lost: a source record (or an unkeyed item) with no row in the warehouse;
- stale: a row that equals, field by field, an earlier version of its record (the sync
  kept an old version although the source moved on);
- wrong: any other difference: a field that differs from the latest version and from
  every earlier one, a row no source record explains, an unkeyed item stored with the
  wrong reason, or a rejected row no served item explains.

The truth comes from the simulator (`expected()`: standard-form values, raw values that
cannot convert, unkeyed items), never from the connector under test; the column types are
the warehouse contract's, written down here again for the same reason. Values are compared
per column type (timestamps as instants, doubles exactly, money to the cent), never by a
checksum, so a report can name the columns that differ. It names columns, never values:
student records are FERPA data.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import duckdb

from hed_simulator import FIELD_KINDS

SCHEMA = "tester"  # where `fivetran debug` writes
RECORDS_TABLE = "hed_records"
REJECTED_TABLE = "hed_rejected_records"
KEY = "record_id"
INVALID_COLUMN = "_hed_invalid_values"
# Fivetran's bookkeeping columns: not source data.
SYNCED_COLUMN, DELETED_COLUMN = "_fivetran_synced", "_fivetran_deleted"
WAREHOUSE_FILE = Path("files") / "warehouse.db"
ZONED = "WITH TIME ZONE"  # in a DuckDB type name

# The type family of each API field, from the simulator's own map of the contract (not the
# connector's constants: the checker must not inherit a mistake from the code it checks).
KIND_FAMILIES = {
    "text": "string",
    "timestamp": "timestamp",
    "double": "double",
    "count": "long",
    "boolean": "boolean",
    "money": "money",
}
CENT = Decimal("0.01")  # DECIMAL(18,2)
# The API's standard timestamp text (strptime takes its unpadded hour).
API_TIMESTAMP = "%Y-%m-%d %H:%M:%S"

# Why an item cannot be keyed, in the contract's words.
NOT_AN_OBJECT = "not a JSON object"
MISSING_KEY = "missing record_id"
NULL_KEY = "null record_id"
EMPTY_KEY = "empty record_id"
BAD_KEY_TYPE = "record_id is not text or an integer"


def column_kind(column: str) -> str:
    """The declared type family of a column; "inferred" for new (undeclared) API fields."""
    if column in FIELD_KINDS:
        return KIND_FAMILIES[FIELD_KINDS[column]]
    return "json" if column == INVALID_COLUMN else "inferred"


# ---------------------------------------------------------------------------------------
# What the source served


@dataclass
class Expected:
    """What a correct connector lands: rows by record_id (standard-form values, None where
    the served value could not convert), raw values by record_id, and unkeyed items."""

    rows: dict = field(default_factory=dict)
    invalid: dict = field(default_factory=dict)
    rejected: list = field(default_factory=list)


def expected_of(sim: Any) -> Expected:
    """A snapshot of the simulator's truth, detached from later changes to the source."""
    truth = sim.expected()
    return Expected(
        rows={str(key): dict(row) for key, row in truth.rows.items()},
        invalid={str(key): dict(values) for key, values in truth.invalid.items() if values},
        rejected=json.loads(json.dumps(list(truth.rejected))),
    )


# ---------------------------------------------------------------------------------------
# Comparing values in a form both sides share


def canonical(column: str, value: Any) -> Any:
    """One value in a form the source and the warehouse share for its column's type.

    Anything that does not fit its column's type stays distinct (tagged with its Python
    type), so it can only ever compare unequal to a well-typed value.
    """
    if value is None:
        return None
    try:
        return CANONICAL_FORMS[column_kind(column)](value)
    except (TypeError, ValueError, ArithmeticError):
        return ("unconvertible", type(value).__name__, repr(value))


def canonical_timestamp(value: Any) -> str:
    moment = value if isinstance(value, datetime) else datetime.strptime(value, API_TIMESTAMP)
    return moment.isoformat(sep=" ")


def canonical_double(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError("not a number")
    return repr(float(value))  # exact: a DOUBLE must hold the API's float bit for bit


def canonical_long(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("not an integer")
    return value


def canonical_boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("not a boolean")
    return value


def canonical_money(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise TypeError("not a number")
    return str(Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP))


def canonical_string(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not text")
    return value


def canonical_json(value: Any) -> str | None:
    """A raw-values object: JSON text from the warehouse, a dict from the source."""
    parsed = json.loads(value) if isinstance(value, str) else value
    if not parsed:
        return None  # the contract: NULL when every value converted
    return json.dumps(parsed, sort_keys=True)


def canonical_inferred(value: Any) -> str:
    """New API fields land with types the SDK infers: compare by value, floats exactly."""
    if isinstance(value, float | Decimal):
        return repr(float(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    return json.dumps(value)


CANONICAL_FORMS = {
    "string": canonical_string,
    "timestamp": canonical_timestamp,
    "double": canonical_double,
    "long": canonical_long,
    "boolean": canonical_boolean,
    "money": canonical_money,
    "json": canonical_json,
    "inferred": canonical_inferred,
}


def differing_columns(source_row: dict, raw_values: dict | None, stored: dict) -> list:
    """Columns where the stored row differs from a source version (raw values included)."""
    wanted = {**source_row, INVALID_COLUMN: raw_values or None}
    columns = sorted(set(wanted) | set(stored))
    return [
        column
        for column in columns
        if canonical(column, wanted.get(column)) != canonical(column, stored.get(column))
    ]


# ---------------------------------------------------------------------------------------
# Reading the warehouse


@dataclass
class Warehouse:
    """The warehouse's rows by record_id, its row count, and its rejected items."""

    rows: dict = field(default_factory=dict)
    row_count: int = 0
    rejected: list = field(default_factory=list)  # (raw item, reason) per rejected row


def warehouse_path(project: Path) -> Path:
    return project / WAREHOUSE_FILE


def read_warehouse(path: Path) -> Warehouse:
    """Everything the checker compares, read-only; an absent warehouse holds nothing."""
    if not path.exists():
        return Warehouse()
    with duckdb.connect(str(path), read_only=True) as db:
        tables = existing_tables(db)
        warehouse = Warehouse()
        if RECORDS_TABLE in tables:
            rows = fetch_dicts(db, RECORDS_TABLE)
            live = [row for row in rows if not row.get(DELETED_COLUMN)]
            warehouse.rows = {str(row[KEY]): source_columns(row) for row in live}
            warehouse.row_count = len(live)
        if REJECTED_TABLE in tables:
            rejected = fetch_dicts(db, REJECTED_TABLE)
            warehouse.rejected = [(parse_raw(r["raw_record"]), r["reason"]) for r in rejected]
    return warehouse


def existing_tables(db: duckdb.DuckDBPyConnection) -> set:
    query = "SELECT table_name FROM information_schema.tables WHERE table_schema = ?"
    return {name for (name,) in db.execute(query, [SCHEMA]).fetchall()}


def fetch_dicts(db: duckdb.DuckDBPyConnection, table: str) -> list:
    """Every row as a dict. Zoned timestamps come back as text: DuckDB's Python client
    would need pytz for them, and the checker compares none of them."""
    query = "SELECT column_name, data_type FROM information_schema.columns "
    query += "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position"
    columns = db.execute(query, [SCHEMA, table]).fetchall()
    names = [name for name, _ in columns]
    selected = ", ".join(
        f'CAST("{name}" AS VARCHAR)' if ZONED in kind else f'"{name}"' for name, kind in columns
    )
    rows = db.execute(f"SELECT {selected} FROM {SCHEMA}.{table}").fetchall()
    return [dict(zip(names, values, strict=True)) for values in rows]


def source_columns(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in (SYNCED_COLUMN, DELETED_COLUMN)}


def parse_raw(text: str | None) -> Any:
    """A rejected item as served (SQL NULL stands for a JSON null item)."""
    return None if text is None else json.loads(text)


def item_key(item: Any) -> str:
    """Identical items are one rejected row: compare them by canonical JSON."""
    return json.dumps(item, sort_keys=True, separators=(",", ":"))


def is_keyable(item: Any) -> bool:
    """The contract's rule: an object whose record_id is non-blank text or an integer."""
    if not isinstance(item, dict):
        return False
    key = item.get(KEY)
    if isinstance(key, str):
        return bool(key.strip())
    return isinstance(key, int) and not isinstance(key, bool)


def rejection_reason(item: Any) -> str:
    """Why the contract says `item` cannot be keyed."""
    if not isinstance(item, dict):
        return NOT_AN_OBJECT
    if KEY not in item:
        return MISSING_KEY
    key = item[KEY]
    if key is None:
        return NULL_KEY
    if isinstance(key, str):
        return EMPTY_KEY
    return BAD_KEY_TYPE


# ---------------------------------------------------------------------------------------
# The verdict


@dataclass
class Verdict:
    """Warehouse against source. lost, stale and wrong are the figures that gate."""

    expected: int = 0  # distinct source record ids
    rows: int = 0  # rows in hed_records (live)
    missing: int = 0  # source ids with no row
    stale: int = 0  # rows holding an earlier version of their record
    differing: int = 0  # rows with a field that matches no version of their record
    extra: int = 0  # rows no source record explains
    raw_values: int = 0  # values the source served that had to be kept raw
    rejected_expected: int = 0  # distinct unkeyed items served
    rejected_rows: int = 0
    rejected_missing: int = 0
    rejected_extra: int = 0  # rejected rows no served item explains
    rejected_misreasoned: int = 0  # rejected rows with another reason than the contract's
    columns: Counter = field(default_factory=Counter)  # column -> rows where it differed

    @property
    def lost(self) -> int:
        return self.missing + self.rejected_missing

    @property
    def wrong(self) -> int:
        return self.differing + self.extra + self.rejected_extra + self.rejected_misreasoned

    @property
    def clean(self) -> bool:
        return not (self.lost or self.stale or self.wrong)

    def summary(self) -> str:
        """Counts and column names only: never a value."""
        text = (
            f"rows {self.rows}/{self.expected}, lost {self.lost}, stale {self.stale}, "
            f"wrong {self.wrong} (differing {self.differing}, extra {self.extra})"
        )
        if self.raw_values:
            text += f", raw values {self.raw_values}"
        if self.rejected_expected or self.rejected_rows:
            text += (
                f", rejected {self.rejected_rows}/{self.rejected_expected} (missing "
                f"{self.rejected_missing}, extra {self.rejected_extra}, wrong reason "
                f"{self.rejected_misreasoned})"
            )
        if self.columns:
            text += "; differing columns: " + ", ".join(sorted(self.columns))
        return text

    def figures(self) -> dict:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        data["columns"] = dict(self.columns)
        return {**data, "lost": self.lost, "wrong": self.wrong}


def check(path: Path, expected: Expected, history: tuple = ()) -> Verdict:
    """Compare the warehouse at `path` (a project folder or a .db file) with `expected`.

    history: earlier snapshots of the source, oldest first; a row that equals one of them
    is stale rather than wrong.
    """
    if path.is_dir():
        path = warehouse_path(path)
    warehouse = read_warehouse(path)
    verdict = Verdict(expected=len(expected.rows), rows=warehouse.row_count)
    verdict.raw_values = sum(len(values) for values in expected.invalid.values())
    verdict.missing = len(expected.rows.keys() - warehouse.rows.keys())
    verdict.extra = len(warehouse.rows.keys() - expected.rows.keys())
    for key in sorted(expected.rows.keys() & warehouse.rows.keys()):
        judge_row(verdict, key, warehouse.rows[key], expected, history)
    earlier_items = [item for snapshot in history for item in snapshot.rejected]
    judge_rejected(verdict, warehouse.rejected, expected.rejected, earlier_items)
    return verdict


def judge_row(verdict: Verdict, key: str, stored: dict, expected: Expected, history) -> None:
    """Exact, stale (equals an earlier version) or differing (equals none)."""
    columns = differing_columns(expected.rows[key], expected.invalid.get(key), stored)
    if not columns:
        return
    for earlier in reversed(history):
        row = earlier.rows.get(key)
        if row is not None and not differing_columns(row, earlier.invalid.get(key), stored):
            verdict.stale += 1
            return
    verdict.differing += 1
    verdict.columns.update(columns)


def judge_rejected(verdict: Verdict, stored: list, served: list, earlier: list) -> None:
    """Every distinct unkeyed item once, as served, with the contract's reason.

    An item an earlier version of the source served stays legitimately: the connector
    cannot know which record it was, so nothing ever replaces it.
    """
    wanted = {item_key(item): item for item in served}
    explained = wanted.keys() | {item_key(item) for item in earlier}
    held = {}
    for item, reason in stored:
        held[item_key(item)] = reason
    verdict.rejected_expected = len(wanted)
    verdict.rejected_rows = len(stored)
    verdict.rejected_missing = len(wanted.keys() - held.keys())
    verdict.rejected_extra = len(held.keys() - explained) + (len(stored) - len(held))
    verdict.rejected_misreasoned = sum(
        held[key] != rejection_reason(wanted[key]) for key in wanted.keys() & held.keys()
    )
