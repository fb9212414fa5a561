"""build_models.sh's steps: check the warehouse, then `dbt build` the transform/ project over it.

Runs in two interpreters. First in whatever Python build_models.sh found, with the stdlib
only: it parses the options (so --help never waits for an install), creates or updates
transform/.venv (devkit/transform.py), and re-executes this file in that venv. There, with
the DuckDB dbt uses, it checks the warehouse before dbt sees it, so that a missing file, a
file no sync has filled, the lab connector's untyped columns or a running sync's lock each
get one clear sentence instead of a dbt stack of errors; then it runs `dbt build` with a
generated profiles.yml and prints what was built and tested, from dbt's run_results.json.
"""

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

if not __package__:
    # Run by path: sys.path[0] is devkit/; devkit is imported from the repository instead.
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from devkit import REPO_ROOT, arguments, console, processes, transform

SCRIPT = "./build_models.sh"
SYNC_COMMAND = "./debug_and_reset.sh --local --yes"
DEFAULT_WAREHOUSE = REPO_ROOT / "files" / "warehouse.db"
SOURCE_SCHEMA = "tester"  # where `fivetran debug` writes the connector's tables
RECORDS_TABLE = "hed_records"
REJECTED_TABLE = "hed_rejected_records"
# DuckDB's IOException text when another process (a running sync) holds the write lock.
LOCK_ERROR_TEXT = "Could not set lock"
# A full build of the simulator's 600 records takes seconds; this only stops a hung one.
BUILD_TIMEOUT_S = 1800
# Exit codes: dbt's own 1 (a model or an error-severity test failed) and 2 (dbt could not
# run) are kept; a warehouse that cannot be built over is 3, so a caller can tell the two.
EXIT_NOT_READY = 3
# dbt's test results, in the order the summary names them.
TEST_STATUSES = ("pass", "warn", "fail", "error", "skipped")

TIMESTAMP, DECIMAL, NUMBER, BOOLEAN, TEXT, JSON = (
    "a timestamp",
    "an exact DECIMAL",
    "a number",
    "a boolean",
    "text",
    "JSON",
)
# The type each column the models read must have. The lab connector declares no column
# types, so its warehouse has timestamps as VARCHAR and money as DOUBLE: models over it would
# compare text with dates and sum money in floating point.
REQUIRED_KINDS = {
    RECORDS_TABLE: {
        **dict.fromkeys(("record_id", "student_id", "academic_standing", "major_code"), TEXT),
        "advisor_id": TEXT,
        **dict.fromkeys(("enrollment_date", "last_login_date", "last_updated"), TIMESTAMP),
        **dict.fromkeys(
            (
                "current_gpa",
                "avg_assignment_score",
                "course_completion_rate",
                "writing_quality_score",
                "engagement_score",
                "credit_hours_attempted",
                "credit_hours_earned",
                "total_course_views",
                "assignment_submissions",
                "discussion_posts",
                "plagiarism_incidents",
                "intervention_count",
            ),
            NUMBER,
        ),
        "at_risk_flag": BOOLEAN,
        "financial_aid_amount": DECIMAL,
        "_hed_invalid_values": JSON,
        "_fivetran_deleted": BOOLEAN,
        "_fivetran_synced": TIMESTAMP,
    },
    REJECTED_TABLE: {"rejection_id": TEXT, "reason": TEXT, "_fivetran_synced": TIMESTAMP},
}
NUMBER_TYPE_PREFIXES = ("DOUBLE", "FLOAT", "REAL", "DECIMAL", "BIGINT", "INTEGER", "HUGEINT")

DESCRIPTION = f"""\
Builds and tests the dbt project in transform/ (staging, hed__students, the at-risk
worklist, the KPI tiles and the enrollment cohorts) over the debug warehouse that
{SYNC_COMMAND} writes: sources in schema {SOURCE_SCHEMA}, models into schema
{transform.LOCAL_TARGET_SCHEMA} of the same file, where ./student_success.sh reads them.
Then prints each model built and each test's result."""
EPILOG = f"""\
The first run creates transform/.venv and installs transform/requirements.txt (dbt-core and
its DuckDB, Postgres and Snowflake adapters) into it: about two minutes, once. The
connector's .venv is never changed. dbt's own log: transform/logs/dbt.log.
Exit codes: 0 built, every test passed or only warned; 1 a model failed or a test failed;
2 a bad option, or dbt could not run; {EXIT_NOT_READY} the warehouse cannot be built over
(missing, no tables, untyped columns, locked by a running sync); 130, 143 or 129 stopped."""


def parse_arguments(argv: list):
    parser = arguments.ArgumentParser(f"{SCRIPT} [options]", DESCRIPTION, EPILOG)
    parser.add_argument(
        "--db",
        metavar="PATH",
        type=arguments.value,
        help="DuckDB warehouse to build over (default: files/warehouse.db).",
    )
    parser.add_argument(
        "--full-refresh",
        action="store_true",
        help="Rebuild the incremental models from scratch instead of from what changed.",
    )
    return parser.parse(argv)


