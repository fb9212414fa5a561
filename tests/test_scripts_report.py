"""debug_and_reset.sh's data-quality summary (devkit/debug_report.py `quality`).

Warehouses are written here with DuckDB in the tables connector.schema() declares
(tests/tables.py), so each figure is known in advance: values kept raw in `_hed_invalid_values` are
counted by column, rows of `hed_rejected_records` by reason, and a warehouse from before
either existed shows neither. Counts and column names only: no raw value is ever printed.
One warehouse comes from a real `fivetran debug` sync of the simulator with bad values and
unkeyed items planted, to show the report reads what the connector writes.
"""

from pathlib import Path

import duckdb
import pytest

import connector
from devkit import debug_report
from devkit.sdk_cli import make_project, offline_env, run_debug
from hed_simulator import DEMO_API_KEY, HedSimulator
from tests.tables import create_table

RAW_GPA = "gpa-raw-value-7731"
RAW_DATE = "date-raw-value-4410"
RUN_TIMEOUT_S = 60

RECORD_COLUMNS = ("record_id", "student_id", "current_gpa", "at_risk_flag", "last_updated")


def make_warehouse(path: Path, tracked: bool) -> Path:
    """Four records (two with invalid values when `tracked`) and three rejected items; a
    warehouse from before either existed when not `tracked`."""
    con = duckdb.connect(str(path))
    untracked = () if tracked else (connector.INVALID_VALUES_COLUMN,)
    create_table(con, connector.TABLE, without=untracked)
    invalid = [
        f'{{"current_gpa": "{RAW_GPA}", "enrollment_date": "{RAW_DATE}"}}',
        f'{{"current_gpa": "{RAW_GPA}"}}',
        None,
        None,
    ]
    columns = RECORD_COLUMNS + (() if untracked else (connector.INVALID_VALUES_COLUMN,))
    insert = (
        f"INSERT INTO tester.hed_records ({', '.join(columns)}, _fivetran_synced, "
        f"_fivetran_deleted) VALUES ({', '.join('?' * len(columns))}, now(), false)"
    )
    for number, raw in enumerate(invalid):
        values = [f"r{number}", f"s{number % 2}", None if raw else 3.0, number == 0]
        values.append(f"2024-01-0{number + 1} 10:00:00")
        if tracked:
            values.append(raw)
        con.execute(insert, values)
    if tracked:
        create_table(con, connector.REJECTED_TABLE)
        for number, reason in enumerate(["missing record_id", "missing record_id", "null"]):
            con.execute(
                "INSERT INTO tester.hed_rejected_records "
                "(rejection_id, raw_record, reason, seen_at) VALUES (?, ?, ?, now())",
                [f"h{number}", f'{{"raw": "{RAW_GPA}"}}', reason],
            )
    con.close()
    return path


@pytest.fixture
def report(capsys):
    """report(warehouse): what the summary of `warehouse` prints."""

    def printed(warehouse: Path) -> str:
        capsys.readouterr()
        debug_report.quality(str(warehouse), "hed_records")
        return capsys.readouterr().out

    return printed


@pytest.fixture
def tracked_report(tmp_path, report) -> str:
    return report(make_warehouse(tmp_path / "warehouse.db", tracked=True))


def test_report_counts_values_kept_raw_by_column(tracked_report):
    assert "Invalid values kept raw (_hed_invalid_values), by column: 3\n" in tracked_report
    assert "    current_gpa: 2\n    enrollment_date: 1\n" in tracked_report


def test_report_counts_rejected_records_by_reason(tracked_report):
    assert "Rejected records (hed_rejected_records), by reason: 3\n" in tracked_report
    assert "    missing record_id: 2\n    null: 1\n" in tracked_report


def test_report_never_prints_a_raw_value(tracked_report):
    assert RAW_GPA not in tracked_report
    assert RAW_DATE not in tracked_report


def test_report_counts_no_null_for_the_invalid_values_column(tracked_report):
    nulls = tracked_report[tracked_report.index("Null values:") :].split("Invalid")[0]
    assert "current_gpa: 2" in nulls
    assert "_hed_invalid_values" not in nulls


def test_report_says_none_when_every_value_fit(tmp_path, report):
    path = make_warehouse(tmp_path / "warehouse.db", tracked=True)
    con = duckdb.connect(str(path))
    con.execute("UPDATE tester.hed_records SET _hed_invalid_values = NULL")
    con.execute("DELETE FROM tester.hed_rejected_records")
    con.close()
    text = report(path)
    assert "Invalid values kept raw (_hed_invalid_values), by column: none" in text
    assert "Rejected records (hed_rejected_records), by reason: none" in text


def test_report_of_an_older_warehouse_shows_neither_figure(tmp_path, report):
    text = report(make_warehouse(tmp_path / "warehouse.db", tracked=False))
    assert "Rows:               4" in text
    assert "_hed_invalid_values" not in text
    assert "hed_rejected_records" not in text


def test_report_of_a_real_sync_counts_what_the_connector_kept(tmp_path, report):
    with HedSimulator(records=50, seed=3) as sim:
        ids = [record["record_id"] for record in sim.records()[:3]]
        sim.corrupt_record(ids[0], set={"current_gpa": RAW_GPA})
        sim.corrupt_record(ids[1], set={"record_id": ""})
        sim.corrupt_record(ids[2], drop=("record_id",))
        config = {"api_key": DEMO_API_KEY, "base_url": sim.url}
        project = make_project(tmp_path / "project", config)
        synced = run_debug(project, offline_env(tmp_path / "env"), timeout=RUN_TIMEOUT_S)
    assert synced.returncode == 0, synced.stdout[-3000:]
    text = report(project / "files" / "warehouse.db")
    assert "Invalid values kept raw (_hed_invalid_values), by column: 1\n" in text
    assert "    current_gpa: 1\n" in text
    assert "Rejected records (hed_rejected_records), by reason: 2\n" in text
    assert "    empty record_id: 1\n    missing record_id: 1\n" in text
    assert RAW_GPA not in text
