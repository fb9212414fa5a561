"""Specification of value conversion: what each served value becomes in the warehouse.

Every case starts from the JSON text the API sends (parsed as the connector parses a
page), goes through connector.shape_record, then through the SDK's own row encoding and
the core's staging into DuckDB (tests/sdk_rows.py). A value either lands typed, or lands
as NULL with the raw value kept in `_hed_invalid_values`; the record itself always lands.
"""

import json
from datetime import datetime
from decimal import Decimal

import pytest
from sdk_rows import SdkRowPath

import connector
from hed_simulator.data import RecordFactory

SDK = SdkRowPath()
# A well-formed record as the simulator serves it.
SAMPLE = RecordFactory(seed=42, initial_records=10).build(3)


def served(json_text: str):
    """The value the connector sees when the API sends `json_text`."""
    return connector.decode_json(f'{{"value": {json_text}}}'.encode())["value"]


def land(column: str, json_text: str) -> dict:
    """The warehouse row for SAMPLE with `column` served as `json_text`."""
    record = {**SAMPLE, column: served(json_text)}
    (row,) = SDK.load(connector.TABLE, [connector.to_row(record)])
    return row


def invalid_values(row: dict) -> dict:
    raw = row[connector.INVALID_VALUES_COLUMN]
    return json.loads(raw) if raw is not None else {}


def assert_lands(column: str, json_text: str, expected) -> None:
    row = land(column, json_text)
    assert row[column] == expected
    assert invalid_values(row) == {}


def assert_kept_raw(column: str, json_text: str) -> None:
    row = land(column, json_text)
    assert row[column] is None
    assert invalid_values(row) == {column: json.loads(json_text)}
    assert row["record_id"] == SAMPLE["record_id"]


@pytest.mark.parametrize(
    ("json_text", "expected"),
    [
        ("3.1", 3.1),
        ("3.10", 3.1),
        ('"3.10"', 3.1),
        ('" 12 "', 12.0),
        ("7", 7.0),
        ('"-0.5e1"', -5.0),
        ('".25"', 0.25),
    ],
)
def test_double_column_takes_numbers_and_numeric_text(json_text, expected):
    assert_lands("current_gpa", json_text, expected)


@pytest.mark.parametrize(
    "json_text",
    ['"N/A"', '"12abc"', '"nan"', '"Infinity"', '"1_000"', '"0x10"', "true", '"1e400"', "NaN"],
)
def test_double_column_keeps_what_is_not_a_finite_number_raw(json_text):
    row = land("current_gpa", json_text)
    assert row["current_gpa"] is None
    assert list(invalid_values(row)) == ["current_gpa"]


@pytest.mark.parametrize(
    ("json_text", "expected"),
    [("12", 12), ('"12"', 12), ('"12.0"', 12), ("12.0", 12), ('" 7 "', 7), ('"-3"', -3)],
)
def test_long_column_takes_integers_integral_numbers_and_integer_text(json_text, expected):
    assert_lands("credit_hours_attempted", json_text, expected)


@pytest.mark.parametrize(
    "json_text", ['"12abc"', '"12.5"', "2.5", "true", "9223372036854775808", '"1e30"', '"twelve"']
)
def test_long_column_keeps_non_integers_raw(json_text):
    assert_kept_raw("credit_hours_attempted", json_text)


@pytest.mark.parametrize(
    ("json_text", "expected"),
    [
        ("true", True),
        ("false", False),
        ('"true"', True),
        ('"FALSE"', False),
        ('"t"', True),
        ('"F"', False),
        ('"Yes"', True),
        ('"no"', False),
        ('"1"', True),
        ('"0"', False),
        ("1", True),
        ("0", False),
        ('" true "', True),
    ],
)
def test_boolean_column_takes_the_usual_spellings(json_text, expected):
    assert_lands("at_risk_flag", json_text, expected)


@pytest.mark.parametrize("json_text", ['"maybe"', "2", '"y"', "1.0", '"on"'])
def test_boolean_column_keeps_other_values_raw(json_text):
    assert_kept_raw("at_risk_flag", json_text)


@pytest.mark.parametrize(
    ("json_text", "expected"),
    [
        ("1234.56", Decimal("1234.56")),
        ('"1234.56"', Decimal("1234.56")),
        ("5", Decimal("5.00")),
        ('" 0.5 "', Decimal("0.50")),
        ("9999999999999999.99", Decimal("9999999999999999.99")),
        ("0.1", Decimal("0.10")),
    ],
)
def test_money_is_exact_to_the_cent_from_the_json_text(json_text, expected):
    assert_lands("financial_aid_amount", json_text, expected)


