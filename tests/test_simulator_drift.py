"""Drift modes and expected(): the value formats the real API changed to, and the truth a
connector must land from them, observed over real HTTP on loopback."""

from __future__ import annotations

import dataclasses
import json
import re
import selectors
import struct
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import requests

from hed_simulator import (
    DEMO_API_KEY,
    DRIFT_MODES,
    FIELD_KINDS,
    RECORD_FIELDS,
    REPRESENTATION_MODES,
    HedSimulator,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 10
ALL_RECORDS = 600
# A share-of-records check on 600 records: 0.3 +- 0.1 is over 5 standard deviations wide.
RATE = 0.3
RATE_TOLERANCE = 0.1
ISO_TIMESTAMP = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{1,2}:\d{2}:\d{2})"
    r"(?:\.(?P<fraction>\d+))?(?P<zone>Z|[+-]\d{2}:\d{2})?"
)
DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
TRUE_TEXT = {"true", "t", "yes", "1"}
FALSE_TEXT = {"false", "f", "no", "0"}
# How each iso-timestamps spelling looks; every one must be served.
ISO_SPELLINGS = {
    "plus two hours": re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+02:00"),
    "zulu": re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"),
    "minus five hours": re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-05:00"),
    "seven fractional digits": re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z"),
    "T without zone": re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"),
    "date only": DATE_ONLY,
}


def fetch_all(url: str) -> list[Any]:
    """Every item a client pages through, decoded from the body bytes as UTF-8 JSON."""
    items: list[Any] = []
    cursor = None
    with requests.Session() as session:
        session.headers["x-api-key"] = DEMO_API_KEY
        while True:
            params = {"page_size": 200, **({"cursor": cursor} if cursor else {})}
            response = session.get(f"{url}/hed_data", params=params, timeout=TIMEOUT)
            body = json.loads(response.content)
            items.extend(body["hed_records"])
            cursor = body["next_cursor"]
            if not body["has_more"]:
                return items


def standard_timestamp(value: str) -> str:
    """A served timestamp spelling back in the API's form, as UTC (the contract's rule)."""
    text = value.strip()
    if DATE_ONLY.fullmatch(text):
        moment = datetime.fromisoformat(text)
    else:
        match = ISO_TIMESTAMP.fullmatch(text)
        assert match, f"not a timestamp spelling: {value!r}"
        hour, rest = match["time"].split(":", 1)
        fraction = f".{match['fraction'][:6].ljust(6, '0')}" if match["fraction"] else ""
        zone = {"Z": "+00:00", None: ""}.get(match["zone"], match["zone"])
        moment = datetime.fromisoformat(f"{match['date']}T{int(hour):02d}:{rest}{fraction}{zone}")
        if moment.tzinfo is not None:
            moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return f"{moment:%Y-%m-%d} {moment.hour}:{moment:%M:%S}"


def standard_count(value: Any) -> int:
    number = float(value.strip()) if isinstance(value, str) else value
    assert number == int(number), f"not integral: {value!r}"
    return int(number)


def standard_boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        assert value in (0, 1)
        return bool(value)
    text = value.strip().lower()
    assert text in TRUE_TEXT | FALSE_TEXT, f"not a boolean spelling: {value!r}"
    return text in TRUE_TEXT


def to_standard(column: str, value: Any) -> Any:
    """The contract's normalisation of a representation-mode value (a reference, for tests)."""
    kind = FIELD_KINDS.get(column)
    if kind == "timestamp":
        return standard_timestamp(value)
    if kind in ("double", "money"):
        return float(value.strip()) if isinstance(value, str) else value
    if kind == "count":
        return standard_count(value)
    if kind == "boolean":
        return standard_boolean(value)
    return value


def served_values(items: list[Any], column: str) -> list[Any]:
    return [item[column] for item in items if isinstance(item, dict) and column in item]


# --- no drift ---


def test_without_drift_expected_rows_are_the_records_with_nothing_invalid_or_rejected(
    simulator: HedSimulator,
) -> None:
    expected = simulator.expected()
    assert expected.rows == {record["record_id"]: record for record in simulator.records()}
    assert expected.invalid == {}
    assert expected.rejected == []


def test_expected_is_a_frozen_snapshot(simulator: HedSimulator) -> None:
    expected = simulator.expected()
    with pytest.raises(dataclasses.FrozenInstanceError):
        expected.rows = {}  # type: ignore[misc]


def test_clear_drift_serves_the_standard_records_again(make_simulator: Any) -> None:
    plain = make_simulator(records=50).records()
    sim = make_simulator(records=50)
    sim.set_drift(DRIFT_MODES)
    sim.clear_drift()
    assert fetch_all(sim.url) == plain


