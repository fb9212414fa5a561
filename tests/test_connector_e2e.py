"""End to end: the real `fivetran debug` against the simulator, asserting on DuckDB and state.

Each run costs a few seconds of CLI start-up, so the happy path (full sync, then an
incremental one, then one with no changes) shares one project and one simulator.
"""

import json
import subprocess
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from warehouse import expected_rows, query, warehouse_rows

from devkit.sdk_cli import (
    fivetran_executable,
    make_project,
    offline_env,
    operation_counts,
    run_command,
    run_debug,
)
from hed_simulator import DEMO_API_KEY, HedSimulator

RECORDS = 600
# A key distinctive enough to grep for: it must never appear in any output or file.
SECRET_KEY = "hed-e2e-secret-4f7c2a9d"
WATCH_TIMEOUT_S = 60  # how long a fault-injecting watcher waits for its moment
CLI_TIMEOUT_S = 300  # a CLI run takes seconds; this only stops a hung one

EXPECTED_TYPES = {
    "record_id": "VARCHAR",
    "student_id": "VARCHAR",
    "enrollment_date": "TIMESTAMP",
    "last_login_date": "TIMESTAMP",
    "last_updated": "TIMESTAMP",
    "current_gpa": "DOUBLE",
    "avg_assignment_score": "DOUBLE",
    "course_completion_rate": "DOUBLE",
    "writing_quality_score": "DOUBLE",
    "engagement_score": "DOUBLE",
    "financial_aid_amount": "DECIMAL(18,2)",
    "credit_hours_attempted": "BIGINT",
    "credit_hours_earned": "BIGINT",
    "total_course_views": "BIGINT",
    "assignment_submissions": "BIGINT",
    "discussion_posts": "BIGINT",
    "plagiarism_incidents": "BIGINT",
    "intervention_count": "BIGINT",
    "at_risk_flag": "BOOLEAN",
}


def configuration_for(url, api_key=DEMO_API_KEY, **overrides):
    configuration = {"api_key": api_key, "base_url": url, "page_size": "100"}
    configuration.update(overrides)
    return configuration


def read_state(project: Path) -> dict:
    return json.loads((project / "files" / "state.json").read_text())


def data_requests(sim):
    return [r for r in sim.requests if r.path == "/hed_data"]


@pytest.fixture(scope="module")
def happy(tmp_path_factory):
    """One simulator and one project, synced fully once; tests below build on it."""
    workdir = tmp_path_factory.mktemp("e2e")
    with HedSimulator(records=RECORDS, seed=11) as sim:
        project = make_project(workdir / "project", configuration_for(sim.url))
        env = offline_env(workdir)
        full = run_debug(project, env)
        yield {"sim": sim, "project": project, "env": env, "full": full}


def test_full_sync_succeeds_with_every_record(happy):
    assert happy["full"].returncode == 0, happy["full"].stdout[-3000:]
    assert operation_counts(happy["full"].stdout)["Upserts"] == RECORDS
    assert query(happy["project"], "SELECT count(*) FROM tester.hed_records") == [(RECORDS,)]


def test_full_sync_declares_warehouse_types(happy):
    rows = query(
        happy["project"],
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = 'tester' AND table_name = 'hed_records'",
    )
    actual = dict(rows)
    assert {column: actual.get(column) for column in EXPECTED_TYPES} == EXPECTED_TYPES


def test_full_sync_keeps_money_exact_to_the_cent(happy):
    source = {r["record_id"]: r["financial_aid_amount"] for r in happy["sim"].records()}
    loaded = dict(
        query(happy["project"], "SELECT record_id, financial_aid_amount FROM tester.hed_records")
    )
    assert {key: Decimal(f"{value:.2f}") for key, value in source.items()} == loaded


def test_full_sync_loads_unpadded_timestamps_as_timestamps(happy):
    source = {r["record_id"]: r["last_updated"] for r in happy["sim"].records()}
    loaded = query(
        happy["project"],
        "SELECT record_id, strftime(last_updated, '%Y-%m-%d %-H:%M:%S') FROM tester.hed_records",
    )
    assert dict(loaded) == source


def test_full_sync_saves_only_the_cursor_and_the_state_version_in_state(happy):
    state = read_state(happy["project"])
    assert list(state) == ["next_cursor", "state_version"]
    assert state["next_cursor"].startswith("gAAAAA")


@pytest.fixture(scope="module")
def incremental(happy):
    """10 new and 5 updated records in the simulator, then one incremental sync."""
    changes = happy["sim"].add_changes(new=10, updated=5)
    return {"changes": changes, "run": run_debug(happy["project"], happy["env"])}


def test_incremental_sync_upserts_exactly_the_changes(happy, incremental):
    run = incremental["run"]
    assert run.returncode == 0, run.stdout[-3000:]
    assert "Incremental sync from saved cursor" in run.stdout
    assert operation_counts(run.stdout)["Upserts"] == 15
    assert query(happy["project"], "SELECT count(*) FROM tester.hed_records") == [(RECORDS + 10,)]


def test_incremental_sync_lands_the_new_values_of_every_changed_record(happy, incremental):
    changed = incremental["changes"]["new"] + incremental["changes"]["updated"]
    latest = expected_rows([r for r in happy["sim"].records() if r["record_id"] in changed])
    assert warehouse_rows(happy["project"], changed) == latest
    assert len(latest) == 15


