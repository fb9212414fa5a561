"""The dbt models built for real on PostgreSQL 15, a Fivetran destination besides Snowflake.

A synced DuckDB warehouse is loaded into a throwaway Postgres server (tests/postgres.py),
then `dbt build` runs twice with the same models as locally: the first builds every model
from scratch, the second takes hed__students' incremental branch. The marts must equal the
ones ./build_models.sh builds over the same warehouse in DuckDB. Slow: a cluster, two
builds and a DuckDB build; tests/test_transform.py's offline compile for Postgres is the
fast twin. Skipped without Debian's postgresql package, failed without it in CI.
"""

import shutil

import pytest
from postgres import load_warehouse, query, running_server
from test_student_success import RECORDS, SEED, sync_warehouse
from test_transform import build_models, fetch

from devkit import transform
from hed_simulator import HedSimulator

SOURCE_SCHEMA = "tester"  # as in the DuckDB warehouse: the var hed_schema's default
MODELS_SCHEMA = "analytics"
BUILD_TIMEOUT_S = 900
AVERAGE_DIGITS = 9  # averages agree to far more digits than any figure is shown to


def rounded(rows) -> list:
    """Rows with every number as a float rounded to AVERAGE_DIGITS, text as text."""

    def cell(value):
        try:
            return round(float(value), AVERAGE_DIGITS)
        except (TypeError, ValueError):
            return value

    return [tuple(cell(value) for value in row) for row in rows]


# Each mart's comparable columns, selected alike from DuckDB and Postgres.
COMPARED = {
    "hed__students": "student_id, latest_record_id, record_count, current_gpa, is_at_risk",
    "hed__at_risk_worklist": "priority_rank, student_id, current_gpa",
    "hed__kpis": "record_count, student_count, avg_gpa, avg_completion_rate, "
    "avg_engagement_score, at_risk_share",
    "hed__enrollment_cohorts": "enrollment_term, student_count, retained_student_count, "
    "at_risk_student_count, avg_gpa",
}


def text_of(value) -> str:
    """A boolean as psql prints it (t/f), anything else as str."""
    if isinstance(value, bool):
        return "t" if value else "f"
    return value


@pytest.mark.slow
def test_models_build_on_postgres_and_equal_the_duckdb_marts(dbt_venv, tmp_path):
    with HedSimulator(records=RECORDS, seed=SEED) as sim:
        database = sync_warehouse(sim, tmp_path)
    local = tmp_path / "local.db"
    shutil.copy(database, local)
    assert build_models(local, tmp_path / "duckdb").returncode == 0
    with running_server() as server:
        load_warehouse(server, database, SOURCE_SCHEMA, tmp_path / "load")
        profile = transform.postgres_profile(
            server.host, server.port, server.user, server.database, MODELS_SCHEMA
        )
        profiles = transform.write_profiles(tmp_path / "profiles", profile, "postgres")
        for run in ("first", "incremental"):
            result = transform.run_dbt(
                "build", profiles, work_dir=tmp_path / run, timeout=BUILD_TIMEOUT_S
            )
            assert result.returncode == 0, f"{run} build:\n{result.stdout[-4000:]}"
            assert " WARN=0 ERROR=0 SKIP=0 " in result.stdout
        results = transform.read_run_results(tmp_path / "incremental" / "target")
        assert {r["status"] for r in results} <= {"success", "pass"}
        for mart, columns in COMPARED.items():
            order = f"ORDER BY {columns.split(',')[0]}"
            shown = query(server, f"SELECT {columns} FROM {MODELS_SCHEMA}.{mart} {order}")
            expected = fetch(local, f"SELECT {columns} FROM main.{mart} {order}")
            expected = [tuple(text_of(value) for value in row) for row in expected]
            assert rounded(shown) == rounded(expected), mart