@pytest.mark.parametrize(
    ("json_text", "expected"),
    [
        ("1234.565", Decimal("1234.57")),
        ("-1.005", Decimal("-1.01")),
        ("1234.5649", Decimal("1234.56")),
        ('"-0.004"', Decimal("0.00")),
    ],
)
def test_money_with_more_than_two_decimals_rounds_half_up(json_text, expected):
    assert_lands("financial_aid_amount", json_text, expected)


@pytest.mark.parametrize(
    "json_text", ['"lots"', '"1e20"', "9999999999999999.995", "true", '"NaN"', "10000000000000000"]
)
def test_money_that_is_not_a_number_or_does_not_fit_is_kept_raw(json_text):
    assert_kept_raw("financial_aid_amount", json_text)


@pytest.mark.parametrize(
    ("json_text", "expected"),
    [
        ('"2024-08-04 0:00:00"', datetime(2024, 8, 4)),
        ('"2024-08-04 13:05:09"', datetime(2024, 8, 4, 13, 5, 9)),
        ('"2024-08-04T02:00:00+02:00"', datetime(2024, 8, 4)),
        ('"2024-08-03T19:00:00-05:00"', datetime(2024, 8, 4)),
        ('"2024-08-04T05:30:00+0530"', datetime(2024, 8, 4)),
        ('"2024-08-04T00:00:00Z"', datetime(2024, 8, 4)),
        ('"2024-08-04t00:00:00z"', datetime(2024, 8, 4)),
        ('"2024-08-04 00:00:00.5"', datetime(2024, 8, 4, 0, 0, 0, 500000)),
        ('"2024-08-04T00:00:00.1234567Z"', datetime(2024, 8, 4, 0, 0, 0, 123456)),
        ('"2024-08-04T10:30"', datetime(2024, 8, 4, 10, 30)),
        ('"2024-08-04"', datetime(2024, 8, 4)),
        ('" 2024-08-04 1:02:03 "', datetime(2024, 8, 4, 1, 2, 3)),
    ],
)
def test_timestamp_column_takes_the_api_form_and_iso_8601_in_utc(json_text, expected):
    assert_lands("last_updated", json_text, expected)


@pytest.mark.parametrize(
    "json_text",
    [
        '"2024-13-01"',
        '"2024-02-30 0:00:00"',
        '"2024-08-04 25:00:00"',
        '"not a date"',
        "1722729600",
        '"2024-08-04T00:00:00+25:00"',
        '"0001-01-01T00:00:00+01:00"',
        '"04/08/2024"',
    ],
)
def test_timestamp_column_keeps_what_is_not_a_real_moment_raw(json_text):
    assert_kept_raw("last_updated", json_text)


@pytest.mark.parametrize(
    "column", ["current_gpa", "credit_hours_earned", "at_risk_flag", "financial_aid_amount"]
)
@pytest.mark.parametrize("json_text", ['""', '"   "'])
def test_empty_text_in_a_non_text_column_is_null_not_invalid(column, json_text):
    assert_lands(column, json_text, None)


def test_empty_text_in_a_text_column_stays_empty_text():
    assert_lands("advisor_id", '""', "")


def test_a_number_in_a_text_column_lands_as_its_digits():
    assert_lands("student_id", "12345", "12345")


@pytest.mark.parametrize("json_text", ['{"first": "A"}', "[1, 2]", "true"])
def test_a_text_column_keeps_objects_lists_and_booleans_raw(json_text):
    assert_kept_raw("major_code", json_text)


def test_one_bad_value_keeps_every_other_field_of_the_record():
    row = land("current_gpa", '"N/A"')
    assert row["student_id"] == SAMPLE["student_id"]
    assert row["engagement_score"] == SAMPLE["engagement_score"]
    assert row["financial_aid_amount"] == Decimal(f"{SAMPLE['financial_aid_amount']:.2f}")


def test_several_bad_values_are_all_kept_raw_in_one_object():
    record = {**SAMPLE, "current_gpa": "N/A", "at_risk_flag": "maybe", "last_updated": "soon"}
    (row,) = SDK.load(connector.TABLE, [connector.to_row(record)])
    assert invalid_values(row) == {
        "current_gpa": "N/A",
        "at_risk_flag": "maybe",
        "last_updated": "soon",
    }