# --- every mode: pages, records() and expected() agree ---


@pytest.mark.parametrize("mode", DRIFT_MODES)
def test_pages_records_and_expected_agree(simulator: HedSimulator, mode: str) -> None:
    simulator.set_drift(mode, rate=0.5, seed=7)
    served = fetch_all(simulator.url)
    expected = simulator.expected()
    keyed = [item for item in served if item not in expected.rejected]
    assert served == simulator.records()
    assert len(keyed) + len(expected.rejected) == ALL_RECORDS
    assert [item["record_id"] for item in keyed] == list(expected.rows)
    for item in keyed:
        row = expected.rows[item["record_id"]]
        assert list(row) == list(item)
        invalid = expected.invalid.get(item["record_id"], {})
        assert all(item[column] == raw and row[column] is None for column, raw in invalid.items())


@pytest.mark.parametrize("mode", sorted(REPRESENTATION_MODES))
def test_representation_mode_values_convert_back_to_the_truth(
    simulator: HedSimulator, mode: str
) -> None:
    simulator.set_drift(mode)
    expected = simulator.expected()
    served = fetch_all(simulator.url)
    assert expected.invalid == {}
    assert expected.rejected == []
    for item in served:
        converted = {column: to_standard(column, value) for column, value in item.items()}
        assert converted == expected.rows[item["record_id"]]


@pytest.mark.parametrize("mode", sorted(REPRESENTATION_MODES - {"no-charset"}))
def test_representation_mode_truth_is_the_undrifted_record(make_simulator: Any, mode: str) -> None:
    plain = make_simulator(records=100, seed=5).records()
    drifted = make_simulator(records=100, seed=5)
    drifted.set_drift(mode)
    assert drifted.records() != plain
    assert drifted.expected().rows == {record["record_id"]: record for record in plain}


def test_drift_rate_is_the_share_of_records_affected(simulator: HedSimulator) -> None:
    simulator.set_drift("string-booleans", rate=RATE, seed=1)
    flags = served_values(simulator.records(), "at_risk_flag")
    share = sum(type(flag) is not bool for flag in flags) / len(flags)
    assert abs(share - RATE) < RATE_TOLERANCE


def test_drift_rate_zero_changes_nothing(simulator: HedSimulator) -> None:
    plain = simulator.records()
    simulator.set_drift(DRIFT_MODES, rate=0.0)
    assert fetch_all(simulator.url) == plain


def test_same_drift_seed_repeats_exactly_and_another_seed_differs(make_simulator: Any) -> None:
    def drifted(seed: int) -> list[Any]:
        sim = make_simulator(records=200, seed=42)
        sim.set_drift(("iso-timestamps", "invalid-values"), rate=0.5, seed=seed)
        return sim.records()

    assert drifted(3) == drifted(3)
    assert drifted(3) != drifted(4)


def drift_pattern(item: dict[str, Any], invalid: dict[str, Any]) -> tuple[bool, frozenset]:
    """Whether a record's numbers are text, and which of its columns are invalid."""
    return type(item["credit_hours_earned"]) is str, frozenset(invalid)


def test_an_updated_record_drifts_by_its_new_version_and_still_agrees(
    simulator: HedSimulator,
) -> None:
    simulator.set_drift(("string-numbers", "invalid-values"), rate=0.5, seed=2)
    before = simulator.expected()
    patterns = {
        item["record_id"]: drift_pattern(item, before.invalid.get(item["record_id"], {}))
        for item in simulator.records()
    }
    updated = simulator.add_changes(updated=40)["updated"]
    after = simulator.expected()
    tail = fetch_all(simulator.url)[-40:]
    assert [item["record_id"] for item in tail] == updated
    changed = 0
    for item in tail:
        invalid = after.invalid.get(item["record_id"], {})
        row = after.rows[item["record_id"]]
        for column, value in item.items():
            assert row[column] == (None if column in invalid else to_standard(column, value))
        changed += drift_pattern(item, invalid) != patterns[item["record_id"]]
    assert changed > 0


def test_unknown_drift_mode_or_rate_is_refused(simulator: HedSimulator) -> None:
    with pytest.raises(ValueError, match="unknown drift mode"):
        simulator.set_drift(("iso-timestamps", "emoji"))
    with pytest.raises(ValueError, match="rate"):
        simulator.set_drift("unkeyed", rate=1.5)


# --- each mode's spellings ---