def test_sync_without_changes_makes_exactly_one_request(happy, incremental):
    sim = happy["sim"]
    sim.clear_requests()
    idle = run_debug(happy["project"], happy["env"])
    assert idle.returncode == 0
    assert operation_counts(idle.stdout)["Upserts"] == 0
    assert len(data_requests(sim)) == 1


@pytest.fixture
def project_for(tmp_path):
    """Make a project against a simulator; returns (project, env)."""

    def build(sim, **configuration):
        project = make_project(tmp_path / "project", configuration_for(sim.url, **configuration))
        return project, offline_env(tmp_path)

    return build


def test_wrong_key_fails_fast_and_names_the_key_problem(simulator, project_for):
    project, env = project_for(simulator, api_key="not-the-key")
    result = run_debug(project, env)
    assert result.returncode != 0
    assert "SYNC FAILED" in result.stdout
    assert "Check api_key" in result.stdout
    assert len(data_requests(simulator)) == 1


def test_configuration_error_is_refused_before_any_request(simulator, project_for):
    project, env = project_for(simulator, page_size="0")
    result = run_debug(project, env)
    assert result.returncode != 0
    assert "'page_size' must be an integer from 1 to 200" in result.stdout
    assert data_requests(simulator) == []


def test_sync_lands_every_record_through_mixed_faults(simulator, project_for):
    simulator.set_faults(fail_rate=0.3, rate_limit_every=5, retry_after=1, reset_rate=0.1)
    project, env = project_for(simulator)
    result = run_debug(project, env)
    assert result.returncode == 0, result.stdout[-3000:]
    ids = {row[0] for row in query(project, "SELECT record_id FROM tester.hed_records")}
    assert ids == {record["record_id"] for record in simulator.records()}
    faults = [r.fault for r in data_requests(simulator) if r.fault]
    assert len(faults) >= 3


def test_malformed_records_land_and_the_sync_succeeds(simulator, project_for):
    records = simulator.records()
    simulator.corrupt_record(records[0]["record_id"], set={"record_id": None})
    simulator.corrupt_record(records[1]["record_id"], set={"current_gpa": "abc"})
    project, env = project_for(simulator)
    result = run_debug(project, env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert query(project, "SELECT count(*) FROM tester.hed_records") == [(RECORDS - 1,)]
    assert query(
        project,
        "SELECT current_gpa, _hed_invalid_values FROM tester.hed_records "
        f"WHERE record_id = '{records[1]['record_id']}'",
    ) == [(None, '{"current_gpa": "abc"}')]
    assert query(project, "SELECT reason FROM tester.hed_rejected_records") == [
        ("null record_id",)
    ]
    assert "Data quality: 1 value did not fit" in result.stdout
    assert "1 record could not be keyed" in result.stdout


def test_a_float_field_the_api_adds_later_lands_as_an_exact_double(simulator, project_for):
    victim = simulator.records()[0]["record_id"]
    simulator.corrupt_record(victim, set={"retention_score": 12345.67})
    project, env = project_for(simulator)
    assert run_debug(project, env).returncode == 0
    assert query(
        project,
        "SELECT retention_score, typeof(retention_score) FROM tester.hed_records "
        f"WHERE record_id = '{victim}'",
    ) == [(12345.67, "DOUBLE")]


def break_api_after(sim, served: int) -> threading.Thread:
    """Answer 403 once `served` data requests were made: a failure in mid-sync."""

    def watch():
        deadline = time.monotonic() + WATCH_TIMEOUT_S
        while len(data_requests(sim)) < served and time.monotonic() < deadline:
            time.sleep(0.005)
        sim.queue_response(status=403, body={"error": "Forbidden"})

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_key_and_student_data_never_reach_output_state_or_crash_reports(
    make_simulator, project_for
):
    sim = make_simulator(api_key=SECRET_KEY)
    sim.set_faults(latency_ms=200)  # slow pages, so the 403 lands in mid-sync
    project, env = project_for(sim, api_key=SECRET_KEY)
    break_api_after(sim, served=3)
    failed = run_debug(project, env)
    assert failed.returncode != 0
    assert 0 < query(project, "SELECT count(*) FROM tester.hed_records")[0][0] < RECORDS
    sim.clear_faults()
    rerun = run_debug(project, env)
    assert rerun.returncode == 0

    reports = list(project.rglob("crash-reports/*"))
    assert reports
    written = [p for p in project.rglob("*") if p.is_file() and p.name != "configuration.json"]
    assert [str(p) for p in written if SECRET_KEY.encode() in p.read_bytes()] == []
    student_values = {r["record_id"] for r in sim.records()} | {
        r["student_id"] for r in sim.records()
    }
    texts = [failed.stdout, rerun.stdout, (project / "files" / "state.json").read_text()]
    texts += [report.read_text() for report in reports]
    assert all(SECRET_KEY not in text for text in texts[:2])
    assert [value for value in student_values if any(value in text for text in texts)] == []


def run_configuration_test(project: Path, env: dict) -> subprocess.CompletedProcess:
    command = [fivetran_executable(), "configuration", project, "--test"]
    return run_command(command, project, env, CLI_TIMEOUT_S)


def test_configuration_test_passes_with_the_demo_key(simulator, project_for):
    project, env = project_for(simulator)
    result = run_configuration_test(project, env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "All tests passed" in result.stdout


def test_configuration_test_fails_clearly_with_a_wrong_key(simulator, project_for):
    project, env = project_for(simulator, api_key="wrong-key")
    result = run_configuration_test(project, env)
    assert result.returncode != 0
    assert "Check api_key" in result.stdout