def warehouse_path(options) -> Path:
    return Path(options.db).resolve() if options.db else DEFAULT_WAREHOUSE


def shown_path(path: Path) -> str:
    """The path as a user of this repository would type it."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


# ---------------------------------------------------------------------------------------
# The warehouse (run inside transform/.venv, which has DuckDB)


class NotReady(console.Failure):
    """The warehouse cannot be built over; the message says why and what to do."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_NOT_READY)


def locked_message(where: str) -> str:
    return (
        f"{where} is locked by a running sync (fivetran debug holds it while it writes). "
        f"Run {SCRIPT} again when the sync has finished."
    )


def read_column_types(path: Path) -> dict:
    """table -> {column: DuckDB type} of the source tables, read in a short read-only session."""
    import duckdb  # transform/.venv only: the first, stdlib-only stage never gets here

    where = shown_path(path)
    if not path.is_file():
        raise NotReady(
            f"There is no warehouse at {where} yet. Create it with a debug sync from the "
            f"local simulator: {SYNC_COMMAND}"
        )
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as error:
        if LOCK_ERROR_TEXT in str(error):
            raise NotReady(locked_message(where)) from None
        raise NotReady(f"Cannot open {where}: {first_line(error)}") from None
    try:
        rows = con.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? ORDER BY table_name, ordinal_position",
            [SOURCE_SCHEMA],
        ).fetchall()
    finally:
        con.close()
    types = {}
    for table, column, data_type in rows:
        types.setdefault(table, {})[column] = data_type
    return types


def first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def kind_of(duckdb_type: str) -> str:
    if duckdb_type.startswith("DECIMAL"):
        return DECIMAL
    if duckdb_type.startswith("TIMESTAMP"):
        return TIMESTAMP
    for prefix, kind in (("BOOLEAN", BOOLEAN), ("JSON", JSON), ("VARCHAR", TEXT)):
        if duckdb_type.startswith(prefix):
            return kind
    return NUMBER if duckdb_type.startswith(NUMBER_TYPE_PREFIXES) else duckdb_type


def fits(kind: str, wanted: str) -> bool:
    """Whether a column of `kind` serves where `wanted` is needed (a DECIMAL is a number)."""
    return kind == wanted or (wanted == NUMBER and kind == DECIMAL)


def type_problems(types: dict) -> list:
    """What is missing or mistyped, as "table.column is VARCHAR, not a timestamp"."""
    problems = []
    for table, wanted_kinds in REQUIRED_KINDS.items():
        if table not in types:
            problems.append(f"{SOURCE_SCHEMA}.{table} is missing")
            continue
        columns = types[table]
        for column, wanted in wanted_kinds.items():
            if column not in columns:
                problems.append(f"{table}.{column} is missing")
            elif not fits(kind_of(columns[column]), wanted):
                problems.append(f"{table}.{column} is {columns[column]}, not {wanted}")
    return problems


def check_warehouse(path: Path) -> None:
    """Refuse, with what to do, a warehouse the models cannot be built over."""
    types = read_column_types(path)
    where = shown_path(path)
    missing = [table for table in REQUIRED_KINDS if table not in types]
    if RECORDS_TABLE in missing:
        names = " and ".join(f"{SOURCE_SCHEMA}.{table}" for table in missing)
        raise NotReady(
            f"{where} has no table {names}: no sync of this connector has loaded it. "
            f"Run {SYNC_COMMAND}"
        )
    problems = type_problems(types)
    if problems:
        raise NotReady(
            f"{where} does not have the typed columns the models need ("
            + "; ".join(problems)
            + "). It was probably written by the lab's or an older connector, which declares "
            f"no column types: re-sync with {SYNC_COMMAND}"
        )


# ---------------------------------------------------------------------------------------
# dbt


def target_path() -> Path:
    """Where dbt writes run_results.json: DBT_TARGET_PATH when set (the tests set it)."""
    return Path(os.environ.get("DBT_TARGET_PATH") or transform.PROJECT_DIR / "target")


