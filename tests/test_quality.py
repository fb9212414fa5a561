"""devkit/quality.py reads the data-quality figures back from a warehouse a real sync wrote.

One `fivetran debug` sync from the simulator, with invalid values and unkeyed items planted,
builds the warehouse; the figures must match what was planted and what DuckDB holds.
"""

import duckdb
import pytest

import connector
from devkit.quality import Quality, read_quality
from devkit.sdk_cli import make_project, offline_env, run_debug
from hed_simulator import DEMO_API_KEY, HedSimulator
from tests.tables import SCHEMA, create_table, table_columns

RECORDS = 300


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """The path of a warehouse with 3 invalid values in 2 columns and 2 rejected items."""
    workdir = tmp_path_factory.mktemp("quality")
    with HedSimulator(records=RECORDS, seed=8) as sim:
        ids = [record["record_id"] for record in sim.records()[:5]]
        sim.corrupt_record(ids[0], set={"current_gpa": "N/A"})
        sim.corrupt_record(ids[1], set={"current_gpa": "?", "last_updated": "yesterday"})
        sim.corrupt_record(ids[2], set={"record_id": None})
        sim.corrupt_record(ids[3], drop=("record_id",))
        project = make_project(workdir / "project", {"api_key": DEMO_API_KEY, "base_url": sim.url})
        result = run_debug(project, offline_env(workdir))
        assert result.returncode == 0, result.stdout[-3000:]
    return project / "files" / "warehouse.db"


@pytest.fixture
def quality(warehouse) -> Quality:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return read_quality(con)


def test_rows_and_students_match_the_table(quality, warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        students = con.execute("SELECT count(DISTINCT student_id) FROM tester.hed_records")
        assert quality.students == students.fetchone()[0]
    assert quality.rows == RECORDS - 2


def test_invalid_values_are_counted_by_column(quality):
    assert quality.invalid == {"current_gpa": 2, "last_updated": 1}
    assert quality.invalid_total == 3


def test_rejected_records_are_counted_by_reason(quality):
    assert quality.rejected == {"missing record_id": 1, "null record_id": 1}
    assert quality.rejected_total == 2


def test_null_counts_include_the_values_set_null(quality):
    assert quality.nulls["current_gpa"] == 2
    assert quality.nulls["last_updated"] == 1
    assert quality.nulls["student_id"] == 0
    assert "_hed_invalid_values" not in quality.nulls
    assert not any(name.startswith("_fivetran") for name in quality.nulls)


def test_last_updated_range_and_last_sync_time_come_from_the_table(quality, warehouse):
    with duckdb.connect(str(warehouse), read_only=True) as con:
        low, high = con.execute(
            "SELECT min(last_updated), max(last_updated) FROM tester.hed_records"
        ).fetchone()
    assert quality.last_updated == (low, high)
    assert quality.last_synced is not None
    assert quality.last_synced.tzinfo is None


@pytest.mark.parametrize("table", [connector.TABLE, connector.REJECTED_TABLE])
def test_tables_built_from_the_schema_match_the_ones_a_sync_creates(warehouse, table):
    sql = (
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position"
    )
    with duckdb.connect(str(warehouse), read_only=True) as con:
        synced = dict(con.execute(sql, [SCHEMA, table]).fetchall())
    assert list(synced.items()) == list(table_columns(table).items())


def test_a_warehouse_from_before_invalid_values_were_kept_reports_them_untracked(tmp_path):
    path = tmp_path / "old.db"
    with duckdb.connect(str(path)) as con:
        create_table(con, connector.TABLE, without=(connector.INVALID_VALUES_COLUMN,))
        con.execute("INSERT INTO tester.hed_records (record_id, student_id) VALUES ('r1', 's1')")
        con.execute("INSERT INTO tester.hed_records (record_id, student_id) VALUES ('r2', NULL)")
        quality = read_quality(con)
    assert (quality.rows, quality.students) == (2, 1)
    assert (quality.nulls["record_id"], quality.nulls["student_id"]) == (0, 1)
    assert connector.INVALID_VALUES_COLUMN not in quality.nulls
    assert (quality.invalid, quality.rejected) == (None, None)
    assert quality.last_updated == (None, None)
    assert quality.last_synced is None


def test_a_missing_table_is_a_lookup_error(tmp_path):
    with duckdb.connect(str(tmp_path / "empty.db")) as con, pytest.raises(LookupError):
        read_quality(con)
