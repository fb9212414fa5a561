"""Behaviour of the local HED API simulator, observed over real HTTP on loopback."""

from __future__ import annotations

import json
import re
import selectors
import signal
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests

from hed_simulator import DEMO_API_KEY, RECORD_FIELDS, HedSimulator

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{1,2}:\d{2}:\d{2}$")
STANDINGS = {"Good Standing", "Dean's List", "Academic Warning", "Academic Probation"}
INT_FIELDS = (
    "credit_hours_attempted",
    "credit_hours_earned",
    "total_course_views",
    "assignment_submissions",
    "discussion_posts",
    "plagiarism_incidents",
    "intervention_count",
)
FLOAT_FIELDS = (
    "current_gpa",
    "financial_aid_amount",
    "avg_assignment_score",
    "course_completion_rate",
    "writing_quality_score",
    "engagement_score",
)
SCORE_FIELDS = ("avg_assignment_score", "writing_quality_score", "engagement_score")
# Generous bound for a loopback request; the CLI start-up wait uses it too.
TIMEOUT = 10


def get_page(
    sim: HedSimulator,
    cursor: str | None = None,
    page_size: Any = None,
    key: str | None = DEMO_API_KEY,
    session: Any = requests,
    timeout: float = TIMEOUT,
) -> requests.Response:
    """GET /hed_data the way a client would."""
    params = {"cursor": cursor, "page_size": page_size}  # requests drops None values
    headers = {"x-api-key": key} if key is not None else {}
    return session.get(f"{sim.url}/hed_data", params=params, headers=headers, timeout=timeout)


def page_through(url: str, cursor: str | None = None) -> tuple[list[dict], dict]:
    """Follow next_cursor until has_more is false; return all records and the last body."""
    records: list[dict] = []
    with requests.Session() as session:
        session.headers["x-api-key"] = DEMO_API_KEY
        while True:
            params = {"page_size": 200, **({"cursor": cursor} if cursor else {})}
            body = session.get(f"{url}/hed_data", params=params, timeout=TIMEOUT).json()
            records.extend(body["hed_records"])
            cursor = body["next_cursor"]
            if not body["has_more"]:
                return records, body


def end_cursor(sim: HedSimulator) -> str:
    """The cursor a completed full sync would have saved."""
    return page_through(sim.url)[1]["next_cursor"]


def parse_timestamp(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%d %H:%M:%S")


def read_first_line(process: subprocess.Popen, timeout: float) -> str:
    """Read one stdout line without hanging the test if the process never prints."""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise AssertionError("simulator printed nothing")
    return process.stdout.readline().strip()


# --- command line ---


def test_cli_prints_url_first_serves_600_records_and_exits_0_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "hed_simulator", "--port", "0"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = read_first_line(process, TIMEOUT)
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url)
        records, last = page_through(url)
        process.send_signal(signal.SIGTERM)
        rest_of_stdout, stderr = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert len({record["record_id"] for record in records}) == 600
    assert last["has_more"] is False
    assert last["next_cursor"]
    assert process.returncode == 0
    assert rest_of_stdout == ""
    assert stderr == ""


# --- paging and errors ---


def test_paging_yields_every_record_once_in_log_order(simulator: HedSimulator) -> None:
    records, _ = page_through(simulator.url)
    assert records == simulator.records()
    assert len({record["record_id"] for record in records}) == 600


def test_default_page_size_is_100(simulator: HedSimulator) -> None:
    body = get_page(simulator).json()
    assert len(body["hed_records"]) == 100
    assert body["has_more"] is True


def test_missing_api_key_gets_401(simulator: HedSimulator) -> None:
    response = get_page(simulator, key=None)
    assert response.status_code == 401
    assert "error" in response.json()


def test_wrong_api_key_gets_401(simulator: HedSimulator) -> None:
    response = get_page(simulator, key="not-the-key")
    assert response.status_code == 401
    assert "error" in response.json()


@pytest.mark.parametrize("page_size", [0, 201, "abc", "1.5", "-1"])
def test_invalid_page_size_gets_400(simulator: HedSimulator, page_size: Any) -> None:
    response = get_page(simulator, page_size=page_size)
    assert response.status_code == 400
    assert "error" in response.json()


@pytest.mark.parametrize("page_size", [1, 200])
def test_page_size_limits_are_accepted(simulator: HedSimulator, page_size: int) -> None:
    response = get_page(simulator, page_size=page_size)
    assert response.status_code == 200
    assert len(response.json()["hed_records"]) == page_size