def test_iso_timestamps_serve_every_spelling(simulator: HedSimulator) -> None:
    simulator.set_drift("iso-timestamps")
    values = [
        value
        for column in ("enrollment_date", "last_login_date", "last_updated")
        for value in served_values(simulator.records(), column)
    ]
    for name, pattern in ISO_SPELLINGS.items():
        assert any(pattern.fullmatch(value) for value in values), name


def test_iso_timestamp_offsets_hold_the_apis_utc_value(simulator: HedSimulator) -> None:
    truth = {record["record_id"]: record for record in simulator.records()}
    simulator.set_drift("iso-timestamps")
    offsets = [
        (item["record_id"], column, item[column])
        for item in simulator.records()
        for column in ("last_login_date", "last_updated")
        if item[column].endswith(("+02:00", "-05:00"))
    ]
    assert offsets
    for record_id, column, value in offsets:
        local = datetime.fromisoformat(value)
        utc = local.astimezone(timezone.utc).replace(tzinfo=None)
        assert utc == datetime.strptime(truth[record_id][column], "%Y-%m-%d %H:%M:%S")
        assert local.replace(tzinfo=None) != utc  # the spelling really differs


def test_iso_date_only_is_served_only_for_midnight_values(simulator: HedSimulator) -> None:
    simulator.set_drift("iso-timestamps")
    expected = simulator.expected()
    for item in simulator.records():
        for column in ("enrollment_date", "last_login_date", "last_updated"):
            if DATE_ONLY.fullmatch(item[column]):
                assert expected.rows[item["record_id"]][column].endswith(" 0:00:00")


def test_string_numbers_serve_every_number_as_text_in_each_spelling(
    simulator: HedSimulator,
) -> None:
    simulator.set_drift("string-numbers")
    items = simulator.records()
    numeric = [c for c, kind in FIELD_KINDS.items() if kind in ("double", "count", "money")]
    assert all(type(item[column]) is str for item in items for column in numeric)
    gpas = served_values(items, "current_gpa")
    counts = served_values(items, "credit_hours_attempted")
    money = served_values(items, "financial_aid_amount")
    assert any(re.fullmatch(r"\d\.\d0", gpa) for gpa in gpas)  # trailing zero, like "3.10"
    assert any(re.fullmatch(r"\d+", count) for count in counts)
    assert any(re.fullmatch(r"\d+\.0", count) for count in counts)
    assert any(re.fullmatch(r" \d+ ", count) for count in counts)
    assert all(re.fullmatch(r" ?\d+\.\d\d ?", amount) for amount in money)


def test_string_numbers_money_text_is_the_exact_amount(simulator: HedSimulator) -> None:
    truth = {record["record_id"]: record for record in simulator.records()}
    simulator.set_drift("string-numbers")
    for item in simulator.records():
        assert item["financial_aid_amount"].strip() == (
            f"{truth[item['record_id']]['financial_aid_amount']:.2f}"
        )


def test_string_booleans_serve_every_spelling_and_zero_one_integers(
    simulator: HedSimulator,
) -> None:
    simulator.set_drift("string-booleans")
    flags = served_values(simulator.records(), "at_risk_flag")
    texts = {flag for flag in flags if isinstance(flag, str)}
    integers = {flag for flag in flags if type(flag) is int}
    assert {text.lower() for text in texts} == TRUE_TEXT | FALSE_TEXT
    assert any(text.isupper() and text.isalpha() for text in texts)
    assert any(text.istitle() and len(text) > 1 for text in texts)
    assert integers == {0, 1}


def test_invalid_values_serve_one_unconvertible_value_per_record(
    simulator: HedSimulator,
) -> None:
    plain = {record["record_id"]: record for record in simulator.records()}
    simulator.set_drift("invalid-values")
    expected = simulator.expected()
    assert set(expected.invalid) == set(plain)
    for record_id, invalid in expected.invalid.items():
        (column, raw), *others = invalid.items()
        assert others == []
        assert raw != plain[record_id][column]
        assert expected.rows[record_id] == {**plain[record_id], column: None}


def test_invalid_values_include_each_documented_kind(simulator: HedSimulator) -> None:
    simulator.set_drift("invalid-values")
    raws = [
        (column, raw)
        for invalid in simulator.expected().invalid.values()
        for column, raw in invalid.items()
    ]
    assert ("current_gpa", "N/A") in raws
    assert ("at_risk_flag", "maybe") in raws
    assert ("financial_aid_amount", "lots") in raws
    assert any(raw == "2024-13-01 0:00:00" for _, raw in raws)
    assert any(raw == "not a date" for _, raw in raws)
    assert any(isinstance(raw, str) and re.fullmatch(r"\d+abc", raw) for _, raw in raws)
    assert {column for column, _ in raws} >= {"enrollment_date", "last_login_date"}