def run_build(path: Path, full_refresh: bool, workdir: Path) -> int:
    """`dbt build` over `path`; dbt's exit code. Its output goes to a file and is shown only
    when dbt could not say what it did (run_results.json has the results)."""
    profiles = transform.write_profiles(workdir, transform.duckdb_profile(path))
    command = transform.dbt_command("build", profiles, *(["--full-refresh"] * full_refresh))
    results = target_path() / "run_results.json"
    results.unlink(missing_ok=True)
    output = workdir / "dbt-output.txt"
    console.ok(f"dbt build over {shown_path(path)} ({SOURCE_SCHEMA} -> main)")
    with (
        output.open("wb") as copy,
        processes.supervised(
            command, transform.PROJECT_DIR, transform.dbt_env(), stdout=copy, own_session=True
        ) as process,
    ):
        try:
            status = process.wait(BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise console.Failure(
                f"dbt build ran for more than {BUILD_TIMEOUT_S} s and was stopped; its log: "
                "transform/logs/dbt.log",
                2,
            ) from None
    text = output.read_text(errors="replace")
    if LOCK_ERROR_TEXT in text:
        raise NotReady(locked_message(shown_path(path)))
    if not results.is_file():
        print(text[-4000:], end="")
        raise console.Failure("dbt could not build the project (its output is above).", 2)
    report_results(transform.read_run_results(target_path()), read_materializations(), path)
    return status


def node_name(result: dict) -> str:
    """model.hed.hed__kpis -> hed__kpis; a test keeps its whole generated name."""
    return result["unique_id"].split(".")[2]


def read_materializations() -> dict:
    """unique_id -> materialization (view, table, incremental) from dbt's manifest.json."""
    manifest = target_path() / "manifest.json"
    if not manifest.is_file():
        return {}
    nodes = json.loads(manifest.read_text())["nodes"]
    return {uid: node["config"].get("materialized", "") for uid, node in nodes.items()}


def count_rows(path: Path, models: list) -> dict:
    """Rows in each model built, read back once dbt has let go of the file."""
    import duckdb  # transform/.venv only

    counts = {}
    try:
        with duckdb.connect(str(path), read_only=True) as con:
            for name in models:
                table = f"{transform.LOCAL_TARGET_SCHEMA}.{name}"
                counts[name] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except duckdb.Error as error:  # a sync that started once dbt was done holds the file
        console.note(f"row counts not shown: {first_line(error)}")
        return {}
    return counts


def report_results(results: list, materializations: dict, path: Path) -> None:
    """Each model built (materialization, rows) and the tests: passed, warned, failed."""
    models = [r for r in results if r["unique_id"].startswith("model.")]
    tests = [r for r in results if r["unique_id"].startswith("test.")]
    built = [node_name(r) for r in models if r["status"] == "success"]
    rows = count_rows(path, built) if built else {}
    skipped = []
    for result in models:
        name = node_name(result)
        kind = materializations.get(result["unique_id"], "model")
        shown = f"{transform.LOCAL_TARGET_SCHEMA}.{name} ({kind})"
        if result["status"] == "success":
            count = rows.get(name)
            counted = "" if count is None else f": {count:,} {'row' if count == 1 else 'rows'}"
            console.ok(f"built {shown}{counted}")
        elif result["status"] == "skipped":
            skipped.append(name)
        else:
            console.err(f"{shown} {result['status']}: {result.get('message') or ''}")
    if skipped:
        console.note(
            "not built, as something they depend on failed (they keep what the last build "
            f"made): {', '.join(skipped)}"
        )
    for result in tests:
        if result["status"] == "warn":
            console.note(f"test {node_name(result)} warned: {result.get('message') or ''}")
        elif result["status"] not in ("pass", "skipped"):
            console.err(f"test {node_name(result)} {result['status']}: {result.get('message')}")
    counts = {status: sum(r["status"] == status for r in tests) for status in TEST_STATUSES}
    summary = ", ".join(f"{count} {status}" for status, count in counts.items() if count)
    line = f"tested: {len(tests)} tests ({summary or 'none ran'})"
    (console.err if counts["fail"] or counts["error"] else console.ok)(line)


# ---------------------------------------------------------------------------------------
# The two stages


def in_transform_venv() -> bool:
    """Whether this is the second stage: the Python of transform/.venv."""
    return Path(sys.prefix).resolve() == transform.VENV_DIR.resolve()


def enter_venv(argv: list) -> None:
    """Create or update transform/.venv, then become this script in its Python."""
    try:
        if transform.ensure_venv():
            console.ok(f"Installed {shown_path(transform.REQUIREMENTS)} into transform/.venv")
    except transform.SetupError as error:
        raise console.Failure(str(error)) from None
    python = str(transform.venv_python())
    sys.stdout.flush()
    os.execv(python, [python, str(Path(__file__).resolve()), *argv])


def build(options) -> int:
    path = warehouse_path(options)
    check_warehouse(path)
    with tempfile.TemporaryDirectory(prefix="hed-build-models.") as workdir:
        status = run_build(path, options.full_refresh, Path(workdir))
    if status == 0:
        console.ok("Models built; ./student_success.sh now reads them.")
    else:
        console.err(f"dbt build failed (exit {status}); dbt's log: transform/logs/dbt.log")
    return status


def main(argv: list | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    sys.stdout.reconfigure(line_buffering=True)  # in order with the children's output
    try:
        options = parse_arguments(argv)
        with processes.stop_on_signals():
            if not in_transform_venv():
                console.heading("HED models: dbt build")
                enter_venv(argv)
            return build(options)
    except console.Failure as failure:
        console.err(failure.message)
        return failure.exit_code
    except processes.Stopped as stopped:
        console.err("Stopped: dbt was stopped too.")
        return stopped.exit_code


if __name__ == "__main__":
    sys.exit(main())