def test_tampered_cursor_gets_invalid_cursor_400(simulator: HedSimulator) -> None:
    cursor = unquote(get_page(simulator).json()["next_cursor"])
    tampered = cursor[:20] + ("A" if cursor[20] != "A" else "B") + cursor[21:]
    response = get_page(simulator, cursor=tampered)
    assert response.status_code == 400
    assert response.json() == {"error": "Invalid cursor"}


def test_garbage_cursor_gets_invalid_cursor_400(simulator: HedSimulator) -> None:
    response = get_page(simulator, cursor="not a cursor!")
    assert response.status_code == 400
    assert response.json() == {"error": "Invalid cursor"}


def test_cursor_from_a_differently_seeded_simulator_is_invalid(make_simulator: Any) -> None:
    other = make_simulator(records=600, seed=7)
    cursor = get_page(other).json()["next_cursor"]
    response = get_page(make_simulator(records=600, seed=42), cursor=cursor)
    assert response.json() == {"error": "Invalid cursor"}


def test_unknown_path_gets_404_json(simulator: HedSimulator) -> None:
    response = requests.get(f"{simulator.url}/nope", timeout=TIMEOUT)
    assert response.status_code == 404
    assert response.json() == {"error": "Not found"}


def test_wrong_method_on_known_path_gets_405_json(simulator: HedSimulator) -> None:
    response = requests.delete(f"{simulator.url}/hed_data", timeout=TIMEOUT)
    assert response.status_code == 405
    assert "error" in response.json()


def test_cursor_looks_like_a_quoted_fernet_token(simulator: HedSimulator) -> None:
    cursor = get_page(simulator).json()["next_cursor"]
    assert cursor.startswith("gAAAAA")
    assert cursor.endswith("%3D%3D")
    assert re.fullmatch(r"[A-Za-z0-9_-]+={0,2}", unquote(cursor))


def test_cursor_is_accepted_quoted_and_unquoted(simulator: HedSimulator) -> None:
    quoted = get_page(simulator).json()["next_cursor"]
    from_quoted = get_page(simulator, cursor=quoted).json()
    from_unquoted = get_page(simulator, cursor=unquote(quoted)).json()
    assert from_quoted["hed_records"]
    assert from_quoted == from_unquoted


def test_keep_alive_session_reuses_one_connection(simulator: HedSimulator) -> None:
    with requests.Session() as session:
        for _ in range(3):
            assert get_page(simulator, session=session).status_code == 200
        pools = session.get_adapter(simulator.url).poolmanager.pools
        opened = sum(pools[key].num_connections for key in pools.keys())  # noqa: SIM118 - container isn't iterable
    assert opened == 1


# --- incremental changes ---


def test_resume_after_add_changes_yields_exactly_new_and_updated(
    simulator: HedSimulator,
) -> None:
    cursor = end_cursor(simulator)
    changes = simulator.add_changes(new=10, updated=5)
    records, last = page_through(simulator.url, cursor)
    ids = [record["record_id"] for record in records]
    assert len(changes["new"]) == 10
    assert len(changes["updated"]) == 5
    assert sorted(ids) == sorted(changes["new"] + changes["updated"])
    assert last["has_more"] is False


def test_resume_after_control_endpoint_changes_yields_them(simulator: HedSimulator) -> None:
    cursor = end_cursor(simulator)
    response = requests.post(
        f"{simulator.url}/_simulator/changes",
        json={"new": 10, "updated": 5},
        headers={"x-api-key": DEMO_API_KEY},
        timeout=TIMEOUT,
    )
    changes = response.json()
    records, _ = page_through(simulator.url, cursor)
    assert response.status_code == 200
    assert sorted(record["record_id"] for record in records) == sorted(
        changes["new"] + changes["updated"]
    )


def test_resume_without_changes_yields_empty_last_page(simulator: HedSimulator) -> None:
    body = get_page(simulator, cursor=end_cursor(simulator)).json()
    assert body["hed_records"] == []
    assert body["has_more"] is False
    assert body["next_cursor"]


def test_control_endpoint_requires_api_key(simulator: HedSimulator) -> None:
    url = f"{simulator.url}/_simulator/changes"
    response = requests.post(url, json={"new": 1}, timeout=TIMEOUT)
    assert response.status_code == 401
    assert simulator.record_count == 600


def test_control_endpoint_rejects_malformed_counts(simulator: HedSimulator) -> None:
    response = requests.post(
        f"{simulator.url}/_simulator/changes",
        json={"new": -1},
        headers={"x-api-key": DEMO_API_KEY},
        timeout=TIMEOUT,
    )
    assert response.status_code == 400
    assert "error" in response.json()