def test_a_record_whose_values_all_convert_clears_invalid_values():
    (row,) = SDK.load(connector.TABLE, [connector.to_row(dict(SAMPLE))])
    assert row[connector.INVALID_VALUES_COLUMN] is None
    assert connector.INVALID_VALUES_COLUMN in connector.to_row(dict(SAMPLE))


def test_problems_name_columns_and_reasons_never_values():
    shaped = connector.shape_record({**SAMPLE, "current_gpa": "SECRET-N/A", "last_updated": 5})
    assert shaped.problems == {"current_gpa": "not a number", "last_updated": "not a timestamp"}


# --- fields the API adds later -------------------------------------------------------------


def land_new_fields(*records: dict) -> list:
    return SDK.load(connector.TABLE, [connector.to_row({**SAMPLE, **r}) for r in records])


def test_a_new_float_field_lands_exactly_as_a_double():
    (row,) = land_new_fields({"retention_score": served("12345.67")})
    assert row["retention_score"] == 12345.67


def test_a_new_field_with_an_exponent_still_lands_as_a_double():
    rows = land_new_fields({"big": served("1e20")}, {"big": served("2.5E-3")})
    assert [row["big"] for row in rows] == [1e20, 0.0025]


def test_a_new_integer_field_too_large_for_bigint_lands_as_exact_text():
    (row,) = land_new_fields({"huge": served("123456789012345678901234567890")})
    assert row["huge"] == "123456789012345678901234567890"


def test_a_new_object_field_lands_as_json():
    (row,) = land_new_fields({"extra": served('{"terms": [1, 2.5], "ok": true}')})
    assert json.loads(row["extra"]) == {"terms": [1, 2.5], "ok": True}


def test_a_new_field_holding_nan_is_kept_raw():
    (row,) = land_new_fields({"ratio": served("NaN")})
    assert row["ratio"] is None
    assert invalid_values(row) == {"ratio": "nan"}


# --- items that cannot be keyed -----------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ("not a record", "not a JSON object"),
        ([1, 2], "not a JSON object"),
        (None, "not a JSON object"),
        ({"student_id": "S1"}, "missing record_id"),
        ({"record_id": None}, "null record_id"),
        ({"record_id": ""}, "empty record_id"),
        ({"record_id": "   "}, "empty record_id"),
        ({"record_id": True}, "record_id is not text or an integer"),
        ({"record_id": {"id": 1}}, "record_id is not text or an integer"),
    ],
)
def test_items_without_a_usable_record_id_are_named_unkeyed(item, reason):
    assert connector.unkeyed_reason(item) == reason


@pytest.mark.parametrize("record_id", ["abc", 42, " padded "])
def test_text_and_integer_record_ids_are_keyed(record_id):
    assert connector.unkeyed_reason({"record_id": record_id}) is None


def rejected(item, cursor="gAAAAABcursor"):
    row = connector.rejected_row(item, "not a JSON object", cursor, datetime(2026, 1, 1))
    (loaded,) = SDK.load(connector.REJECTED_TABLE, [row])
    return loaded


def test_a_rejected_item_lands_whole_as_json_with_reason_time_and_cursor():
    item = served('{"record_id": null, "current_gpa": 3.25, "name": "Zoë"}')
    loaded = rejected(item)
    assert json.loads(loaded["raw_record"]) == {
        "record_id": None,
        "current_gpa": 3.25,
        "name": "Zoë",
    }
    assert loaded["reason"] == "not a JSON object"
    assert loaded["seen_at"].startswith("2026-01-01 00:00:00")
    assert loaded["source_cursor"] == "gAAAAABcursor"


def test_a_rejected_item_gets_the_same_key_each_time_it_is_read():
    first = rejected(served('{"record_id": "", "x": 1.50}'), cursor=None)
    again = rejected(served('{"x": 1.50, "record_id": ""}'), cursor="gAAAAABother")
    assert first["rejection_id"] == again["rejection_id"]
    assert rejected("other")["rejection_id"] != first["rejection_id"]


def test_a_rejected_non_object_lands_as_its_json_value():
    assert json.loads(rejected(served('"garbage"'))["raw_record"]) == "garbage"
