"""Everything the StudentSuccess preview reads from the warehouse: DuckDB and pandas only.

Importable without Streamlit, so every figure the page shows is unit-testable. The warehouse
is opened read-only for one rerun and closed before anything is drawn: `fivetran debug` needs
the file's write lock, and a connection held across reruns would make the next sync fail.
Figures are computed by DuckDB over the typed columns the connector declares (real
timestamps, so "by enrollment month" groups months, not strings). The data-quality figures
come from devkit.quality, shared with debug_and_reset.sh's report so the two never disagree.

The KPI tiles and the at-risk worklist come from the dbt marts (transform/, built into schema
main by ./build_models.sh) when they are there and as new as the last sync, so the preview
shows the very figures the models give in production; otherwise they are computed here, by
the same definitions, and the page says how to build the marts.
"""

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from devkit import quality

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_WAREHOUSE = REPO_ROOT / "files" / "warehouse.db"
# What creates a warehouse, as the README's quickstart runs it.
SYNC_COMMAND = "./debug_and_reset.sh --local --yes"
RECORDS = quality.qualified(quality.RECORDS_TABLE)
RECORDS_NAME = f"{quality.SCHEMA}.{quality.RECORDS_TABLE}"  # as messages name it
REJECTED_NAME = f"{quality.SCHEMA}.{quality.REJECTED_TABLE}"

# The StudentSuccess app's targets (hands-on lab), shown beside each KPI tile.
GPA_TARGET = 3.0
COMPLETION_TARGET = 0.85
ENGAGEMENT_TARGET = 70.0
AT_RISK_BASELINE = 0.30

# Quarter grade points: 16 bars over the 0-4 scale.
GPA_BIN_WIDTH = 0.25
GPA_SCALE_MAX = 4.0
# Altair refuses to embed more rows than this in a chart (its MaxRowsError): larger tables
# are drawn from a repeatable random sample of this size.
SCATTER_SAMPLE_ROWS = 5000
SAMPLE_SEED = 42
EXPLORER_PAGE_ROWS = 25
# Best standing first; a standing the API adds later is drawn after these.
STANDING_ORDER = ("Dean's List", "Good Standing", "Academic Warning", "Academic Probation")
# The dbt marts the tiles and the worklist are read from, where ./build_models.sh builds them.
BUILD_COMMAND = "./build_models.sh"
MARTS_SCHEMA = "main"
KPI_MART = "hed__kpis"
WORKLIST_MART = "hed__at_risk_worklist"
MARTS = (KPI_MART, WORKLIST_MART)
# DuckDB's IOException text when another process (a running sync) holds the write lock.
LOCK_ERROR_TEXT = "Could not set lock"

# The columns the page reads and the kind of type each must have: a warehouse from a
# connector that loaded everything as text would draw wrong charts, so it is refused.
NUMERIC, TIMESTAMP, BOOLEAN, TEXT = "a number", "a timestamp", "a boolean", "text"
REQUIRED_KINDS = {
    "record_id": TEXT,
    "student_id": TEXT,
    "academic_standing": TEXT,
    "major_code": TEXT,
    "advisor_id": TEXT,
    "enrollment_date": TIMESTAMP,
    "last_login_date": TIMESTAMP,
    "last_updated": TIMESTAMP,
    "current_gpa": NUMERIC,
    "course_completion_rate": NUMERIC,
    "engagement_score": NUMERIC,
    "financial_aid_amount": NUMERIC,
    "intervention_count": NUMERIC,
    "at_risk_flag": BOOLEAN,
}
NUMERIC_TYPE_PREFIXES = (
    "DOUBLE",
    "FLOAT",
    "REAL",
    "DECIMAL",
    "BIGINT",
    "INTEGER",
    "SMALLINT",
    "TINYINT",
    "HUGEINT",
    "UBIGINT",
    "UINTEGER",
    "USMALLINT",
    "UTINYINT",
)
# Columns of the at-risk worklist, in the order an advisor reads them.
WORKLIST_COLUMNS = (
    "student_id",
    "major_code",
    "advisor_id",
    "academic_standing",
    "current_gpa",
    "engagement_score",
    "intervention_count",
    "last_login_date",
    "last_updated",
)