def test_updated_records_move_to_the_end_with_later_last_updated(
    simulator: HedSimulator,
) -> None:
    latest_before = max(parse_timestamp(r["last_updated"]) for r in simulator.records())
    updated = simulator.add_changes(updated=5)["updated"]
    tail = simulator.records()[-5:]
    assert [record["record_id"] for record in tail] == updated
    assert all(parse_timestamp(r["last_updated"]) > latest_before for r in tail)


def test_full_sync_after_changes_yields_each_record_once(simulator: HedSimulator) -> None:
    simulator.add_changes(new=20, updated=50)
    simulator.add_changes(updated=50)
    records, _ = page_through(simulator.url)
    assert len(records) == simulator.record_count == 620
    assert len({record["record_id"] for record in records}) == 620


def test_add_changes_is_deterministic_per_seed(make_simulator: Any) -> None:
    first = make_simulator(records=600, seed=3).add_changes(new=2, updated=5)
    second = make_simulator(records=600, seed=3).add_changes(new=2, updated=5)
    assert first == second


# --- faults ---


def test_fail_rate_one_answers_500_or_503(simulator: HedSimulator) -> None:
    simulator.set_faults(fail_rate=1.0)
    responses = [get_page(simulator) for _ in range(6)]
    assert {response.status_code for response in responses} <= {500, 503}
    assert all("error" in response.json() for response in responses)


def test_rate_limit_every_n_answers_429_with_retry_after(simulator: HedSimulator) -> None:
    simulator.set_faults(rate_limit_every=3, retry_after=2)
    responses = [get_page(simulator) for _ in range(6)]
    assert [response.status_code for response in responses] == [200, 200, 429] * 2
    assert responses[2].headers["Retry-After"] == "2"


def test_latency_delays_each_request(simulator: HedSimulator) -> None:
    simulator.set_faults(latency_ms=200)
    started = time.perf_counter()
    response = get_page(simulator)
    assert time.perf_counter() - started >= 0.2
    assert response.status_code == 200


def test_reset_rate_one_drops_the_connection_mid_response(simulator: HedSimulator) -> None:
    simulator.set_faults(reset_rate=1.0)
    broken = (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)
    with pytest.raises(broken):
        get_page(simulator)
    assert simulator.requests[-1].status is None
    assert simulator.requests[-1].fault == "reset"


def test_truncate_rate_one_sends_200_with_invalid_json(simulator: HedSimulator) -> None:
    simulator.set_faults(truncate_rate=1.0)
    response = get_page(simulator)
    assert response.status_code == 200
    assert len(response.content) == int(response.headers["Content-Length"])
    with pytest.raises(ValueError):
        json.loads(response.content)


