"""The dbt project in transform/ and ./build_models.sh, over real syncs of the simulator.

Every warehouse comes from a real `fivetran debug` sync; every build is the real script or
the real dbt in transform/.venv (the session's `dbt_venv` fixture creates it once). Expected
figures are computed here in Python from the rows DuckDB holds, never from the models.
The real Postgres build is in tests/test_transform_postgres.py (slow).
"""

import os
import re
import shutil
import signal
import statistics
import threading
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
from test_student_success import (
    LAB_CONNECTOR,
    RECORDS,
    SEED,
    expected_kpis,
    latest_at_risk_students,
    metrics,
    run_app,
    sync_warehouse,
)

from devkit import transform
from devkit.processes import run_command, supervised, wait_until_gone
from devkit.sdk_cli import make_project, offline_env, run_debug
from hed_simulator import DEMO_API_KEY, HedSimulator

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "build_models.sh"
MARTS = ("hed__students", "hed__at_risk_worklist", "hed__kpis", "hed__enrollment_cohorts")
MODELS = ("stg_hed__records", *MARTS)
# A build takes seconds; the first run of the script may create transform/.venv.
BUILD_TIMEOUT_S = 900
COMPILE_TIMEOUT_S = 300
# Changes made between the two syncs of the incremental test: enough updates that several
# students with more than one record get a new latest record.
NEW_RECORDS = 10
UPDATED_RECORDS = 60
SLOW_PAGE_MS = 1000  # slow pages, so that a sync holds the warehouse's lock for seconds
WAIT_FOR_SYNC_S = 60
RETENTION_WINDOW = timedelta(days=30)  # dbt_project.yml's hed_retention_window_days
AVERAGE_DIGITS = 9  # far below what any figure is shown to, far above float noise
STOP_WAIT_S = 20  # the script stops dbt within STOP_GRACE_S; this only stops a hung one
NOT_READY = 3  # build_models.sh's exit code for a warehouse it cannot build over
SUMMARY = re.compile(r"tested: (\d+) tests \((\d+) pass(?:, (\d+) warn)?\)")


def build_models(database: Path, workdir: Path, *args: str):
    """./build_models.sh --db `database`, dbt's target/ and logs/ kept under `workdir`."""
    env = dict(os.environ)
    env.update(DBT_TARGET_PATH=str(workdir / "target"), DBT_LOG_PATH=str(workdir / "logs"))
    command = [SCRIPT, "--db", database, *args]
    return run_command(command, REPO_ROOT, env, BUILD_TIMEOUT_S)


def fetch(database: Path, sql: str) -> list:
    with duckdb.connect(str(database), read_only=True) as con:
        return con.execute(sql).fetchall()


def mart_rows(database: Path, mart: str) -> list:
    """Every row of a mart as text, in a stable order. Averages are rounded to AVERAGE_DIGITS:
    a sum of doubles depends on the order rows are read in, in the last bits."""
    types = fetch(
        database,
        "SELECT column_name, data_type FROM information_schema.columns "
        f"WHERE table_schema = 'main' AND table_name = '{mart}' ORDER BY ordinal_position",
    )
    columns = ", ".join(
        f"round({name}, {AVERAGE_DIGITS})::VARCHAR" if kind == "DOUBLE" else f"{name}::VARCHAR"
        for name, kind in types
    )
    return sorted(fetch(database, f"SELECT {columns} FROM main.{mart}"), key=repr)


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """A default simulator sync (600 records, seed 42); the simulator stays up."""
    workdir = tmp_path_factory.mktemp("transform")
    with HedSimulator(records=RECORDS, seed=SEED) as sim:
        yield {"sim": sim, "database": sync_warehouse(sim, workdir), "workdir": workdir}


@pytest.fixture(scope="module")
def built(synced, dbt_venv, tmp_path_factory):
    """A copy of the synced warehouse with the models built by ./build_models.sh."""
    workdir = tmp_path_factory.mktemp("transform-built")
    database = workdir / "warehouse.db"
    shutil.copy(synced["database"], database)
    result = build_models(database, workdir)
    return {"database": database, "result": result}


