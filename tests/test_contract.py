"""The contracts around connector.schema(): the columns it declares for hed_records are the
fields the simulator serves, each in its type family, and the column types ./build_models.sh
requires before it builds are the ones schema() declares.

Either side adding, dropping, renaming or retyping a field fails here, so the simulator
cannot drift away from the API the connector was written for (or the other way round), and
build_models.py's own list (it runs on a Python without the SDK, so it cannot import the
connector) cannot drift from the schema.
"""

import connector
from devkit import build_models
from hed_simulator.data import FIELD_KINDS

# The SDK column type each of the simulator's value kinds lands in (see hed_simulator/data.py).
TYPE_FAMILY_OF_KIND = {
    "text": "STRING",
    "timestamp": "NAIVE_DATETIME",
    "double": "DOUBLE",
    "count": "LONG",
    "money": "DECIMAL",
    "boolean": "BOOLEAN",
}
# Columns the connector adds of its own, which the API never serves.
CONNECTOR_COLUMNS = {"_hed_invalid_values"}
# The kind build_models.py requires of each SDK column type.
REQUIRED_KIND_OF_TYPE = {
    "STRING": build_models.TEXT,
    "NAIVE_DATETIME": build_models.TIMESTAMP,
    "UTC_DATETIME": build_models.TIMESTAMP,
    "DOUBLE": build_models.NUMBER,
    "LONG": build_models.NUMBER,
    "DECIMAL": build_models.DECIMAL,
    "BOOLEAN": build_models.BOOLEAN,
    "JSON": build_models.JSON,
}
# What Fivetran adds to every table, which schema() does not declare.
SYSTEM_KINDS = {
    "_fivetran_deleted": build_models.BOOLEAN,
    "_fivetran_synced": build_models.TIMESTAMP,
}


def type_family(declared) -> str:
    """ "DOUBLE" for "DOUBLE"; "DECIMAL" for {"type": "DECIMAL", "precision": ...}."""
    return declared["type"] if isinstance(declared, dict) else declared


def test_declared_columns_match_the_simulators_fields_in_name_and_type_family():
    (records,) = [table for table in connector.schema({}) if table["table"] == "hed_records"]
    declared = {
        column: type_family(kind)
        for column, kind in records["columns"].items()
        if column not in CONNECTOR_COLUMNS
    }
    served = {field: TYPE_FAMILY_OF_KIND[kind] for field, kind in FIELD_KINDS.items()}
    assert declared == served


def test_build_models_requires_of_each_column_the_type_schema_declares():
    for table in connector.schema({}):
        required = build_models.REQUIRED_KINDS[table["table"]]
        declared = {
            column: REQUIRED_KIND_OF_TYPE[type_family(kind)]
            for column, kind in table["columns"].items()
        }
        declared.update(SYSTEM_KINDS)
        assert {column: declared.get(column) for column in required} == required, table["table"]