def test_hang_rate_one_makes_a_short_read_timeout_expire(simulator: HedSimulator) -> None:
    simulator.set_faults(hang_rate=1.0, hang_seconds=5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        get_page(simulator, timeout=0.3)


def test_clear_faults_restores_normal_answers(simulator: HedSimulator) -> None:
    simulator.set_faults(fail_rate=1.0)
    simulator.clear_faults()
    assert get_page(simulator).status_code == 200


def test_set_faults_keeps_unspecified_settings(simulator: HedSimulator) -> None:
    simulator.set_faults(fail_rate=1.0)
    simulator.set_faults(latency_ms=1)
    assert get_page(simulator).status_code in (500, 503)


def test_faults_never_hit_the_control_endpoint(simulator: HedSimulator) -> None:
    simulator.set_faults(fail_rate=1.0, reset_rate=1.0, truncate_rate=1.0)
    response = requests.post(
        f"{simulator.url}/_simulator/changes",
        json={"new": 1},
        headers={"x-api-key": DEMO_API_KEY},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert len(response.json()["new"]) == 1


def test_fault_seed_makes_fault_sequence_reproducible(simulator: HedSimulator) -> None:
    def statuses() -> list[int]:
        simulator.set_faults(fail_rate=0.5, fault_seed=9)
        return [get_page(simulator, page_size=1).status_code for _ in range(12)]

    first = statuses()
    assert first == statuses()
    assert 200 in first
    assert {500, 503} & set(first)


def test_queue_response_replaces_the_next_answers_then_stops(simulator: HedSimulator) -> None:
    simulator.queue_response(status=403, body={"error": "Forbidden"}, times=2)
    statuses = [get_page(simulator, key=None).status_code for _ in range(2)]
    after = get_page(simulator)
    assert statuses == [403, 403]
    assert after.status_code == 200
    assert [info.fault for info in simulator.requests] == ["queued", "queued", None]


def test_queue_response_sends_text_bodies_as_is(simulator: HedSimulator) -> None:
    simulator.queue_response(status=200, body="<html>oops</html>", headers={"X-Test": "1"})
    response = get_page(simulator)
    assert response.text == "<html>oops</html>"
    assert response.headers["Content-Type"].startswith("text/plain")
    assert response.headers["X-Test"] == "1"


def test_corrupt_record_serves_altered_fields(simulator: HedSimulator) -> None:
    target = simulator.records()[3]["record_id"]
    simulator.corrupt_record(target, drop=("record_id",), set={"current_gpa": "abc"})
    served = get_page(simulator).json()["hed_records"][3]
    assert "record_id" not in served
    assert served["current_gpa"] == "abc"
    assert simulator.records()[3] == served


def test_request_log_describes_each_request(simulator: HedSimulator) -> None:
    cursor = get_page(simulator, page_size=5).json()["next_cursor"]
    get_page(simulator, cursor=cursor, key="wrong")
    first, second = simulator.requests
    assert (first.method, first.path, first.status) == ("GET", "/hed_data", 200)
    assert (first.page_size, first.cursor, first.fault, first.api_key_ok) == (5, None, None, True)
    assert (second.status, second.cursor, second.api_key_ok) == (401, cursor, False)
    simulator.clear_requests()
    assert simulator.requests == []


def test_stop_is_idempotent() -> None:
    with HedSimulator(records=10) as sim:
        url = sim.url
    sim.stop()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{url}/hed_data", timeout=TIMEOUT)


# --- record realism ---


def test_records_have_exactly_the_22_fields_with_their_types(simulator: HedSimulator) -> None:
    records = get_page(simulator, page_size=200).json()["hed_records"]
    assert len(RECORD_FIELDS) == 22
    for record in records:
        assert tuple(record) == RECORD_FIELDS
        assert all(type(record[field]) is int for field in INT_FIELDS)
        assert all(type(record[field]) is float for field in FLOAT_FIELDS)
        assert type(record["at_risk_flag"]) is bool


def test_values_are_in_realistic_ranges(simulator: HedSimulator) -> None:
    for record in simulator.records():
        assert 0.0 <= record["current_gpa"] <= 4.0
        assert 0 <= record["credit_hours_earned"] <= record["credit_hours_attempted"]
        assert record["academic_standing"] in STANDINGS
        assert 0.0 <= record["course_completion_rate"] <= 1.0
        assert all(0.0 <= record[field] <= 100.0 for field in SCORE_FIELDS)
        assert round(record["financial_aid_amount"], 2) == record["financial_aid_amount"]
        assert round(record["current_gpa"], 2) == record["current_gpa"]


def test_small_pools_and_repeat_students(simulator: HedSimulator) -> None:
    records = simulator.records()
    students = [record["student_id"] for record in records]
    assert len(set(students)) < len(students)
    assert len({record["major_code"] for record in records}) <= 12
    assert len({record["advisor_id"] for record in records}) <= 60


def test_timestamps_use_the_api_format_with_unpadded_hour(simulator: HedSimulator) -> None:
    fields = ("enrollment_date", "last_login_date", "last_updated")
    values = [record[field] for record in simulator.records() for field in fields]
    assert all(TIMESTAMP.match(value) for value in values)
    assert any(re.search(r" \d:", value) for value in values)
    assert not any(re.search(r" 0\d:", value) for value in values)


def test_last_login_is_not_after_last_updated(simulator: HedSimulator) -> None:
    for record in simulator.records():
        login = parse_timestamp(record["last_login_date"])
        assert login <= parse_timestamp(record["last_updated"])


def test_same_seed_gives_same_records_and_other_seed_differs(make_simulator: Any) -> None:
    first = make_simulator(records=50, seed=1).records()
    again = make_simulator(records=50, seed=1).records()
    other = make_simulator(records=50, seed=2).records()
    assert first == again
    assert {r["record_id"] for r in first}.isdisjoint(r["record_id"] for r in other)


def test_at_risk_students_have_lower_gpa(simulator: HedSimulator) -> None:
    records = simulator.records()
    at_risk = [r["current_gpa"] for r in records if r["at_risk_flag"]]
    others = [r["current_gpa"] for r in records if not r["at_risk_flag"]]
    assert at_risk
    assert others
    assert statistics.mean(at_risk) < statistics.mean(others)


# --- scale ---


def test_million_records_serve_first_and_later_pages_lazily(make_simulator: Any) -> None:
    sim = make_simulator(records=1_000_000, seed=42)
    cursor = None
    seen: set[str] = set()
    for _ in range(3):
        body = get_page(sim, cursor=cursor, page_size=200).json()
        seen.update(record["record_id"] for record in body["hed_records"])
        cursor = body["next_cursor"]
    assert len(seen) == 600
    assert body["has_more"] is True
    assert sim.record_count == 1_000_000
