"""The soak (`python -m bench.soak`): its figures can fail, and the quick run passes.

The checker's tests build a warehouse by hand in the contract's schema from the
simulator's truth, plant one defect, and require the one figure named after it to count
it: a figure that cannot fail proves nothing. The slow test runs the quick soak (~2.5-4
minutes: dozens of real `fivetran debug` runs; deselect with `-m "not slow"`) and asserts
on the printed table, not only the exit code, so a soak that stopped checking something
cannot pass silently.
"""

import json
import re
import signal
import subprocess
import sys
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from bench.soak import crash, selftest
from bench.soak.checker import (
    API_TIMESTAMP,
    Expected,
    check,
    column_kind,
    expected_of,
    rejection_reason,
)
from hed_simulator import HedSimulator

REPO_ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 15 * 60  # the quick soak takes ~2.5-4 minutes; this is its hard ceiling
PHASES = ("checker", "fault soak", "crash+resume", "churn", "drift", "bad input", "secret scan")
GATING_COLUMNS = ("lost", "stale", "wrong", "leaks")
INJECTING_PHASES = ("fault soak", "crash+resume", "drift", "bad input")
RECORDS = 40
UPDATED = 5

HED_RECORDS_DDL = """
CREATE TABLE tester.hed_records (
    record_id VARCHAR PRIMARY KEY, student_id VARCHAR, enrollment_date TIMESTAMP,
    academic_standing VARCHAR, current_gpa DOUBLE, credit_hours_attempted BIGINT,
    credit_hours_earned BIGINT, major_code VARCHAR, advisor_id VARCHAR,
    financial_aid_amount DECIMAL(18, 2), last_login_date TIMESTAMP, total_course_views BIGINT,
    assignment_submissions BIGINT, discussion_posts BIGINT, avg_assignment_score DOUBLE,
    course_completion_rate DOUBLE, plagiarism_incidents BIGINT, writing_quality_score DOUBLE,
    engagement_score DOUBLE, at_risk_flag BOOLEAN, intervention_count BIGINT,
    last_updated TIMESTAMP, _hed_invalid_values JSON,
    _fivetran_synced TIMESTAMP WITH TIME ZONE, _fivetran_deleted BOOLEAN
)"""
REJECTED_DDL = """
CREATE TABLE tester.hed_rejected_records (
    rejection_id VARCHAR PRIMARY KEY, raw_record JSON, reason VARCHAR,
    seen_at TIMESTAMP WITH TIME ZONE, source_cursor VARCHAR
)"""


# ---------------------------------------------------------------------------------------
# A warehouse written by hand, as the contract describes it


def as_stored(column: str, value):
    if value is None:
        return None
    kind = column_kind(column)
    if kind == "timestamp":
        return datetime.strptime(value, API_TIMESTAMP)
    if kind == "money":
        return Decimal(str(value)).quantize(Decimal("0.01"))
    return value


def write_warehouse(path: Path, expected: Expected) -> Path:
    """A faithful warehouse of `expected`: every row exact, raw values and rejected items."""
    with duckdb.connect(str(path)) as db:
        db.execute("CREATE SCHEMA tester")
        db.execute(HED_RECORDS_DDL)
        db.execute(REJECTED_DDL)
        for key, row in expected.rows.items():
            values = {column: as_stored(column, value) for column, value in row.items()}
            raw = expected.invalid.get(key)
            values["_hed_invalid_values"] = json.dumps(raw) if raw else None
            columns = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            db.execute(
                f"INSERT INTO tester.hed_records ({columns}) VALUES ({marks})",
                list(values.values()),
            )
        for number, item in enumerate(expected.rejected):
            reason = rejection_reason(item)
            db.execute(
                "INSERT INTO tester.hed_rejected_records (rejection_id, raw_record, reason) "
                "VALUES (?, ?, ?)",
                [f"r{number}", None if item is None else json.dumps(item), reason],
            )
    return path


@pytest.fixture
def updated_source(tmp_path) -> tuple[Path, selftest.Source]:
    """A warehouse of a source whose records partly have a second version."""
    sim = HedSimulator(records=RECORDS, seed=3)
    before = expected_of(sim)
    updated = sim.add_changes(updated=UPDATED)["updated"]
    source = selftest.Source(expected_of(sim), (before,), tuple(sorted(updated)))
    return write_warehouse(tmp_path / "updated.db", source.latest), source


@pytest.fixture
def drifted_source(tmp_path) -> tuple[Path, selftest.Source]:
    """A warehouse of a drifted source: raw values and unkeyed items included."""
    sim = HedSimulator(records=RECORDS, seed=3)
    sim.set_drift(("invalid-values", "unkeyed"), rate=0.3, seed=3)
    source = selftest.Source(expected_of(sim), (), ())
    assert source.latest.invalid and source.latest.rejected  # the plants need both
    return write_warehouse(tmp_path / "drifted.db", source.latest), source


def figures_after(path: Path, source: selftest.Source, plant) -> dict:
    with duckdb.connect(str(path)) as db:
        assert plant(db, source)
    verdict = check(path, source.latest, source.history)
    return {"lost": verdict.lost, "stale": verdict.stale, "wrong": verdict.wrong}


# ---------------------------------------------------------------------------------------
# The checker's figures can fail


def test_checker_finds_a_faithful_warehouse_clean(updated_source, drifted_source):
    for path, source in (updated_source, drifted_source):
        verdict = check(path, source.latest, source.history)
        assert (verdict.lost, verdict.stale, verdict.wrong) == (0, 0, 0), verdict.summary()
        assert verdict.rows == verdict.expected == len(source.latest.rows)


def test_a_deleted_row_counts_as_lost_only(updated_source):
    figures = figures_after(*updated_source, selftest.delete_row)
    assert figures == {"lost": 1, "stale": 0, "wrong": 0}


