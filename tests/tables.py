"""Warehouse tables for tests that need one without running a sync.

They are built from connector.schema(), so a column the connector adds, drops or retypes
reaches every such test at once; tests/test_quality.py checks that they match the tables a
real `fivetran debug` sync creates.
"""

import connector

SCHEMA = "tester"  # the schema `fivetran debug` writes to
# How the SDK's local tester stores each declared type in DuckDB.
DUCKDB_TYPES = {
    "STRING": "VARCHAR",
    "JSON": "JSON",
    "BOOLEAN": "BOOLEAN",
    "DOUBLE": "DOUBLE",
    "LONG": "BIGINT",
    "NAIVE_DATETIME": "TIMESTAMP",
    "UTC_DATETIME": "TIMESTAMP WITH TIME ZONE",
}
# The columns the tester adds after the declared ones, in every table.
SYSTEM_COLUMNS = {
    "_fivetran_deleted": "BOOLEAN",
    "_fivetran_synced": "TIMESTAMP WITH TIME ZONE",
}


def duckdb_type(declared) -> str:
    """A declared type (a name, or a DECIMAL dict) as DuckDB spells it."""
    if isinstance(declared, dict):
        return f"DECIMAL({declared['precision']},{declared['scale']})"
    return DUCKDB_TYPES[declared]


def declared_table(table: str) -> dict:
    """The entry connector.schema() returns for `table`."""
    (declared,) = (entry for entry in connector.schema({}) if entry["table"] == table)
    return declared


def table_columns(table: str, without=()) -> dict:
    """A table's columns and DuckDB types in the order a sync creates them."""
    declared = declared_table(table)
    columns = {name: duckdb_type(kind) for name, kind in declared["columns"].items()}
    columns.update(SYSTEM_COLUMNS)
    return {name: kind for name, kind in columns.items() if name not in without}


def create_table(con, table: str, without=()) -> None:
    """Create `table` in SCHEMA as a sync would, leaving out the columns in `without`."""
    columns = table_columns(table, without)
    definitions = ", ".join(f"{name} {kind}" for name, kind in columns.items())
    keys = ", ".join(declared_table(table)["primary_key"])
    con.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
    con.execute(f"CREATE TABLE {SCHEMA}.{table} ({definitions}, PRIMARY KEY ({keys}))")
