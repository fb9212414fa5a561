"""The Python half of debug_and_reset.sh: configuration checks, simulator changes, reports.

Run as `python -m devkit.debug_report COMMAND ARGS...` from the repository root, with the
interpreter that has the SDK (and so DuckDB). Messages for the user are printed here; a
non-zero exit means the step failed. The API key is never printed, and a record's values
only by `sample`, which the script runs only where they may be shown (FERPA).
"""

import json
import re
import sys
import urllib.request

from devkit.quality import INVALID_VALUES_COLUMN, REJECTED_TABLE, read_quality
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


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def load_config(path):
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
    except OSError as error:
        fail(f"Cannot read the configuration {path}: {error.strerror}.")
    except ValueError as error:
        fail(f"The configuration {path} is not valid JSON ({error}).")
    if not isinstance(config, dict):
        fail(f"The configuration {path} must be a JSON object.")
    bad = sorted(key for key, value in config.items() if not isinstance(value, str))
    if bad:
        fail(f"In {path}, every value must be a string (in quotes); not: {', '.join(bad)}.")
    return config


def table():
    import connector

    print(connector.schema({})[0]["table"])


def check_config(path, script):
    """Refuse a configuration the connector would refuse, with how to fix it."""
    import connector

    try:
        connector.validate_configuration(load_config(path))
    except ValueError as error:
        fail(
            f"{path}: {error}\n"
            f"  - Fix it (values are strings), or pass --config PATH to another file, or\n"
            f"  - run against the local simulator instead: {script} --local"
        )


def local_config(source, target, url):
    from hed_simulator import DEMO_API_KEY

    config = load_config(source) if source else {}
    config.update({"api_key": DEMO_API_KEY, "base_url": url})
    with open(target, "w", encoding="utf-8") as handle:
        json.dump(config, handle)


def changes(url, new, updated):
    from hed_simulator import DEMO_API_KEY

    request = urllib.request.Request(
        url + "/_simulator/changes",
        data=json.dumps({"new": int(new), "updated": int(updated)}).encode(),
        headers={"x-api-key": DEMO_API_KEY, "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.load(response)
    except (OSError, ValueError) as error:
        fail(f"The simulator did not make the changes: {error}")
    print(f"The simulator made {len(body['new'])} new and {len(body['updated'])} updated records.")


def quoted(name):
    return '"' + name.replace('"', '""') + '"'


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
    """(read-only connection, qualified table name, its columns); fails with a message when
    the warehouse cannot be read or the sync created no table."""
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
        fail(f"Cannot read {database}: {error}")
    columns = [name for (name,) in described]
    if not columns:
        fail(f"{database} has no table {qualified}: the sync loaded nothing.")
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
    with open(log_path, encoding="utf-8", errors="replace") as handle:
        found = operation_counts(ANSI_ESCAPE.sub("", handle.read()))
    if not all(name in found for name in OPERATIONS):
        fail("The debug output has no operation summary table (did the SDK's format change?).")
    print("  Operation       | Count")
    print("  ----------------+--------")
    for name in OPERATIONS:
        print(f"  {name:<15} | {found[name]}")


def state(path):
    try:
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
    except FileNotFoundError:
        fail(f"No state was saved ({path} is missing).")
    except ValueError as error:
        fail(f"{path} is not valid JSON ({error}).")
    print(f"Next sync state: {json.dumps(saved)}")


COMMANDS = {
    "table": table,
    "check-config": check_config,
    "local-config": local_config,
    "changes": changes,
    "sample": sample,
    "quality": quality,
    "summary": summary,
    "state": state,
}


def main():
    COMMANDS[sys.argv[1]](*sys.argv[2:])


if __name__ == "__main__":
    main()
