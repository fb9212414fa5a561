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
from fivetran_connector_sdk_core.renaming import redshift_safe
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


def same_as_served(kept, json_text: str) -> bool:
    """A kept raw value equals what was served: numbers to the last digit sent (a double
    where it holds them exactly, else their own text), anything else as parsed."""
    sent = json.loads(json_text, parse_float=Decimal)
    if isinstance(sent, Decimal):
        return isinstance(kept, float | str) and Decimal(str(kept)) == sent
    return kept == sent


def assert_kept_raw(column: str, json_text: str) -> None:
    row = land(column, json_text)
    assert row[column] is None
    kept = invalid_values(row)
    assert list(kept) == [column]
    assert same_as_served(kept[column], json_text)
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


def test_a_new_field_holding_nan_is_kept_raw_as_the_token_sent():
    (row,) = land_new_fields({"ratio": served("NaN")})
    assert row.get("ratio") is None
    assert invalid_values(row) == {"ratio": "NaN"}


@pytest.mark.parametrize("json_text", ["1e400", "1e-400", "4.9e-324"])
def test_a_new_number_field_a_double_cannot_hold_is_kept_raw(json_text):
    (row,) = land_new_fields({"ratio": served(json_text)})
    assert row.get("ratio") is None
    assert same_as_served(invalid_values(row)["ratio"], json_text)


def test_a_raw_number_a_double_cannot_hold_keeps_every_digit():
    row = land("credit_hours_attempted", "1.10000000000000000001")
    assert invalid_values(row) == {"credit_hours_attempted": "1.10000000000000000001"}


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
    reason = connector.unkeyed_reason(item)
    row = connector.rejected_row(item, reason, cursor, datetime(2026, 1, 1))
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
    assert loaded["reason"] == "null record_id"
    assert loaded["seen_at"].startswith("2026-01-01 00:00:00")
    assert loaded["source_cursor"] == "gAAAAABcursor"


def test_a_rejected_item_gets_the_same_key_each_time_it_is_read():
    first = rejected(served('{"record_id": "", "x": 1.50}'), cursor=None)
    again = rejected(served('{"x": 1.50, "record_id": ""}'), cursor="gAAAAABother")
    assert first["rejection_id"] == again["rejection_id"]
    assert rejected("other")["rejection_id"] != first["rejection_id"]


def test_a_rejected_non_object_lands_as_its_json_value():
    assert json.loads(rejected(served('"garbage"'))["raw_record"]) == "garbage"


def test_rejected_items_that_differ_only_beyond_double_precision_get_different_keys():
    first = rejected(served('{"record_id": null, "x": 0.1}'))
    second = rejected(served('{"record_id": null, "x": 0.10000000000000000001}'))
    assert first["rejection_id"] != second["rejection_id"]
    assert json.loads(second["raw_record"])["x"] == "0.10000000000000000001"


# --- text a destination cannot store as sent ----------------------------------------------

LONE_SURROGATE = '"\\ud800 Zo\\u00eb"'  # JSON text: a lone surrogate, then valid text
NUL_TEXT = '"A\\u0000B"'


@pytest.mark.parametrize("json_text", [LONE_SURROGATE, NUL_TEXT])
def test_text_a_destination_cannot_store_as_sent_is_kept_raw(json_text):
    row = land("academic_standing", json_text)
    assert row["academic_standing"] is None
    assert list(invalid_values(row)) == ["academic_standing"]


def test_a_lone_surrogate_is_kept_as_an_escape():
    row = land("academic_standing", LONE_SURROGATE)
    assert invalid_values(row) == {"academic_standing": "\\ud800 Zo\u00eb"}


@pytest.mark.parametrize("json_text", [LONE_SURROGATE, NUL_TEXT])
def test_a_record_id_a_destination_cannot_store_is_rejected(json_text):
    item = served(f'{{"record_id": {json_text}}}')
    assert connector.unkeyed_reason(item) == "record_id is not valid text"
    assert json.loads(rejected(item)["raw_record"])["record_id"]


def test_a_new_text_field_with_a_lone_surrogate_is_kept_raw():
    (row,) = land_new_fields({"note": served(LONE_SURROGATE)})
    assert row.get("note") is None
    assert list(invalid_values(row)) == ["note"]


# --- fields whose names Fivetran would rename ----------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "currentGpa",
        "CurrentGPA",
        "current-gpa",
        "Current GPA",
        "score2Total",
        "_hed_invalid_values",
        "Ünïcödé",
        "9lives",
        "a__b",
        "\u00a7sign",
        "record_id",
    ],
)
def test_field_names_are_renamed_as_fivetran_renames_them(name):
    assert connector.destination_name(name) == redshift_safe(name)


def test_a_declared_field_sent_in_camel_case_still_lands_typed():
    record = {k: v for k, v in SAMPLE.items() if k != "current_gpa"}
    record["currentGpa"] = served('"3.25"')
    (row,) = SDK.load(connector.TABLE, [connector.to_row(record)])
    assert row["current_gpa"] == 3.25
    assert "currentGpa" not in row
    assert invalid_values(row) == {}


def test_a_field_that_would_land_in_a_declared_column_the_record_has_is_kept_raw():
    (row,) = land_new_fields({"CurrentGPA": served("1.5")})
    assert row["current_gpa"] == SAMPLE["current_gpa"]
    assert same_as_served(invalid_values(row)["CurrentGPA"], "1.5")


def test_two_new_fields_landing_in_one_column_keep_the_exact_name_and_the_other_raw():
    (row,) = land_new_fields({"Campus": "North", "campus": "Main"})
    assert row["campus"] == "Main"
    assert invalid_values(row) == {"Campus": "North"}


def test_a_served_field_named_like_the_connectors_own_column_is_kept_raw():
    shaped = connector.shape_record({**SAMPLE, "_hed_invalid_values": "from the API"})
    assert shaped.row[connector.INVALID_VALUES_COLUMN] == {"_hed_invalid_values": "from the API"}
