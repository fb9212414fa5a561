"""Reading a synced warehouse back, and what it should hold, for end-to-end tests.

The expected values are converted here independently of connector.py (plain strptime and
string formatting), so a conversion defect in the connector cannot also hide in the check.
"""

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from hed_simulator import RECORD_FIELDS

TIMESTAMP_FIELDS = ("enrollment_date", "last_login_date", "last_updated")
API_TIMESTAMP = "%Y-%m-%d %H:%M:%S"


def database(project: Path) -> Path:
    return project / "files" / "warehouse.db"


def query(project: Path, sql: str, parameters=None):
    with duckdb.connect(str(database(project)), read_only=True) as db:
        return db.execute(sql, parameters).fetchall()


def typed(record: dict) -> dict:
    """A record in the API's standard form as the warehouse should hold it: timestamps
    parsed, money to the cent, everything else as served."""
    row = {name: record.get(name) for name in RECORD_FIELDS}
    for column in TIMESTAMP_FIELDS:
        if row[column] is not None:
            row[column] = datetime.strptime(row[column], API_TIMESTAMP)
    if row["financial_aid_amount"] is not None:
        row["financial_aid_amount"] = Decimal(f"{row['financial_aid_amount']:.2f}")
    return row


def warehouse_rows(project: Path, ids=None) -> dict:
    """The API's fields of the rows in hed_records (all, or those in `ids`), by record_id."""
    columns = ", ".join(RECORD_FIELDS)
    sql = f"SELECT {columns} FROM tester.hed_records"
    parameters = None
    if ids is not None:
        sql += " WHERE record_id IN (SELECT unnest(?::VARCHAR[]))"
        parameters = [list(ids)]
    rows = query(project, sql, parameters)
    return {row[0]: dict(zip(RECORD_FIELDS, row, strict=True)) for row in rows}


def expected_rows(records: list) -> dict:
    """`typed` for every served record, by record_id."""
    return {record["record_id"]: typed(record) for record in records}
