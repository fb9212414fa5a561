"""StudentSuccess preview: its queries and states, through Streamlit's own AppTest.

Every warehouse here comes from a real `fivetran debug` sync of the simulator (an older
warehouse and a missing table are made from one by dropping what they lack). Expected
figures are computed independently: in Python from the rows DuckDB holds, or from what the
simulator served, never by calling the app's own queries.
"""

import shutil
import socket
import statistics
import subprocess
import threading
import time
from collections import Counter
from itertools import groupby
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from devkit.sdk_cli import make_project, offline_env, run_debug
from hed_simulator import DEMO_API_KEY, HedSimulator
from student_success import warehouse

REPO_ROOT = Path(__file__).resolve().parents[1]
APP = REPO_ROOT / "student_success" / "app.py"
SCRIPT = REPO_ROOT / "student_success.sh"
LAB_CONNECTOR = REPO_ROOT / "bench" / "lab_connector" / "connector.py"
DATABASE_VARIABLE = "STUDENT_SUCCESS_DB"
RECORDS = 600
SEED = 42
# Share of records each drift mode spoils: enough for every column and reason to show up.
DRIFT_RATE = 0.05
APP_TIMEOUT_S = 60  # an AppTest run takes about a second; this only stops a hung one
SCRIPT_TIMEOUT_S = 300  # the first run may install the app's requirements into .venv
# Slow pages, so that the sync holds the warehouse's lock for several seconds.
SLOW_PAGE_MS = 1000
WAIT_FOR_SYNC_S = 60
CHART_TITLES = [
    "GPA distribution",
    "Average completion rate by enrollment month",
    "Financial aid vs GPA, by engagement",
    "Engagement score by academic standing",
    "At risk vs not at risk",
    "Average GPA by major",
]


def sync_warehouse(sim: HedSimulator, workdir: Path, connector_source: Path | None = None) -> Path:
    """A real `fivetran debug` sync of the simulator; returns the warehouse it wrote."""
    configuration = {"api_key": DEMO_API_KEY, "base_url": sim.url, "page_size": "100"}
    project = make_project(workdir / "project", configuration, connector_source)
    result = run_debug(project, offline_env(workdir))
    assert result.returncode == 0, result.stdout[-3000:]
    return project / "files" / "warehouse.db"


def run_app(database: Path, app: AppTest | None = None) -> AppTest:
    """Run (or rerun, after a widget change) the page over `database`."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(DATABASE_VARIABLE, str(database))
        return (app or AppTest.from_file(str(APP), default_timeout=APP_TIMEOUT_S)).run()


def fetch(database: Path, sql: str) -> list:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql).fetchall()


def values_of(database: Path, column: str) -> list:
    """The non-null values of a column of tester.hed_records."""
    rows = fetch(database, f"SELECT {column} FROM tester.hed_records")
    return [value for (value,) in rows if value is not None]


def metrics(app: AppTest) -> dict:
    return {metric.label: (metric.value, metric.delta) for metric in app.metric}


def expected_kpis(gpa: float, completion: float, engagement: float, at_risk: float) -> dict:
    """The tiles as a person reads them: value, then the gap to the lab app's target."""
    return {
        "Average GPA": (f"{gpa:.2f}", f"{gpa - 3.0:+.2f} vs 3.0 target"),
        "Average completion rate": (
            f"{completion:.1%}",
            f"{(completion - 0.85) * 100:+.1f} pts vs 85% target",
        ),
        "Average engagement score": (f"{engagement:.1f}", f"{engagement - 70:+.1f} vs 70 target"),
        "At-risk share": (f"{at_risk:.1%}", f"{(at_risk - 0.30) * 100:+.1f} pts vs 30% baseline"),
    }


def month_of(row: tuple) -> tuple:
    return (row[0].year, row[0].month)


def mean_of_known(values) -> float:
    return statistics.fmean(value for value in values if value is not None)


