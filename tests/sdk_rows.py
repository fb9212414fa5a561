"""The Fivetran SDK's own row path, in process: what a row becomes on its way to DuckDB.

`op.upsert` encodes a row with the schema's declared types (raising on a value it refuses),
and the core later decodes it, turns each cell into text for its column type and loads it
into DuckDB with a CAST. Tests run connector rows through exactly those SDK functions, so
a conversion that the SDK would refuse, or store differently, fails here rather than
passing against a fake that accepts anything.
"""

import duckdb
from fivetran_connector_sdk_cli.schema_processing import process_tables
from fivetran_connector_sdk_cli.type_coercion import encode_row_data
from fivetran_connector_sdk_core.cells import declared_type, decode_row_data, merge, value_type
from fivetran_connector_sdk_core.destination.staging import stage

import connector

# TIMESTAMP WITH TIME ZONE comes back through pytz, which is not installed: read it as text.
ZONED = "TIMESTAMP WITH TIME ZONE"


class SdkRowPath:
    """The declared schema of connector.schema(), and the SDK's encode -> stage -> load."""

    def __init__(self):
        tables = {}
        process_tables(connector.schema({}), tables)
        self.columns = {
            name: {column.name: column for column in table.columns}
            for (_, name), table in tables.items()
        }

    def encode(self, table: str, row: dict) -> dict:
        """What op.upsert does to a row before the core sees it; raises as it does."""
        declared = {name: column.type for name, column in self.columns[table].items()}
        return encode_row_data(declared, row)

    def load(self, table: str, rows: list) -> list:
        """The rows as DuckDB holds them after the core's staging: one dict per row."""
        cells = [decode_row_data(self.encode(table, row)) for row in rows]
        types = self.column_types(table, cells)
        with duckdb.connect() as con:
            staged = stage(con, list(types), types, cells)
            select = ", ".join(
                f'CAST("{name}" AS VARCHAR) AS "{name}"' if kind == ZONED else f'"{name}"'
                for name, kind in types.items()
            )
            cursor = con.execute(f"SELECT {select} FROM {staged}")
            names = [column[0] for column in cursor.description]
            return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]

    def column_types(self, table: str, cells: list) -> dict:
        """Declared columns keep their type; others get the type the core infers."""
        types = {}
        for row in cells:
            for name, cell in row.items():
                column = self.columns[table].get(name)
                if column is not None:
                    types[name] = declared_type(column)
                    continue
                inferred = value_type(cell)
                if inferred is not None:
                    types[name] = merge(types.get(name, inferred), inferred)
                else:
                    types.setdefault(name, "VARCHAR")
        return types