class UnavailableError(Exception):
    """The warehouse cannot be shown; `state` names why and the message says what to do.

    States: missing, locked, unreadable, no table, untyped, empty.
    """

    def __init__(self, state: str, message: str) -> None:
        super().__init__(message)
        self.state = state
        self.message = message


@dataclass(frozen=True)
class Kpis:
    """The four tiles; None when no row has a value for that column."""

    avg_gpa: float | None
    avg_completion: float | None  # a fraction: 0.85 is 85%
    avg_engagement: float | None
    at_risk_share: float | None  # a fraction of the records whose flag is known


@dataclass(frozen=True)
class Dashboard:
    """One rerun's worth of figures, read in one short read-only session."""

    quality: quality.Quality
    column_types: dict  # column -> DuckDB type, in table order
    kpis: Kpis
    gpa_histogram: pd.DataFrame
    engagement_by_standing: pd.DataFrame
    completion_by_month: pd.DataFrame
    at_risk_split: pd.DataFrame
    aid_vs_gpa: pd.DataFrame
    aid_vs_gpa_total: int  # points before sampling
    gpa_by_major: pd.DataFrame
    summary: pd.DataFrame
    worklist: pd.DataFrame
    advisors: list
    majors: list
    explorer_page: int  # the page read, clamped to the pages there are
    explorer_pages: int
    explorer_rows: pd.DataFrame
    # None when the tiles and the worklist were read from the dbt marts; else why not, and
    # what to run.
    marts_note: str | None = None


def shown_path(path: Path) -> str:
    """The path as a user of this repository would type it."""
    resolved = path.resolve()
    with contextlib.suppress(ValueError):
        return str(resolved.relative_to(REPO_ROOT))
    return str(resolved)