def latest_at_risk_students(database: Path) -> list:
    """Student ids whose latest record is at risk, lowest GPA first, computed in Python."""
    rows = fetch(
        database,
        "SELECT student_id, last_updated, record_id, at_risk_flag, current_gpa, "
        "engagement_score FROM tester.hed_records",
    )
    latest = {}
    for row in sorted(rows, key=lambda row: (row[1], row[2])):
        latest[row[0]] = row
    at_risk = [row for row in latest.values() if row[3]]
    at_risk.sort(key=lambda row: (row[4], row[5], row[0]))
    return [row[0] for row in at_risk]


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """A default simulator (600 records, seed 42) synced once; the simulator stays up."""
    workdir = tmp_path_factory.mktemp("student-success")
    with HedSimulator(records=RECORDS, seed=SEED) as sim:
        yield {"sim": sim, "database": sync_warehouse(sim, workdir), "workdir": workdir}


@pytest.fixture(scope="module")
def page(synced) -> AppTest:
    """The page over the default sync, run once for the tests that only read it."""
    return run_app(synced["database"])


@pytest.fixture(scope="module")
def drifted(tmp_path_factory):
    """A sync of a simulator that serves values that do not convert and unkeyable items."""
    workdir = tmp_path_factory.mktemp("student-success-drift")
    with HedSimulator(records=RECORDS, seed=SEED) as sim:
        sim.set_drift(("invalid-values", "unkeyed"), rate=DRIFT_RATE, seed=SEED)
        database = sync_warehouse(sim, workdir)
        yield {"database": database, "expected": sim.expected()}


def derived_warehouse(source: Path, target: Path, *statements: str) -> Path:
    """A copy of a synced warehouse with `statements` applied (to make an older one)."""
    shutil.copy(source, target)
    with duckdb.connect(str(target)) as con:
        for statement in statements:
            con.execute(statement)
    return target


# --- Metrics tab ---------------------------------------------------------------------


def test_kpi_tiles_show_the_tables_averages_against_their_targets(synced, page):
    database = synced["database"]
    flags = values_of(database, "at_risk_flag")
    expected = expected_kpis(
        statistics.fmean(values_of(database, "current_gpa")),
        statistics.fmean(values_of(database, "course_completion_rate")),
        statistics.fmean(values_of(database, "engagement_score")),
        sum(flags) / len(flags),
    )
    assert {label: metrics(page)[label] for label in expected} == expected


def test_metrics_tab_draws_all_six_charts_under_their_titles(page):
    titles = [markdown.value.removeprefix("##### ") for markdown in page.tabs[0].markdown]
    assert titles == CHART_TITLES
    charts = page.get("vega_lite_chart")
    assert len(charts) == len(CHART_TITLES)
    assert [chart.proto.alt for chart in charts] == CHART_TITLES
    assert all(chart.proto.datasets for chart in charts)


def test_page_runs_without_an_exception(page):
    assert not page.exception
    assert page.title[0].value == "StudentSuccess"


def test_gpa_histogram_counts_every_record_with_a_gpa_once(synced):
    gpas = values_of(synced["database"], "current_gpa")
    with warehouse.open_warehouse(synced["database"]) as con:
        bands = warehouse.read_gpa_histogram(con)
    expected = Counter(min(int(gpa * 4) / 4, 3.75) for gpa in gpas)
    assert dict(zip(bands.gpa_from, bands.records, strict=True)) == expected
    assert (bands.gpa_to - bands.gpa_from == 0.25).all()


def test_completion_by_month_averages_each_calendar_month_of_enrollment(synced):
    rows = fetch(
        synced["database"],
        "SELECT enrollment_date, course_completion_rate FROM tester.hed_records",
    )
    expected = {
        month: statistics.fmean(rate for _, rate in group)
        for month, group in groupby(sorted(rows, key=month_of), key=month_of)
    }
    with warehouse.open_warehouse(synced["database"]) as con:
        frame = warehouse.read_completion_by_month(con)
    loaded = {
        (moment.year, moment.month): rate
        for moment, rate in zip(frame.enrollment_month, frame.completion_rate, strict=True)
    }
    assert loaded.keys() == expected.keys()
    assert len(expected) > 2  # several cohorts: a real time series, not text months
    assert all(loaded[month] == pytest.approx(expected[month]) for month in expected)


