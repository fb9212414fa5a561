"""The contract between the connector and the simulator: the columns connector.schema()
declares for hed_records are the fields the simulator serves, each in its type family.

Either side adding, dropping, renaming or retyping a field fails here, so the simulator
cannot drift away from the API the connector was written for (or the other way round).
"""

import connector
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