def latest_records(database: Path) -> dict:
    """student_id -> (latest record row, record count, first and last last_updated)."""
    rows = fetch(
        database,
        "SELECT student_id, last_updated, record_id, at_risk_flag, current_gpa, "
        "enrollment_date, last_login_date FROM tester.hed_records",
    )
    students = {}
    for row in sorted(rows, key=lambda row: (row[1], row[2])):
        _, count, first, _ = students.get(row[0], (row, 0, row[1], None))
        students[row[0]] = (row, count + 1, first, row[1])
    return students


# --- build_models.sh over a synced warehouse ---------------------------------------------


def test_build_models_builds_every_model_and_passes_every_test(built):
    result = built["result"]
    assert result.returncode == 0, result.stdout[-4000:]
    for model in MODELS:
        built_line = rf"\[ok\] built main\.{model} \((view|table|incremental)\)"
        assert re.search(built_line, result.stdout)
    assert "built main.hed__students (incremental)" in result.stdout
    tests, passed, warned = SUMMARY.search(result.stdout).groups()
    assert int(tests) > 20 and int(passed) == int(tests) and warned is None
    assert "Traceback" not in result.stdout


def test_students_mart_holds_each_students_latest_record_and_history(built):
    expected = {
        student: (row[2], count, first, last)
        for student, (row, count, first, last) in latest_records(built["database"]).items()
    }
    loaded = fetch(
        built["database"],
        "SELECT student_id, latest_record_id, record_count, first_seen_at, last_seen_at "
        "FROM main.hed__students",
    )
    assert {row[0]: row[1:] for row in loaded} == expected
    assert sum(count for _, count, _, _ in expected.values()) == RECORDS
    assert any(count > 1 for _, count, _, _ in expected.values())


def test_kpi_mart_has_the_four_tiles_over_every_record_with_their_targets(built):
    database = built["database"]
    columns = ("current_gpa", "course_completion_rate", "engagement_score", "at_risk_flag")
    expected = [
        statistics.fmean(v for (v,) in fetch(database, f"SELECT {c} FROM tester.hed_records"))
        for c in columns
    ]
    (row,) = fetch(
        database,
        "SELECT avg_gpa, avg_completion_rate, avg_engagement_score, at_risk_share, gpa_target, "
        "completion_rate_target, engagement_score_target, at_risk_share_baseline, record_count "
        "FROM main.hed__kpis",
    )
    assert [float(value) for value in row[:4]] == pytest.approx(expected)
    assert [float(value) for value in row[4:8]] == [3.0, 0.85, 70.0, 0.30]
    assert row[8] == RECORDS


def test_worklist_mart_lists_the_at_risk_students_lowest_gpa_first(built):
    rows = fetch(
        built["database"],
        "SELECT student_id, priority_rank FROM main.hed__at_risk_worklist ORDER BY priority_rank",
    )
    assert [student for student, _ in rows] == latest_at_risk_students(built["database"])
    assert [rank for _, rank in rows] == list(range(1, len(rows) + 1))


def term_of(moment) -> str:
    season = "Spring" if moment.month <= 5 else "Summer" if moment.month <= 7 else "Fall"
    return f"{moment.year} {season}"


def test_cohort_mart_counts_each_enrollment_terms_students_retained_and_at_risk(built):
    students = latest_records(built["database"])
    as_of = max(last for _, _, _, last in students.values())
    expected = {}
    for row, _, _, _ in students.values():
        size, retained, at_risk = expected.get(term_of(row[5]), (0, 0, 0))
        is_retained = row[6] >= as_of - RETENTION_WINDOW
        expected[term_of(row[5])] = (size + 1, retained + is_retained, at_risk + bool(row[3]))
    loaded = fetch(
        built["database"],
        "SELECT enrollment_term, student_count, retained_student_count, at_risk_student_count "
        "FROM main.hed__enrollment_cohorts",
    )
    assert {row[0]: row[1:] for row in loaded} == expected
    assert len(expected) > 2