def test_engagement_box_plot_has_each_standings_quartiles_best_standing_first(synced):
    rows = fetch(
        synced["database"], "SELECT academic_standing, engagement_score FROM tester.hed_records"
    )
    by_standing = {}
    for standing, score in rows:
        by_standing.setdefault(standing, []).append(score)
    with warehouse.open_warehouse(synced["database"]) as con:
        frame = warehouse.read_engagement_by_standing(con)
    assert list(frame.standing) == [
        "Dean's List",
        "Good Standing",
        "Academic Warning",
        "Academic Probation",
    ]
    for row in frame.itertuples():
        scores = by_standing[row.standing]
        q1, median, q3 = statistics.quantiles(scores, n=4, method="inclusive")
        assert (row.records, row.low, row.high) == (len(scores), min(scores), max(scores))
        assert (row.q1, row.median, row.q3) == pytest.approx((q1, median, q3))


def test_at_risk_split_counts_records_flagged_and_not(synced):
    flags = Counter(values_of(synced["database"], "at_risk_flag"))
    with warehouse.open_warehouse(synced["database"]) as con:
        frame = warehouse.read_at_risk_split(con)
    assert dict(zip(frame.status, frame.records, strict=True)) == {
        "At risk": flags[True],
        "Not at risk": flags[False],
    }
    assert frame.share.sum() == pytest.approx(1.0)


def test_gpa_by_major_lists_each_majors_average_best_first(synced):
    rows = fetch(synced["database"], "SELECT major_code, current_gpa FROM tester.hed_records")
    by_major = {}
    for major, gpa in rows:
        by_major.setdefault(major, []).append(gpa)
    with warehouse.open_warehouse(synced["database"]) as con:
        frame = warehouse.read_gpa_by_major(con)
    averages = dict(zip(frame.major_code, frame.avg_gpa, strict=True))
    assert averages == pytest.approx({major: statistics.fmean(g) for major, g in by_major.items()})
    assert list(frame.avg_gpa) == sorted(frame.avg_gpa, reverse=True)


def test_scatter_shows_every_record_of_a_small_table_without_a_sampling_note(synced, page):
    with warehouse.open_warehouse(synced["database"]) as con:
        points = warehouse.read_aid_vs_gpa(con)
    assert len(points) == RECORDS
    assert not [c.value for c in page.caption if c.value.startswith("A random sample")]


def test_scatter_samples_a_large_table_down_to_what_altair_embeds():
    con = duckdb.connect()
    con.execute("CREATE SCHEMA tester")
    con.execute(
        "CREATE TABLE tester.hed_records AS SELECT (i % 400) / 100.0 AS current_gpa, "
        "CAST(i AS DECIMAL(18, 2)) AS financial_aid_amount, (i % 100) * 1.0 AS engagement_score "
        "FROM range(12000) AS t(i)"
    )
    first = warehouse.read_aid_vs_gpa(con)
    again = warehouse.read_aid_vs_gpa(con)
    assert len(first) == warehouse.SCATTER_SAMPLE_ROWS == 5000
    assert warehouse.count_aid_vs_gpa(con) == 12000
    pd.testing.assert_frame_equal(first, again)  # repeatable: the chart does not jump


def test_summary_statistics_match_pandas_describe_of_the_numeric_columns(synced):
    numeric = [
        name
        for name, data_type in fetch(
            synced["database"],
            "SELECT column_name, data_type FROM information_schema.columns WHERE "
            "table_name = 'hed_records' AND column_name NOT LIKE '\\_%' ESCAPE '\\' "
            "ORDER BY ordinal_position",
        )
        if data_type in ("DOUBLE", "BIGINT", "DECIMAL(18,2)")
    ]
    with duckdb.connect(str(synced["database"]), read_only=True) as con:
        frame = con.execute(f"SELECT {', '.join(numeric)} FROM tester.hed_records").df()
    expected = frame.astype(float).describe().T
    with warehouse.open_warehouse(synced["database"]) as con:
        summary = warehouse.read_summary(con, warehouse.column_types(con))
    assert list(summary.index) == numeric
    assert len(numeric) == 13
    pd.testing.assert_frame_equal(summary, expected, check_names=False, check_dtype=False)


# --- At-risk worklist ----------------------------------------------------------------