def literal(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


@contextlib.contextmanager
def open_warehouse(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, closed on exit; every DuckDB failure becomes UnavailableError."""
    where = shown_path(path)
    if not path.is_file():
        raise UnavailableError(
            "missing",
            f"There is no warehouse at {where} yet. Create it with a debug sync from the "
            f"local simulator: {SYNC_COMMAND}",
        )
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as error:
        if LOCK_ERROR_TEXT in str(error):
            raise UnavailableError(
                "locked",
                f"{where} is locked by a running sync (fivetran debug holds it while it "
                "writes). Try again when the sync has finished.",
            ) from None
        raise UnavailableError("unreadable", f"Cannot open {where}: {first_line(error)}") from None
    try:
        yield con
    except duckdb.Error as error:
        raise UnavailableError("unreadable", f"Cannot read {where}: {first_line(error)}") from None
    finally:
        con.close()


def read_dashboard(path: Path, explorer_page: int = 1) -> Dashboard:
    """Every figure the page shows, or UnavailableError saying why there are none."""
    with open_warehouse(path) as con:
        types = column_types(con)
        if not types:
            raise UnavailableError(
                "no table",
                f"{shown_path(path)} has no table {RECORDS_NAME}: no sync has loaded records into "
                f"it. Run {SYNC_COMMAND}",
            )
        figures = quality.read_quality(con)
        if figures.rows == 0:
            raise UnavailableError("empty", empty_message(figures))
        check_types(types)
        pages = max(1, math.ceil(figures.rows / EXPLORER_PAGE_ROWS))
        page = min(max(1, explorer_page), pages)
        points = count_aid_vs_gpa(con)
        marts_note = check_marts(con)
        from_marts = marts_note is None
        return Dashboard(
            quality=figures,
            column_types=types,
            kpis=read_kpis_mart(con) if from_marts else read_kpis(con),
            gpa_histogram=read_gpa_histogram(con),
            engagement_by_standing=read_engagement_by_standing(con),
            completion_by_month=read_completion_by_month(con),
            at_risk_split=read_at_risk_split(con),
            aid_vs_gpa=read_aid_vs_gpa(con),
            aid_vs_gpa_total=points,
            gpa_by_major=read_gpa_by_major(con),
            summary=read_summary(con, types),
            worklist=read_worklist_mart(con) if from_marts else read_worklist(con),
            advisors=distinct_values(con, "advisor_id"),
            majors=distinct_values(con, "major_code"),
            explorer_page=page,
            explorer_pages=pages,
            explorer_rows=read_explorer_page(con, types, page),
            marts_note=marts_note,
        )


def empty_message(figures: quality.Quality) -> str:
    message = f"{RECORDS_NAME} is empty: the last sync loaded no records."
    if figures.rejected_total:
        message += (
            f" It rejected {figures.rejected_total:,} items that had no usable record_id "
            f"(see {REJECTED_NAME})."
        )
    return message


def column_types(con: duckdb.DuckDBPyConnection) -> dict:
    """Column -> DuckDB type of the records table, in table order; empty when it is absent."""
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
        [quality.SCHEMA, quality.RECORDS_TABLE],
    ).fetchall()
    return dict(rows)


def kind_of(duckdb_type: str) -> str:
    if duckdb_type.startswith(NUMERIC_TYPE_PREFIXES):
        return NUMERIC
    if duckdb_type.startswith("TIMESTAMP") or duckdb_type == "DATE":
        return TIMESTAMP
    if duckdb_type == "BOOLEAN":
        return BOOLEAN
    return TEXT


def check_types(types: dict) -> None:
    """Refuse a table whose columns lack the types the charts need (e.g. all text)."""
    problems = []
    for column, kind in REQUIRED_KINDS.items():
        if column not in types:
            problems.append(f"{column} is missing")
        elif kind_of(types[column]) != kind:
            problems.append(f"{column} is {types[column]}, not {kind}")
    if problems:
        raise UnavailableError(
            "untyped",
            f"{RECORDS_NAME} does not have the typed columns this preview needs ("
            + "; ".join(problems)
            + f"). It was probably written by an older connector: re-sync with {SYNC_COMMAND}",
        )


def check_marts(con: duckdb.DuckDBPyConnection) -> str | None:
    """None when the marts exist and were built after the last sync; else the note to show.

    A mart older than the last sync would show figures the table no longer has, so then the
    page computes them itself rather than show stale ones.
    """
    names = ", ".join(f"{MARTS_SCHEMA}.{name}" for name in MARTS)
    present = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
        "AND table_name IN (SELECT unnest(?::VARCHAR[]))",
        [MARTS_SCHEMA, list(MARTS)],
    ).fetchone()[0]
    if present < len(MARTS):
        return (
            "The KPI tiles and the at-risk worklist are computed by this preview: the dbt "
            f"models ({names}) are not built. Run {BUILD_COMMAND} to build them, and the "
            "page shows the figures the models give in production."
        )
    # Compared in SQL: fetching a time-zone timestamp into Python would need pytz.
    (current,) = con.execute(
        f"SELECT (SELECT max(last_synced_at) FROM {MARTS_SCHEMA}.{KPI_MART})"
        f" IS NOT DISTINCT FROM (SELECT max(_fivetran_synced) FROM {RECORDS})"
    ).fetchone()
    if not current:
        return (
            "The KPI tiles and the at-risk worklist are computed by this preview: the dbt "
            f"models ({names}) are older than the last sync. Run {BUILD_COMMAND} to "
            "rebuild them."
        )
    return None


def read_kpis_mart(con: duckdb.DuckDBPyConnection) -> Kpis:
    """The tiles as the dbt model hed__kpis computed them."""
    row = con.execute(
        "SELECT avg_gpa, avg_completion_rate, avg_engagement_score, at_risk_share"
        f" FROM {MARTS_SCHEMA}.{KPI_MART}"
    ).fetchone()
    return Kpis(*(None if value is None else float(value) for value in row))


def read_worklist_mart(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The worklist of the dbt model, its columns named as the page shows them."""
    return con.execute(
        "SELECT student_id, major_code, advisor_id, academic_standing, current_gpa,"
        " engagement_score, intervention_count, last_login_at AS last_login_date,"
        " last_updated_at AS last_updated"
        f" FROM {MARTS_SCHEMA}.{WORKLIST_MART} ORDER BY priority_rank"
    ).df()


def read_kpis(con: duckdb.DuckDBPyConnection) -> Kpis:
    row = con.execute(
        f"SELECT avg(current_gpa), avg(course_completion_rate), avg(engagement_score), "
        f"avg(CAST(at_risk_flag AS INTEGER)) FROM {RECORDS}"
    ).fetchone()
    return Kpis(*row)


def read_gpa_histogram(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Records per GPA band; a GPA of exactly 4.0 counts in the top band."""
    top_band = GPA_SCALE_MAX - GPA_BIN_WIDTH
    return con.execute(
        f"SELECT band AS gpa_from, band + $width AS gpa_to, count(*) AS records FROM ("
        f"  SELECT least(floor(current_gpa / $width) * $width, $top) AS band FROM {RECORDS}"
        f"  WHERE current_gpa IS NOT NULL"
        f") GROUP BY band ORDER BY band",
        {"width": GPA_BIN_WIDTH, "top": top_band},
    ).df()


def read_engagement_by_standing(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The five-number summary per standing, so the box plot embeds 4 rows, not every record."""
    frame = con.execute(
        f"SELECT academic_standing AS standing, count(*) AS records,"
        f" min(engagement_score) AS low,"
        f" quantile_cont(engagement_score, 0.25) AS q1,"
        f" median(engagement_score) AS median,"
        f" quantile_cont(engagement_score, 0.75) AS q3,"
        f" max(engagement_score) AS high"
        f" FROM {RECORDS}"
        f" WHERE academic_standing IS NOT NULL AND engagement_score IS NOT NULL"
        f" GROUP BY academic_standing"
    ).df()
    return frame.sort_values("standing", key=standing_rank, ignore_index=True)


def standing_order(standings: Sequence[str]) -> list:
    """The known standings best first, then any others alphabetically."""
    known = [name for name in STANDING_ORDER if name in standings]
    return known + sorted(set(standings) - set(STANDING_ORDER))


def standing_rank(standings: pd.Series) -> pd.Series:
    order = standing_order(list(standings))
    return standings.map(order.index)


def read_completion_by_month(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute(
        f"SELECT date_trunc('month', enrollment_date) AS enrollment_month,"
        f" avg(course_completion_rate) AS completion_rate,"
        f" count(course_completion_rate) AS records"
        f" FROM {RECORDS}"
        f" WHERE enrollment_date IS NOT NULL AND course_completion_rate IS NOT NULL"
        f" GROUP BY enrollment_month ORDER BY enrollment_month"
    ).df()


def read_at_risk_split(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Records at risk, not at risk, and (only if any) with no flag; with their shares."""
    frame = con.execute(
        f"SELECT CASE WHEN at_risk_flag THEN 'At risk' WHEN NOT at_risk_flag THEN 'Not at risk'"
        f" ELSE 'Unknown' END AS status, count(*) AS records"
        f" FROM {RECORDS} GROUP BY status ORDER BY status"
    ).df()
    frame["share"] = frame["records"] / frame["records"].sum()
    return frame


def count_aid_vs_gpa(con: duckdb.DuckDBPyConnection) -> int:
    return con.execute(
        f"SELECT count(*) FROM {RECORDS}"
        f" WHERE current_gpa IS NOT NULL AND financial_aid_amount IS NOT NULL"
    ).fetchone()[0]


def read_aid_vs_gpa(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One point per record, at most SCATTER_SAMPLE_ROWS of them (a repeatable sample)."""
    return con.execute(
        f"SELECT * FROM ("
        f"  SELECT current_gpa, CAST(financial_aid_amount AS DOUBLE) AS financial_aid_amount,"
        f"  engagement_score FROM {RECORDS}"
        f"  WHERE current_gpa IS NOT NULL AND financial_aid_amount IS NOT NULL"
        f") USING SAMPLE reservoir({SCATTER_SAMPLE_ROWS} ROWS) REPEATABLE ({SAMPLE_SEED})"
    ).df()


def read_gpa_by_major(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute(
        f"SELECT major_code, avg(current_gpa) AS avg_gpa, count(current_gpa) AS records"
        f" FROM {RECORDS} WHERE major_code IS NOT NULL AND current_gpa IS NOT NULL"
        f" GROUP BY major_code ORDER BY avg_gpa DESC, major_code"
    ).df()


def numeric_columns(types: dict) -> list:
    """Data columns holding numbers, in table order (Fivetran's and ours excluded)."""
    return [
        name
        for name, duckdb_type in types.items()
        if not name.startswith("_") and kind_of(duckdb_type) == NUMERIC
    ]


def read_summary(con: duckdb.DuckDBPyConnection, types: dict) -> pd.DataFrame:
    """count, mean, std, min, quartiles and max per numeric column (pandas' describe())."""
    selects = [
        f"SELECT {position} AS position, {literal(name)} AS column_name,"
        f" count(v) AS count, avg(v) AS mean, stddev_samp(v) AS std, min(v) AS min,"
        f" quantile_cont(v, 0.25) AS p25, median(v) AS p50, quantile_cont(v, 0.75) AS p75,"
        f" max(v) AS max"
        f" FROM (SELECT CAST({quality.quoted(name)} AS DOUBLE) AS v FROM {RECORDS})"
        for position, name in enumerate(numeric_columns(types))
    ]
    frame = con.execute(" UNION ALL ".join(selects) + " ORDER BY position").df()
    frame = frame.drop(columns="position").set_index("column_name")
    frame.index.name = None
    return frame.rename(columns={"p25": "25%", "p50": "50%", "p75": "75%"})


def read_worklist(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """At-risk students by their latest record (by last_updated), lowest GPA first."""
    columns = ", ".join(WORKLIST_COLUMNS)
    return con.execute(
        f"WITH latest AS ("
        f"  SELECT * FROM {RECORDS} WHERE student_id IS NOT NULL"
        f"  QUALIFY row_number() OVER ("
        f"    PARTITION BY student_id ORDER BY last_updated DESC NULLS LAST, record_id DESC"
        f"  ) = 1"
        f") SELECT {columns} FROM latest WHERE at_risk_flag"
        f" ORDER BY current_gpa NULLS LAST, engagement_score NULLS LAST, student_id"
    ).df()


def filter_worklist(
    worklist: pd.DataFrame, advisors: Sequence[str] = (), majors: Sequence[str] = ()
) -> pd.DataFrame:
    """Rows of the chosen advisors and majors; an empty choice keeps every value."""
    keep = pd.Series(True, index=worklist.index)
    if advisors:
        keep &= worklist["advisor_id"].isin(advisors)
    if majors:
        keep &= worklist["major_code"].isin(majors)
    return worklist[keep].reset_index(drop=True)


def distinct_values(con: duckdb.DuckDBPyConnection, column: str) -> list:
    rows = con.execute(
        f"SELECT DISTINCT {quality.quoted(column)} FROM {RECORDS}"
        f" WHERE {quality.quoted(column)} IS NOT NULL ORDER BY 1"
    ).fetchall()
    return [value for (value,) in rows]


def read_explorer_page(con: duckdb.DuckDBPyConnection, types: dict, page: int) -> pd.DataFrame:
    """One page of whole records, latest first; time-zone columns shown in UTC."""
    columns = ", ".join(
        f"timezone('UTC', {quality.quoted(name)}) AS {quality.quoted(name)}"
        if duckdb_type == "TIMESTAMP WITH TIME ZONE"
        else quality.quoted(name)
        for name, duckdb_type in types.items()
    )
    return con.execute(
        f"SELECT {columns} FROM {RECORDS}"
        f" ORDER BY last_updated DESC NULLS LAST, record_id LIMIT $limit OFFSET $offset",
        {"limit": EXPLORER_PAGE_ROWS, "offset": (page - 1) * EXPLORER_PAGE_ROWS},
    ).df()
