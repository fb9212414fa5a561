"""Data-quality figures of a synced warehouse, from DuckDB alone.

One home for the figures that `debug_and_reset.sh`'s report and the StudentSuccess app's
data-quality panel both show, so the two can never disagree. Counts, ranges and column
names only, never a record's values: the tables hold protected student data.

Works on warehouses written before the connector kept invalid values and rejected records
(no `_hed_invalid_values` column, no `hed_rejected_records` table): those figures are then
None, meaning "not tracked", which differs from 0.
"""

from dataclasses import dataclass
from datetime import datetime

SCHEMA = "tester"
RECORDS_TABLE = "hed_records"
REJECTED_TABLE = "hed_rejected_records"
INVALID_VALUES_COLUMN = "_hed_invalid_values"
# Fivetran's own columns: never part of the data's null counts.
SYSTEM_PREFIX = "_fivetran"


@dataclass(frozen=True)
class Quality:
    """What a user needs to trust (or question) a sync, per the warehouse."""

    rows: int
    students: int | None  # None: the table has no student_id column
    nulls: dict  # column -> NULL count, data columns only, in table order
    invalid: dict | None  # column -> values kept raw in _hed_invalid_values
    rejected: dict | None  # reason -> rows in hed_rejected_records
    last_updated: tuple  # (earliest, latest), (None, None) when empty
    last_synced: datetime | None  # latest _fivetran_synced

    @property
    def invalid_total(self) -> int:
        return sum((self.invalid or {}).values())

    @property
    def rejected_total(self) -> int:
        return sum((self.rejected or {}).values())


def quoted(name: str) -> str:
    """A SQL identifier, safe whatever the API names its fields."""
    return '"' + name.replace('"', '""') + '"'


def qualified(table: str) -> str:
    return f"{SCHEMA}.{quoted(table)}"


def table_columns(con, table: str) -> list:
    """Column names in table order; empty when the table does not exist."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [SCHEMA, table],
    ).fetchall()
    return [name for (name,) in rows]


def read_quality(con, table: str = RECORDS_TABLE) -> Quality:
    """The figures for `table` over an open DuckDB connection (read-only is enough).

    Raises:
        LookupError: the table does not exist (nothing was synced into this file yet).
    """
    columns = table_columns(con, table)
    if not columns:
        raise LookupError(f"{qualified(table)} does not exist")
    source = qualified(table)
    data_columns = [
        name
        for name in columns
        if not name.startswith(SYSTEM_PREFIX) and name != INVALID_VALUES_COLUMN
    ]
    rows = con.execute(f"SELECT count(*) FROM {source}").fetchone()[0]
    return Quality(
        rows=rows,
        students=count_distinct(con, source, "student_id") if "student_id" in columns else None,
        nulls=count_nulls(con, source, data_columns),
        invalid=count_invalid(con, source) if INVALID_VALUES_COLUMN in columns else None,
        rejected=count_rejected(con),
        last_updated=value_range(con, source, "last_updated", columns),
        last_synced=latest(con, source, f"{SYSTEM_PREFIX}_synced", columns),
    )


def count_distinct(con, source: str, column: str) -> int:
    return con.execute(f"SELECT count(DISTINCT {quoted(column)}) FROM {source}").fetchone()[0]


def count_nulls(con, source: str, columns: list) -> dict:
    if not columns:
        return {}
    counts = con.execute(
        "SELECT "
        + ", ".join(f"count(*) - count({quoted(name)})" for name in columns)
        + f" FROM {source}"
    ).fetchone()
    return dict(zip(columns, counts, strict=True))


def count_invalid(con, source: str) -> dict:
    """Values the connector could not convert, by column (the keys of _hed_invalid_values)."""
    rows = con.execute(
        f"SELECT field, count(*) FROM (SELECT unnest(json_keys({quoted(INVALID_VALUES_COLUMN)})) "
        f"AS field FROM {source}) GROUP BY field ORDER BY field"
    ).fetchall()
    return dict(rows)


def count_rejected(con) -> dict | None:
    """Rejected records by reason; None when this warehouse has no rejected-records table."""
    if "reason" not in table_columns(con, REJECTED_TABLE):
        return None
    rows = con.execute(
        f"SELECT reason, count(*) FROM {qualified(REJECTED_TABLE)} GROUP BY reason ORDER BY reason"
    ).fetchall()
    return dict(rows)


def value_range(con, source: str, column: str, columns: list) -> tuple:
    if column not in columns:
        return (None, None)
    return con.execute(
        f"SELECT min({quoted(column)}), max({quoted(column)}) FROM {source}"
    ).fetchone()


def latest(con, source: str, column: str, columns: list) -> datetime | None:
    """The latest value of a TIMESTAMP WITH TIME ZONE column as naive UTC (DuckDB would need
    pytz, which is not installed, to return it with its zone)."""
    if column not in columns:
        return None
    return con.execute(f"SELECT timezone('UTC', max({quoted(column)})) FROM {source}").fetchone()[
        0
    ]