def test_a_second_build_with_no_new_sync_changes_no_mart(built, tmp_path):
    before = {mart: mart_rows(built["database"], mart) for mart in MARTS}
    again = build_models(built["database"], tmp_path)
    assert again.returncode == 0, again.stdout[-4000:]
    assert {mart: mart_rows(built["database"], mart) for mart in MARTS} == before


def test_incremental_build_after_a_sync_of_updates_equals_a_full_rebuild(dbt_venv, tmp_path):
    configuration = {"api_key": DEMO_API_KEY, "page_size": "100"}
    with HedSimulator(records=RECORDS, seed=SEED) as sim:
        project = make_project(tmp_path / "project", {**configuration, "base_url": sim.url})
        database = project / "files" / "warehouse.db"
        first = run_debug(project, offline_env(tmp_path))
        assert first.returncode == 0, first.stdout[-3000:]
        assert build_models(database, tmp_path / "first").returncode == 0
        before = {mart: mart_rows(database, mart) for mart in MARTS}
        changed = sim.add_changes(new=NEW_RECORDS, updated=UPDATED_RECORDS)
        second = run_debug(project, offline_env(tmp_path))
        assert second.returncode == 0, second.stdout[-3000:]
    incremental = build_models(database, tmp_path / "incremental")
    assert incremental.returncode == 0, incremental.stdout[-4000:]
    after = {mart: mart_rows(database, mart) for mart in MARTS}
    rebuilt = tmp_path / "rebuilt.db"
    shutil.copy(database, rebuilt)
    full = build_models(rebuilt, tmp_path / "full", "--full-refresh")
    assert full.returncode == 0, full.stdout[-4000:]
    assert after == {mart: mart_rows(rebuilt, mart) for mart in MARTS}
    assert after["hed__students"] != before["hed__students"]
    updated = "', '".join(changed["updated"])
    moved = fetch(
        database,
        f"SELECT count(*) FROM main.hed__students WHERE record_count > 1 "
        f"AND latest_record_id IN ('{updated}')",
    )[0][0]
    assert moved > 0  # some updates made an old record a student's latest


def spoiled_copy(database: Path, target: Path, statement: str) -> Path:
    shutil.copy(database, target)
    with duckdb.connect(str(target)) as con:
        con.execute(statement)
    return target


def changed_in_place(database: Path, statements: list) -> None:
    """Apply what a later sync could write, each row stamped as newly synced."""
    with duckdb.connect(str(database)) as con:
        for statement in statements:
            con.execute(statement)


def assert_incremental_equals_full_rebuild(database: Path, tmp_path: Path) -> None:
    incremental = build_models(database, tmp_path / "incremental")
    assert incremental.returncode == 0, incremental.stdout[-4000:]
    rebuilt = tmp_path / "rebuilt.db"
    shutil.copy(database, rebuilt)
    full = build_models(rebuilt, tmp_path / "full", "--full-refresh")
    assert full.returncode == 0, full.stdout[-4000:]
    assert mart_rows(database, "hed__students") == mart_rows(rebuilt, "hed__students")


def test_records_leaving_their_students_rebuild_incrementally_as_in_full(built, tmp_path):
    """A record moved to another student, one soft-deleted, and one whose student_id went
    NULL: each student they left must be recomputed, and one left with none removed."""
    database = tmp_path / "warehouse.db"
    shutil.copy(built["database"], database)
    synced_now = "_fivetran_synced = now()"
    pick = "SELECT {} FROM main.hed__students WHERE record_count {} ORDER BY student_id LIMIT 1"
    changed_in_place(
        database,
        [
            # an older (not latest) record of a student with several moves to another student
            f"UPDATE tester.hed_records SET student_id = 'S-MOVED', {synced_now} "
            f"WHERE student_id = ({pick.format('student_id', '> 2')}) "
            f"AND record_id <> ({pick.format('latest_record_id', '> 2')})",
            f"UPDATE tester.hed_records SET _fivetran_deleted = true, {synced_now} "
            f"WHERE record_id = ({pick.format('latest_record_id', '= 2')})",
            f"UPDATE tester.hed_records SET student_id = NULL, {synced_now} "
            f"WHERE student_id = ({pick.format('student_id', '= 1')})",
        ],
    )
    assert_incremental_equals_full_rebuild(database, tmp_path)


