"""The reports debug_and_reset.sh ends with: sample rows, data quality, operations, state.

Each prints for the user, or raises Failure saying why it cannot. The API key is never
printed, and a record's values only by `sample`, which the script runs only where they may
be shown (FERPA). DuckDB is imported only when a warehouse is read.
"""

import json
import re

from devkit.console import Failure
from devkit.quality import INVALID_VALUES_COLUMN, REJECTED_TABLE, quoted, read_quality
from devkit.sdk_cli import operation_counts

# Colour codes the SDK may write into its output; the operation table is read without them.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")
OPERATIONS = ("Upserts", "Updates", "Deletes", "Truncates", "Schema changes", "Checkpoints")
SAMPLE_COLUMNS = (
    "record_id",
    "student_id",
    "major_code",
    "academic_standing",
    "current_gpa",
    "at_risk_flag",
    "last_updated",
)


def print_table(columns, rows):
    texts = [["NULL" if value is None else str(value) for value in row] for row in rows]
    widths = [
        max([len(column)] + [len(row[i]) for row in texts]) for i, column in enumerate(columns)
    ]
    line = "  ".join("-" * width for width in widths)
    print(
        "  ".join(
            column.ljust(width) for column, width in zip(columns, widths, strict=True)
        ).rstrip()
    )
    print(line)
    for row in texts:
        print(
            "  ".join(text.ljust(width) for text, width in zip(row, widths, strict=True)).rstrip()
        )


def open_table(database, table_name):
    """(read-only connection, qualified table name, its columns); Failure when the warehouse
    cannot be read or the sync created no table."""
    import duckdb

    qualified = f"tester.{quoted(table_name)}"
    try:
        con = duckdb.connect(database, read_only=True)
        described = con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'tester' AND table_name = ? ORDER BY ordinal_position",
            [table_name],
        ).fetchall()
    except duckdb.Error as error:
        raise Failure(f"Cannot read {database}: {error}") from None
    columns = [name for (name,) in described]
    if not columns:
        raise Failure(f"{database} has no table {qualified}: the sync loaded nothing.")
    return con, qualified, columns


def sample(database, table_name, limit):
    """The first `limit` rows by record_id, a few columns wide. These are a record's values:
    the script runs this only for the simulator's records or on explicit request."""
    con, qualified, columns = open_table(database, table_name)
    shown = [name for name in SAMPLE_COLUMNS if name in columns] or columns[:6]
    order = "record_id" if "record_id" in columns else columns[0]
    query = (
        f"SELECT {', '.join(map(quoted, shown))} FROM {qualified} "
        f"ORDER BY {quoted(order)} LIMIT {int(limit)}"
    )
    print(f"Query: {query}\n")
    print_table(shown, con.execute(query).fetchall())
    print(f"({len(shown)} of {len(columns)} columns shown)")


def quality(database, table_name):
    """The data-quality summary of the synced table: counts and column names only."""
    con, qualified, columns = open_table(database, table_name)
    print_quality(con, qualified, table_name, columns)


def print_counts(title, counts):
    """A titled list of counts (by column or reason), or "none"; None means not tracked."""
    if counts is None:
        return
    if not counts:
        print(f"  {title}: none")
        return
    print(f"  {title}: {sum(counts.values()):,}")
    for name, count in counts.items():
        print(f"    {name}: {count:,}")


def print_quality(con, qualified, table_name, columns):
    """The data-quality summary, from devkit/quality.py's figures (the StudentSuccess app's
    data-quality panel shows the same ones). Counts and column names only, never values."""
    figures = read_quality(con, table_name)
    rows = figures.rows
    print("\nData quality")
    print(f"  Rows:               {rows:,}")
    if figures.students is not None:
        print(f"  Distinct students:  {figures.students:,}")
    with_nulls = [(name, count) for name, count in figures.nulls.items() if count]
    if with_nulls:
        print("  Null values:")
        for name, count in with_nulls:
            print(f"    {name}: {count:,}")
    else:
        print("  Null values:        none")
    print_counts(f"Invalid values kept raw ({INVALID_VALUES_COLUMN}), by column", figures.invalid)
    print_counts(f"Rejected records ({REJECTED_TABLE}), by reason", figures.rejected)
    if "at_risk_flag" in columns:
        at_risk = con.execute(
            f"SELECT count(*) FILTER (at_risk_flag) FROM {qualified}"
        ).fetchone()[0]
        share = 100 * at_risk / rows if rows else 0
        print(f"  At risk:            {at_risk:,} of {rows:,} ({share:.1f}%)")
    low, high = figures.last_updated
    if "last_updated" in columns:
        print(f"  last_updated range: {low} to {high}")


def summary(log_path):
    """The operation counts of the debug run whose output is in `log_path`."""
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        found = operation_counts(ANSI_ESCAPE.sub("", handle.read()))
    if not all(name in found for name in OPERATIONS):
        raise Failure(
            "The debug output has no operation summary table (did the SDK's format change?)."
        )
    print("  Operation       | Count")
    print("  ----------------+--------")
    for name in OPERATIONS:
        print(f"  {name:<15} | {found[name]}")


def state(path):
    """The state the next sync starts from (a cursor: no record's values)."""
    try:
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
    except FileNotFoundError:
        raise Failure(f"No state was saved ({path} is missing).") from None
    except ValueError as error:
        raise Failure(f"{path} is not valid JSON ({error}).") from None
    print(f"Next sync state: {json.dumps(saved)}")