def test_no_charset_serves_utf8_text_plain_without_charset(simulator: HedSimulator) -> None:
    simulator.set_drift("no-charset")
    response = requests.get(
        f"{simulator.url}/hed_data",
        params={"page_size": 200},
        headers={"x-api-key": DEMO_API_KEY},
        timeout=TIMEOUT,
    )
    standings = {record["academic_standing"] for record in response.json()["hed_records"]}
    decoded = json.loads(response.content.decode("utf-8"))
    assert response.headers["Content-Type"] == "text/plain"
    assert "\u2019".encode() in response.content  # raw UTF-8, not a \u escape
    assert decoded["hed_records"] == simulator.records()[:200]
    assert not any("\u2019" in standing for standing in standings)  # requests' Latin-1 guess


def test_no_charset_truth_holds_non_ascii_text_inside_and_outside_latin1(
    simulator: HedSimulator,
) -> None:
    simulator.set_drift("no-charset")
    standings = {row["academic_standing"] for row in simulator.expected().rows.values()}
    assert "Dean\u2019s List \u2013 Mention Tr\u00e8s Bien" in standings
    for standing in standings:
        assert any("\x7f" < char <= "\xff" for char in standing)  # é, è: inside Latin-1
        assert any(char > "\xff" for char in standing)  # U+2019 or U+2013: outside it


def test_unkeyed_serves_every_kind_of_unkeyable_item(simulator: HedSimulator) -> None:
    simulator.set_drift("unkeyed")
    items = fetch_all(simulator.url)
    objects = [item for item in items if isinstance(item, dict)]
    assert any("record_id" not in item for item in objects)
    assert {item["record_id"] for item in objects if "record_id" in item} == {None, "", "   "}
    assert any(isinstance(item, str) for item in items)
    assert any(isinstance(item, list) for item in items)


def test_unkeyed_items_are_all_rejected_and_distinct(simulator: HedSimulator) -> None:
    simulator.set_drift("unkeyed")
    expected = simulator.expected()
    canonical = {json.dumps(item, sort_keys=True) for item in expected.rejected}
    assert expected.rows == {}
    assert expected.rejected == fetch_all(simulator.url)
    assert len(canonical) == ALL_RECORDS


def test_new_fields_add_a_double_that_32_bit_floats_cannot_hold_and_an_int(
    simulator: HedSimulator,
) -> None:
    simulator.set_drift("new-fields")
    expected = simulator.expected()
    for item in fetch_all(simulator.url):
        score, visits = item["retention_score"], item["library_visits"]
        as_float32 = struct.unpack("f", struct.pack("f", score))[0]
        assert tuple(item)[: len(RECORD_FIELDS)] == RECORD_FIELDS
        assert type(score) is float and round(score, 2) == score and as_float32 != score
        assert type(visits) is int
        assert expected.rows[item["record_id"]] == item


# --- command line ---


def read_first_line(process: subprocess.Popen, timeout: float) -> str:
    """One stdout line, without hanging the test if the process never prints."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError("simulator printed nothing")
    return process.stdout.readline().strip()


def test_cli_drift_flags_serve_what_set_drift_serves(make_simulator: Any) -> None:
    reference = make_simulator(records=60, seed=42)
    reference.set_drift(("iso-timestamps", "string-booleans"), rate=0.5, seed=3)
    command = [
        *(sys.executable, "-m", "hed_simulator", "--records", "60"),
        *("--drift", "iso-timestamps,string-booleans", "--drift-rate", "0.5"),
        *("--drift-seed", "3"),
    ]
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        served = fetch_all(read_first_line(process, TIMEOUT))
    finally:
        process.terminate()
        process.communicate(timeout=TIMEOUT)
    assert served == reference.records()


def test_cli_unknown_drift_mode_exits_2_naming_the_modes() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hed_simulator", "--drift", "iso-timestamps,emoji"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert "emoji" in result.stderr
    assert "new-fields" in result.stderr
    assert result.stdout == ""


# --- corrupt_record and the truth ---


def test_expected_takes_corrupted_fields_as_served_and_unkeyed_ones_as_rejected(
    simulator: HedSimulator,
) -> None:
    first, second = simulator.records()[:2]
    simulator.corrupt_record(first["record_id"], set={"current_gpa": "abc"})
    simulator.corrupt_record(second["record_id"], set={"record_id": None})
    expected = simulator.expected()
    assert expected.rows[first["record_id"]] == {**first, "current_gpa": "abc"}
    assert expected.rejected == [{**second, "record_id": None}]
    assert len(expected.rows) == ALL_RECORDS - 1