def test_a_row_from_an_older_version_counts_as_stale_only(updated_source):
    figures = figures_after(*updated_source, selftest.restore_earlier_version)
    assert figures == {"lost": 0, "stale": 1, "wrong": 0}


def test_a_changed_field_counts_as_wrong_only(updated_source):
    figures = figures_after(*updated_source, selftest.change_field)
    assert figures == {"lost": 0, "stale": 0, "wrong": 1}


def test_a_row_no_source_explains_counts_as_wrong_only(updated_source):
    figures = figures_after(*updated_source, selftest.add_unexplained_row)
    assert figures == {"lost": 0, "stale": 0, "wrong": 1}


def test_an_older_version_is_wrong_when_the_checker_was_not_told_of_it(updated_source):
    path, source = updated_source
    with duckdb.connect(str(path)) as db:
        selftest.restore_earlier_version(db, source)
    verdict = check(path, source.latest, history=())
    assert (verdict.stale, verdict.wrong) == (0, 1)


def test_a_missing_rejected_item_counts_as_lost_only(drifted_source):
    figures = figures_after(*drifted_source, selftest.delete_rejected_item)
    assert figures == {"lost": 1, "stale": 0, "wrong": 0}


def test_a_changed_raw_value_counts_as_wrong_only(drifted_source):
    figures = figures_after(*drifted_source, selftest.change_raw_value)
    assert figures == {"lost": 0, "stale": 0, "wrong": 1}


def test_a_wrong_rejection_reason_counts_as_wrong_only(drifted_source):
    figures = figures_after(*drifted_source, selftest.change_rejection_reason)
    assert figures == {"lost": 0, "stale": 0, "wrong": 1}


def test_money_compares_to_the_cent_and_doubles_exactly(updated_source):
    path, source = updated_source
    key = next(k for k, row in source.latest.rows.items() if row["financial_aid_amount"])
    with duckdb.connect(str(path)) as db:
        db.execute(
            "UPDATE tester.hed_records SET financial_aid_amount = financial_aid_amount + 0.01, "
            "avg_assignment_score = avg_assignment_score + 1e-9 WHERE record_id = ?",
            [key],
        )
    verdict = check(path, source.latest, source.history)
    assert verdict.wrong == 1
    assert set(verdict.columns) == {"financial_aid_amount", "avg_assignment_score"}


# ---------------------------------------------------------------------------------------
# Crash faults are counted from what happened


def test_a_kill_that_found_the_process_gone_is_not_a_fault():
    landed = crash.where_kill_landed(exit_code=0, pages_before=10, saved=1000, total=1000)
    assert landed == crash.AFTER_EXIT
    assert landed not in crash.DELIVERED


def test_a_delivered_kill_lands_at_start_up_mid_sync_or_after_the_final_checkpoint():
    killed = -signal.SIGKILL
    assert crash.where_kill_landed(killed, pages_before=0, saved=0, total=1000) == "start-up"
    assert crash.where_kill_landed(killed, pages_before=4, saved=300, total=1000) == "mid-sync"
    after = crash.where_kill_landed(killed, pages_before=10, saved=1000, total=1000)
    assert after == crash.AFTER_CHECKPOINT


# ---------------------------------------------------------------------------------------
# The quick soak


def parse_table(output: str) -> dict:
    """{phase: {column: value}} from the soak's `a | b | c` table."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("phase "))
    header = [cell.strip() for cell in lines[start].split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if "|" not in line:
            break
        cells = [cell.strip() for cell in line.split("|")]
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


@pytest.fixture(scope="module")
def quick_soak(tmp_path_factory) -> tuple[subprocess.CompletedProcess, dict, dict]:
    figures = tmp_path_factory.mktemp("soak") / "soak.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--quick", "--json", str(figures)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    data = json.loads(figures.read_text()) if figures.exists() else {}
    return result, parse_table(result.stdout), data


@pytest.mark.slow
def test_quick_soak_passes_with_every_gating_figure_zero(quick_soak):
    result, rows, _ = quick_soak
    assert result.returncode == 0, result.stdout[-6000:]
    assert set(PHASES) | {"TOTAL"} == set(rows), result.stdout[-6000:]
    for name, row in rows.items():
        assert {column: row[column] for column in GATING_COLUMNS} == dict.fromkeys(
            GATING_COLUMNS, "0"
        ), name
        assert row["result"] == "PASS", name


@pytest.mark.slow
def test_quick_soak_runs_cases_and_injects_faults_in_every_phase(quick_soak):
    result, rows, _ = quick_soak
    for name in PHASES:
        assert int(rows[name]["cases"]) > 0, name
    for name in INJECTING_PHASES:
        assert int(rows[name]["faults"]) > 0, name
    assert re.fullmatch(r"\d+/\d+", rows["fault soak"]["survived"]), result.stdout[-3000:]


@pytest.mark.slow
def test_quick_soak_lands_kills_mid_sync(quick_soak):
    result, _, _ = quick_soak
    match = re.search(r"\[crash\+resume\] .*kills: mid-sync (\d+)", result.stdout)
    assert match, result.stdout[-3000:]
    assert int(match.group(1)) > 0


@pytest.mark.slow
def test_quick_soak_writes_every_seed_and_drift_mode_to_json(quick_soak):
    _, _, data = quick_soak
    phases = {phase["name"]: phase for phase in data["phases"]}
    seeds = phases["fault soak"]["figures"]["seeds"]
    assert [seed["seed"] for seed in seeds] == data["fault_seeds"]
    assert len(seeds) == data["profile"]["fault_seeds"] > 0
    modes = [case["name"] for case in phases["drift"]["figures"]["cases"]]
    assert "all modes" in modes and len(modes) == 8