def test_a_first_build_over_an_empty_table_fills_once_records_arrive(synced, dbt_venv, tmp_path):
    database = spoiled_copy(
        synced["database"],
        tmp_path / "warehouse.db",
        "CREATE TABLE kept AS FROM tester.hed_records",
    )
    changed_in_place(database, ["DELETE FROM tester.hed_records"])
    assert build_models(database, tmp_path / "empty").returncode == 0
    changed_in_place(
        database,
        ["INSERT INTO tester.hed_records SELECT * REPLACE (now() AS _fivetran_synced) FROM kept"],
    )
    assert_incremental_equals_full_rebuild(database, tmp_path)
    assert len(mart_rows(database, "hed__students")) > 0


def test_an_out_of_range_gpa_warns_and_the_build_still_succeeds(synced, dbt_venv, tmp_path):
    database = spoiled_copy(
        synced["database"],
        tmp_path / "warehouse.db",
        "UPDATE tester.hed_records SET current_gpa = 4.5 "
        "WHERE record_id = (SELECT min(record_id) FROM tester.hed_records)",
    )
    result = build_models(database, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    assert re.search(
        r"\[note\] test source_value_between_hed_hed_records_current_gpa\S* warned", result.stdout
    )
    assert SUMMARY.search(result.stdout).group(3) == "1"


def test_a_failing_key_test_fails_the_build_with_exit_1_and_names_it(synced, dbt_venv, tmp_path):
    database = spoiled_copy(
        synced["database"],
        tmp_path / "warehouse.db",
        "UPDATE tester.hed_records SET _fivetran_synced = NULL "
        "WHERE record_id = (SELECT min(record_id) FROM tester.hed_records)",
    )
    result = build_models(database, tmp_path)
    assert result.returncode == 1, result.stdout[-4000:]
    assert "test source_not_null_hed_hed_records__fivetran_synced fail" in result.stdout
    assert "dbt build failed (exit 1)" in result.stdout
    assert "Traceback" not in result.stdout


def source_freshness(database: Path, workdir: Path):
    profiles = transform.write_profiles(workdir, transform.duckdb_profile(database))
    return transform.run_dbt("source freshness", profiles, work_dir=workdir)


def test_source_freshness_passes_after_a_sync_and_errors_two_days_later(
    synced, dbt_venv, tmp_path
):
    fresh = source_freshness(synced["database"], tmp_path / "fresh")
    assert fresh.returncode == 0, fresh.stdout[-3000:]
    assert "PASS freshness of hed.hed_records" in fresh.stdout
    stale = spoiled_copy(
        synced["database"],
        tmp_path / "stale.db",
        "UPDATE tester.hed_records SET _fivetran_synced = _fivetran_synced - INTERVAL 49 HOUR",
    )
    late = source_freshness(stale, tmp_path / "late")
    assert late.returncode == 1
    assert "ERROR STALE freshness of hed.hed_records" in late.stdout


def test_the_dbt_venv_is_reinstalled_only_when_its_requirements_change(tmp_path):
    venv_dir, requirements = tmp_path / "venv", tmp_path / "requirements.txt"
    requirements.write_text("dbt-core==1.11.16\n")
    (venv_dir / "bin").mkdir(parents=True)
    (venv_dir / "bin" / "dbt").write_text("")
    assert not transform.is_current(venv_dir, requirements)  # no stamp: never installed
    stamp = venv_dir / transform.STAMP_NAME
    stamp.write_text(transform.requirements_sha256(requirements) + "\n")
    assert transform.is_current(venv_dir, requirements)
    assert not transform.ensure_venv(venv_dir, requirements)  # current: nothing to do
    requirements.write_text("dbt-core==1.11.15\n")
    assert not transform.is_current(venv_dir, requirements)


# --- Warehouses it cannot build over -----------------------------------------------------


def test_missing_warehouse_says_which_command_creates_it(dbt_venv, tmp_path):
    result = build_models(tmp_path / "files" / "warehouse.db", tmp_path)
    assert result.returncode == NOT_READY
    assert "There is no warehouse at" in result.stdout
    assert "./debug_and_reset.sh --local --yes" in result.stdout
    assert "Traceback" not in result.stdout


def test_warehouse_without_the_tables_says_no_sync_loaded_them(synced, dbt_venv, tmp_path):
    bare = tmp_path / "bare.db"
    shutil.copy(synced["database"], bare)
    with duckdb.connect(str(bare)) as con:
        con.execute("DROP SCHEMA tester CASCADE")
    result = build_models(bare, tmp_path)
    assert result.returncode == NOT_READY
    assert (
        f"{bare} has no table tester.hed_records and tester.hed_rejected_records: no sync of "
        "this connector has loaded it. Run ./debug_and_reset.sh --local --yes"
    ) in result.stdout
    assert "Traceback" not in result.stdout


def test_untyped_warehouse_of_the_lab_connector_asks_for_a_resync(synced, dbt_venv, tmp_path):
    database = sync_warehouse(synced["sim"], tmp_path, connector_source=LAB_CONNECTOR)
    result = build_models(database, tmp_path)
    assert result.returncode == NOT_READY
    assert "does not have the typed columns the models need" in result.stdout
    assert "hed_records.enrollment_date is VARCHAR, not a timestamp" in result.stdout
    money = r"financial_aid_amount is (DOUBLE|FLOAT), not an exact DECIMAL"
    assert re.search(money, result.stdout)
    assert "re-sync with ./debug_and_reset.sh --local --yes" in result.stdout
    assert "Traceback" not in result.stdout


def test_warehouse_locked_by_a_running_sync_says_to_wait(dbt_venv, tmp_path):
    configuration = {"api_key": DEMO_API_KEY, "page_size": "100"}
    with HedSimulator(records=RECORDS, seed=SEED) as sim:
        sim.set_faults(latency_ms=SLOW_PAGE_MS)
        project = make_project(tmp_path / "project", {**configuration, "base_url": sim.url})
        outcome = {}
        sync = threading.Thread(
            target=lambda: outcome.update(run=run_debug(project, offline_env(tmp_path)))
        )
        sync.start()
        deadline = time.monotonic() + WAIT_FOR_SYNC_S
        while not sim.requests and time.monotonic() < deadline:
            time.sleep(0.05)  # the SDK holds the warehouse from before its first request
        during = build_models(project / "files" / "warehouse.db", tmp_path)
        sync.join()
    assert outcome["run"].returncode == 0, outcome["run"].stdout[-3000:]
    assert during.returncode == NOT_READY, during.stdout[-3000:]
    assert "is locked by a running sync" in during.stdout
    assert "Traceback" not in during.stdout


def test_sigterm_stops_dbt_too_and_exits_143(built, tmp_path):
    env = dict(os.environ, DBT_TARGET_PATH=str(tmp_path / "target"))
    command = [SCRIPT, "--db", built["database"], "--full-refresh"]
    with supervised(command, REPO_ROOT, env, text=True) as process:
        for line in process.stdout:
            if "dbt build over" in line:
                break
        dbt = dbt_children(process.pid)
        process.send_signal(signal.SIGTERM)
        assert process.wait(STOP_WAIT_S) == 143
    assert dbt, "dbt was running when TERM was sent"
    assert all(wait_until_gone(pid, STOP_WAIT_S) for pid, _ in dbt)


def dbt_children(pid: int) -> list:
    """The dbt processes `pid` started, once there is one (it starts just after the line)."""
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline:
        found = [child for child in children_of(pid) if "bin/dbt" in child[1]]
        if found:
            return found
        time.sleep(0.05)
    return []


def children_of(pid: int) -> list:
    """(pid, command line) of the processes whose parent is `pid`, from Linux's /proc."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
            if fields.get("PPid") == str(pid):
                cmdline = (status.parent / "cmdline").read_bytes().replace(b"\0", b" ")
                found.append((int(status.parent.name), cmdline.decode(errors="replace")))
        except (FileNotFoundError, ProcessLookupError):
            continue
    return found


def test_help_needs_no_install_and_an_unknown_option_exits_2(tmp_path):
    shown = run_command([SCRIPT, "--help"], REPO_ROOT, dict(os.environ), COMPILE_TIMEOUT_S)
    assert shown.returncode == 0
    assert all(option in shown.stdout for option in ("--db PATH", "--full-refresh", "--help"))
    refused = run_command([SCRIPT, "--verbose"], REPO_ROOT, dict(os.environ), COMPILE_TIMEOUT_S)
    assert refused.returncode == 2
    assert "Unknown option: --verbose" in refused.stdout


# --- The same models for the customer's destination --------------------------------------


@pytest.mark.parametrize("mode", ["full", "incremental"])
@pytest.mark.parametrize(
    ("target", "profile"),
    [
        ("snowflake", transform.snowflake_profile("ANALYTICS", "HED_MODELS")),
        ("postgres", transform.postgres_profile("127.0.0.1", 9, "nobody", "analytics", "models")),
    ],
)
def test_models_compile_unchanged_for_the_destination_without_a_connection(
    dbt_venv, tmp_path, target, profile, mode
):
    profiles = transform.write_profiles(tmp_path, profile, target)
    variables = f"{{hed_database: RAW, hed_schema: HED_CONNECTOR, hed_offline_compile: {mode}}}"
    result = transform.run_dbt(
        "compile",
        profiles,
        "--no-populate-cache",
        "--vars",
        variables,
        work_dir=tmp_path,
        timeout=COMPILE_TIMEOUT_S,
    )
    assert result.returncode == 0, result.stdout[-4000:]
    compiled = tmp_path / "target" / "compiled" / "hed" / "models"
    staging = (compiled / "staging" / "stg_hed__records.sql").read_text()
    students = (compiled / "marts" / "hed__students.sql").read_text()
    assert "RAW.HED_CONNECTOR.hed_records" in staging.replace('"', "")
    assert ("touched_students" in students) == (mode == "incremental")
    assert all((compiled / "marts" / f"{mart}.sql").is_file() for mart in MARTS)


# --- The StudentSuccess preview over the marts ---------------------------------------------


def kpi_mart_figures(database: Path) -> list:
    (row,) = fetch(
        database,
        "SELECT avg_gpa, avg_completion_rate, avg_engagement_score, at_risk_share "
        "FROM main.hed__kpis",
    )
    return [float(value) for value in row]


def test_preview_shows_the_kpi_and_worklist_marts_when_they_are_built(built):
    app = run_app(built["database"])
    assert not app.exception
    expected = expected_kpis(*kpi_mart_figures(built["database"]))
    assert {label: metrics(app)[label] for label in expected} == expected
    worklist = fetch(
        built["database"],
        "SELECT student_id FROM main.hed__at_risk_worklist ORDER BY priority_rank",
    )
    assert list(app.tabs[1].dataframe[0].value.student_id) == [s for (s,) in worklist]
    assert any("from the dbt models main.hed__kpis" in c.value for c in app.caption)
    assert not app.info


def test_preview_computes_the_figures_itself_when_the_marts_are_older_than_the_sync(
    built, tmp_path
):
    stale = tmp_path / "stale.db"
    shutil.copy(built["database"], stale)
    with duckdb.connect(str(stale)) as con:
        # What a later sync does to the rows it writes: the marts now lag behind.
        con.execute(
            "UPDATE tester.hed_records SET _fivetran_synced = _fivetran_synced + INTERVAL 1 HOUR"
            ", current_gpa = 0.0 WHERE record_id = (SELECT min(record_id) FROM tester.hed_records)"
        )
    app = run_app(stale)
    assert not app.exception
    assert [info.value for info in app.info] == [
        "The KPI tiles and the at-risk worklist are computed by this preview: the dbt models "
        "(main.hed__kpis, main.hed__at_risk_worklist) are older than the last sync. Run "
        "./build_models.sh to rebuild them."
    ]
    gpas = [gpa for (gpa,) in fetch(stale, "SELECT current_gpa FROM tester.hed_records")]
    assert metrics(app)["Average GPA"][0] == f"{statistics.fmean(gpas):.2f}"
    assert statistics.fmean(gpas) != kpi_mart_figures(stale)[0]