def test_worklist_lists_each_at_risk_student_once_by_their_latest_record(synced, page):
    shown = page.tabs[1].dataframe[0].value
    expected = latest_at_risk_students(synced["database"])
    assert list(shown.student_id) == expected
    assert len(expected) < len(set(values_of(synced["database"], "student_id")))
    assert f"{len(expected):,} of {len(expected):,} at-risk students shown." in [
        caption.value for caption in page.tabs[1].caption
    ]


def test_worklist_shows_what_an_advisor_acts_on(page):
    assert list(page.tabs[1].dataframe[0].value.columns) == [
        "student_id",
        "major_code",
        "advisor_id",
        "academic_standing",
        "current_gpa",
        "engagement_score",
        "intervention_count",
        "last_login_date",
        "last_updated",
    ]


def test_worklist_filters_by_advisor_and_by_major(synced):
    app = run_app(synced["database"])
    everyone = app.tabs[1].dataframe[0].value
    advisor, major = everyone.advisor_id[0], everyone.major_code[1]
    app.multiselect(key="worklist_advisors").set_value([advisor])
    by_advisor = run_app(synced["database"], app).tabs[1].dataframe[0].value
    app.multiselect(key="worklist_advisors").set_value([])
    app.multiselect(key="worklist_majors").set_value([major])
    by_major = run_app(synced["database"], app).tabs[1].dataframe[0].value
    assert list(by_advisor.student_id) == list(everyone[everyone.advisor_id == advisor].student_id)
    assert list(by_major.student_id) == list(everyone[everyone.major_code == major].student_id)
    assert 0 < len(by_advisor) < len(everyone) and 0 < len(by_major) < len(everyone)


def test_worklist_says_so_when_a_selection_has_no_at_risk_student(synced):
    app = run_app(synced["database"])
    listed = set(app.tabs[1].dataframe[0].value.advisor_id)
    calm = next(
        name for name in app.multiselect(key="worklist_advisors").options if name not in listed
    )
    app.multiselect(key="worklist_advisors").set_value([calm])
    filtered = run_app(synced["database"], app)
    assert [info.value for info in filtered.tabs[1].info] == [
        "No at-risk students for this selection."
    ]


# --- Data quality ---------------------------------------------------------------------


def quality_metrics(app: AppTest) -> dict:
    return {metric.label: metric.value for metric in app.tabs[2].metric}


def test_data_quality_panel_shows_rows_students_and_ranges_of_the_warehouse(synced, page):
    database = synced["database"]
    updated = values_of(database, "last_updated")
    assert quality_metrics(page)["Rows"] == f"{RECORDS:,}"
    assert quality_metrics(page)["Distinct students"] == (
        f"{len(set(values_of(database, 'student_id'))):,}"
    )
    ranges = page.tabs[2].markdown[0].value
    assert f"**last_updated range:** {min(updated)} to {max(updated)}" in ranges
    synced_at = fetch(
        database,
        "SELECT strftime(timezone('UTC', max(_fivetran_synced)), '%Y-%m-%d %H:%M:%S') "
        "FROM tester.hed_records",
    )
    assert f"**Last sync:** {synced_at[0][0]} UTC" in ranges


def test_data_quality_panel_counts_nulls_per_column(synced, page):
    table = page.tabs[2].table[0].value
    columns = [name for name in table.index]
    rows = fetch(synced["database"], f"SELECT {', '.join(columns)} FROM tester.hed_records")
    nulls = {name: sum(row[i] is None for row in rows) for i, name in enumerate(columns)}
    assert dict(table["Nulls"]) == nulls
    assert "current_gpa" in columns and "_fivetran_synced" not in columns


def test_data_quality_panel_counts_invalid_values_by_column_as_served(drifted):
    served = Counter(
        column for values in drifted["expected"].invalid.values() for column in values
    )
    app = run_app(drifted["database"])
    table = app.tabs[2].table[0].value
    assert {name: count for name, count in table["Invalid values"].items() if count} == served
    assert quality_metrics(app)["Invalid values"] == f"{sum(served.values()):,}"
    assert all(table.loc[name, "Nulls"] >= count for name, count in served.items())


def test_data_quality_panel_counts_rejected_records_by_reason(drifted):
    reasons = Counter(
        reason
        for (reason,) in fetch(
            drifted["database"], "SELECT reason FROM tester.hed_rejected_records"
        )
    )
    app = run_app(drifted["database"])
    assert quality_metrics(app)["Rejected records"] == f"{len(drifted['expected'].rejected):,}"
    assert dict(app.tabs[2].table[1].value["Records"]) == reasons


def test_kpis_leave_out_values_that_did_not_convert(drifted):
    truth = list(drifted["expected"].rows.values())
    expected = expected_kpis(
        *(
            mean_of_known(row[column] for row in truth)
            for column in (
                "current_gpa",
                "course_completion_rate",
                "engagement_score",
                "at_risk_flag",
            )
        )
    )
    app = run_app(drifted["database"])
    assert {label: metrics(app)[label] for label in expected} == expected


def test_older_warehouse_without_quality_tracking_shows_what_it_has(drifted, tmp_path):
    older = derived_warehouse(
        drifted["database"],
        tmp_path / "older.db",
        "ALTER TABLE tester.hed_records DROP COLUMN _hed_invalid_values",
        "DROP TABLE tester.hed_rejected_records",
    )
    app = run_app(older)
    assert not app.exception
    figures = quality_metrics(app)
    assert (figures["Invalid values"], figures["Rejected records"]) == ("not tracked",) * 2
    assert "Invalid values" not in app.tabs[2].table[0].value.columns
    assert len(app.get("vega_lite_chart")) == len(CHART_TITLES)


# --- Data explorer ---------------------------------------------------------------------


def test_explorer_pages_hold_every_record_once_latest_first(synced):
    with warehouse.open_warehouse(synced["database"]) as con:
        types = warehouse.column_types(con)
        pages = [
            warehouse.read_explorer_page(con, types, number)
            for number in range(1, RECORDS // warehouse.EXPLORER_PAGE_ROWS + 2)
        ]
    ids = [record_id for frame in pages for record_id in frame.record_id]
    expected = fetch(
        synced["database"],
        "SELECT record_id FROM tester.hed_records ORDER BY last_updated DESC, record_id",
    )
    assert ids == [record_id for (record_id,) in expected]
    assert pages[-1].empty


def test_explorer_shows_the_page_chosen_in_the_pagination(synced):
    app = run_app(synced["database"])
    pagination = app.pagination(key="explorer_page")
    assert pagination.value == 1
    pagination.set_value(2)
    second = run_app(synced["database"], app)
    rows = second.tabs[3].dataframe[0].value
    expected = fetch(
        synced["database"],
        "SELECT record_id FROM tester.hed_records ORDER BY last_updated DESC, record_id "
        "LIMIT 25 OFFSET 25",
    )
    assert list(rows.record_id) == [record_id for (record_id,) in expected]
    assert "Records 26 to 50 of 600, latest last_updated first." in [
        caption.value for caption in second.tabs[3].caption
    ]


# --- States -----------------------------------------------------------------------------


def test_missing_warehouse_says_which_command_creates_it(tmp_path):
    app = run_app(tmp_path / "files" / "warehouse.db")
    assert not app.exception
    assert len(app.info) == 1
    assert "There is no warehouse at" in app.info[0].value
    assert "./debug_and_reset.sh --local --yes" in app.info[0].value
    assert not app.tabs


def test_warehouse_without_the_table_says_no_sync_loaded_records(synced, tmp_path):
    bare = derived_warehouse(
        synced["database"], tmp_path / "bare.db", "DROP SCHEMA tester CASCADE"
    )
    app = run_app(bare)
    assert not app.exception
    assert [info.value for info in app.info] == [
        f"{bare} has no table tester.hed_records: no sync has loaded records into it. "
        "Run ./debug_and_reset.sh --local --yes"
    ]


def test_empty_table_says_the_last_sync_loaded_no_records(tmp_path):
    with HedSimulator(records=0, seed=SEED) as sim:
        database = sync_warehouse(sim, tmp_path)
    app = run_app(database)
    assert not app.exception
    assert [info.value for info in app.info] == [
        "tester.hed_records is empty: the last sync loaded no records."
    ]


def test_locked_warehouse_says_a_sync_is_running_then_shows_the_data_when_it_ends(tmp_path):
    configuration = {"api_key": DEMO_API_KEY, "page_size": "100"}
    with HedSimulator(records=RECORDS, seed=SEED) as sim:
        sim.set_faults(latency_ms=SLOW_PAGE_MS)
        project = make_project(tmp_path / "project", {**configuration, "base_url": sim.url})
        database = project / "files" / "warehouse.db"
        outcome = {}
        sync = threading.Thread(
            target=lambda: outcome.update(run=run_debug(project, offline_env(tmp_path)))
        )
        sync.start()
        deadline = time.monotonic() + WAIT_FOR_SYNC_S
        while not sim.requests and time.monotonic() < deadline:
            time.sleep(0.05)  # the SDK holds the warehouse from before its first request
        during = run_app(database)
        sync.join()
    assert outcome["run"].returncode == 0, outcome["run"].stdout[-3000:]
    assert not during.exception
    assert len(during.warning) == 1
    assert "is locked by a running sync" in during.warning[0].value
    after = run_app(database, during.button[0].click())
    assert not after.warning
    assert quality_metrics(after)["Rows"] == f"{RECORDS:,}"


def test_page_releases_the_warehouse_so_the_next_sync_can_write(synced, tmp_path):
    project = tmp_path / "project"
    shutil.copytree(synced["database"].parents[1], project)
    database = project / "files" / "warehouse.db"
    assert quality_metrics(run_app(database))["Rows"] == f"{RECORDS:,}"
    synced["sim"].add_changes(new=10)
    incremental = run_debug(project, offline_env(tmp_path))
    assert incremental.returncode == 0, incremental.stdout[-3000:]
    assert quality_metrics(run_app(database))["Rows"] == f"{RECORDS + 10:,}"


def test_untyped_warehouse_of_the_lab_connector_asks_for_a_resync(synced, tmp_path):
    database = sync_warehouse(synced["sim"], tmp_path, connector_source=LAB_CONNECTOR)
    app = run_app(database)
    assert not app.exception
    assert len(app.error) == 1
    message = app.error[0].value
    assert "does not have the typed columns this preview needs" in message
    assert "enrollment_date is VARCHAR, not a timestamp" in message
    assert message.endswith("re-sync with ./debug_and_reset.sh --local --yes")


def test_file_that_is_not_a_warehouse_is_reported_without_a_traceback(tmp_path):
    database = tmp_path / "warehouse.db"
    database.write_bytes(b"not a DuckDB database\n" * 100)
    app = run_app(database)
    assert not app.exception
    assert len(app.error) == 1
    assert app.error[0].value.startswith(f"Cannot open {database}: ")


# --- The script and the deploy ---------------------------------------------------------


def run_script(*args: str, timeout: float = SCRIPT_TIMEOUT_S) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=REPO_ROOT,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_script_help_lists_its_options():
    result = run_script("--help")
    assert result.returncode == 0
    assert all(option in result.stdout for option in ("--port N", "--db PATH", "--help"))
    assert "default: 8501" in result.stdout and "default: files/warehouse.db" in result.stdout


@pytest.mark.parametrize("port", ["abc", "0", "65536", "08501"])
def test_script_refuses_a_port_that_is_not_one_with_exit_2(port):
    result = run_script("--port", port)
    assert result.returncode == 2
    assert f"--port must be a whole number from 1 to 65535 (got '{port}')" in result.stderr


def test_script_refuses_an_unknown_option_with_exit_2():
    result = run_script("--verbose")
    assert result.returncode == 2
    assert "Unknown option: --verbose" in result.stderr


def test_script_says_when_the_port_is_taken():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_script("--port", str(port))
    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is in use: pass --port N" in result.stderr


def test_deploy_never_ships_the_app(tmp_path):
    config = tmp_path / "production.json"
    config.write_text('{"api_key": "a-real-looking-key", "base_url": "https://hed.example.com"}')
    env = offline_env(tmp_path, {"FIVETRAN_API_KEY": "a2V5OnNlY3JldA=="})  # base64 key:secret
    result = subprocess.run(
        [
            str(REPO_ROOT / "deploy.sh"),
            "--destination",
            "D",
            "--connection",
            "hed_preview",
            "--config",
            str(config),
            "--dry-run",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "connector.py" in result.stdout
    assert "student_success" not in result.stdout
    assert "streamlit" not in (REPO_ROOT / "requirements.txt").read_text().lower()
