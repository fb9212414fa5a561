"""Faults for the connector's retry classification: chosen failure statuses, scheduled
outages (503 or refused connections), bodies that do not decode, and bodies trickled a byte
at a time. Real HTTP on loopback."""

from __future__ import annotations

import http.client
import selectors
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from hed_simulator import DEMO_API_KEY, HedSimulator

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 10
# Outages in tests are short; the bounds below are the behaviour (down for S, then up).
OUTAGE_SECONDS = 1.5
POLL_SECONDS = 0.05
# How late recovery may be noticed on a busy two-core machine, on top of the outage itself.
RECOVERY_SLACK_SECONDS = 1.5


def get_page(url: str, session: Any = requests, key: str | None = DEMO_API_KEY) -> Any:
    headers = {"x-api-key": key} if key is not None else {}
    return session.get(f"{url}/hed_data", params={"page_size": 5}, headers=headers, timeout=5)


def status_or_error(url: str, session: Any = requests) -> int | str:
    """The status, or "refused" / "dropped" for connection failures."""
    try:
        return get_page(url, session).status_code
    except requests.exceptions.ConnectionError as error:
        return "refused" if "refused" in str(error).lower() else "dropped"


def wait_for_recovery(url: str, deadline_seconds: float) -> float:
    """Poll with fresh connections until a 200; the monotonic time it came."""
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if status_or_error(url) == 200:
            return time.monotonic()
        time.sleep(POLL_SECONDS)
    raise AssertionError(f"no recovery within {deadline_seconds} s")


def connect_raw(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=TIMEOUT)


# Trickled bytes in tests are this far apart: far enough that a read sees one byte at a time.
TRICKLE_SECONDS = 0.05


def read_trickled_page(url: str, byte_count: int) -> tuple[int, list[bytes]]:
    """GET one page over a raw keep-alive socket: the status, then each recv of the body's
    first `byte_count` bytes, as they came."""
    connection = connect_raw(url)
    try:
        request = (
            f"GET /hed_data?page_size=1 HTTP/1.1\r\nHost: x\r\nx-api-key: {DEMO_API_KEY}\r\n\r\n"
        )
        connection.sendall(request.encode("ascii"))
        head = b""
        while b"\r\n\r\n" not in head:
            head += connection.recv(1)
        reads = []
        while sum(map(len, reads)) < byte_count:
            reads.append(connection.recv(1024))
        return int(head.split()[1]), reads
    finally:
        connection.close()


# --- trickle ---


def test_trickle_sends_the_headers_then_the_body_a_byte_at_a_time(simulator: HedSimulator) -> None:
    simulator.set_faults(trickle_rate=1.0, trickle_seconds=TRICKLE_SECONDS)
    status, reads = read_trickled_page(simulator.url, 5)
    assert status == 200
    assert [len(chunk) for chunk in reads] == [1] * 5
    assert [r.fault for r in simulator.requests] == ["trickle"]


def test_trickle_rate_is_the_share_of_trickled_pages(simulator: HedSimulator) -> None:
    simulator.set_faults(trickle_rate=0.5, trickle_seconds=0, fault_seed=3)
    statuses = [get_page(simulator.url).status_code for _ in range(40)]
    trickled = sum(r.fault == "trickle" for r in simulator.requests)
    assert statuses == [200] * 40
    assert 10 <= trickled <= 30


def test_trickle_spares_error_answers(simulator: HedSimulator) -> None:
    simulator.set_faults(trickle_rate=1.0, trickle_seconds=TRICKLE_SECONDS)
    assert get_page(simulator.url, key="wrong").status_code == 401
    assert [r.fault for r in simulator.requests] == [None]


def test_trickle_does_not_shift_the_other_faults_sequence(simulator: HedSimulator) -> None:
    simulator.set_faults(fail_rate=0.5, fault_seed=9)
    plain = [status_or_error(simulator.url) for _ in range(20)]
    simulator.set_faults(fail_rate=0.5, trickle_rate=1.0, trickle_seconds=0, fault_seed=9)
    trickled = [status_or_error(simulator.url) for _ in range(20)]
    assert trickled == plain


@pytest.mark.parametrize(
    "faults", [{"trickle_rate": 1.5}, {"trickle_rate": -0.1}, {"trickle_seconds": -1}]
)
def test_trickle_settings_out_of_range_are_refused(
    simulator: HedSimulator, faults: dict[str, float]
) -> None:
    with pytest.raises(ValueError, match="trickle_"):
        simulator.set_faults(**faults)


# --- fail_statuses ---


@pytest.mark.parametrize("status", [408, 425, 502])
def test_fail_statuses_picks_the_failure_status(simulator: HedSimulator, status: int) -> None:
    simulator.set_faults(fail_rate=1.0, fail_statuses=(status,))
    responses = [get_page(simulator.url) for _ in range(4)]
    assert [response.status_code for response in responses] == [status] * 4
    assert all(set(response.json()) == {"error"} for response in responses)
    assert [info.fault for info in simulator.requests] == ["fail"] * 4


def test_fail_statuses_mixes_the_given_statuses(simulator: HedSimulator) -> None:
    simulator.set_faults(fail_rate=1.0, fail_statuses=(502, 504), fault_seed=1)
    statuses = {get_page(simulator.url).status_code for _ in range(20)}
    assert statuses == {502, 504}


@pytest.mark.parametrize("statuses", [(), (200,), (302,), (600,)])
def test_fail_statuses_must_be_http_error_statuses(
    simulator: HedSimulator, statuses: tuple[int, ...]
) -> None:
    with pytest.raises(ValueError, match="fail_statuses"):
        simulator.set_faults(fail_statuses=statuses)


def test_clear_faults_restores_the_default_fail_statuses(simulator: HedSimulator) -> None:
    simulator.set_faults(fail_rate=1.0, fail_statuses=(425,))
    simulator.clear_faults()
    simulator.set_faults(fail_rate=1.0)
    assert {get_page(simulator.url).status_code for _ in range(10)} <= {500, 503}


# --- 503 outage ---


def test_outage_503_starts_after_n_requests_and_answers_every_path(
    simulator: HedSimulator,
) -> None:
    simulator.schedule_outage(after_requests=2, seconds=30, mode="503")
    before = [get_page(simulator.url).status_code for _ in range(2)]
    during = [
        get_page(simulator.url),
        get_page(simulator.url, key="wrong"),
        requests.get(f"{simulator.url}/hed_api_spec", timeout=TIMEOUT),
        requests.post(
            f"{simulator.url}/_simulator/changes",
            json={"new": 1},
            headers={"x-api-key": DEMO_API_KEY},
            timeout=TIMEOUT,
        ),
    ]
    assert before == [200, 200]
    assert [response.status_code for response in during] == [503] * 4
    assert all(response.json() == {"error": "Service Unavailable"} for response in during)
    assert simulator.record_count == 600  # the control endpoint was down too


def test_outage_requests_are_logged_with_fault_outage(simulator: HedSimulator) -> None:
    simulator.schedule_outage(after_requests=1, seconds=30)
    for _ in range(3):
        get_page(simulator.url)
    log = [(info.status, info.fault) for info in simulator.requests]
    assert log == [(200, None), (503, "outage"), (503, "outage")]


def test_outage_503_lasts_its_seconds_then_recovers(simulator: HedSimulator) -> None:
    simulator.schedule_outage(after_requests=1, seconds=OUTAGE_SECONDS)
    before_last_good = time.monotonic()
    assert get_page(simulator.url).status_code == 200
    after_last_good = time.monotonic()
    assert get_page(simulator.url).status_code == 503
    recovered = wait_for_recovery(simulator.url, OUTAGE_SECONDS + RECOVERY_SLACK_SECONDS)
    assert recovered - before_last_good >= OUTAGE_SECONDS
    assert recovered - after_last_good < OUTAGE_SECONDS + RECOVERY_SLACK_SECONDS


def test_outage_after_zero_requests_starts_at_once(simulator: HedSimulator) -> None:
    simulator.schedule_outage(after_requests=0, seconds=30)
    assert get_page(simulator.url).status_code == 503


def test_outage_counts_only_data_requests(simulator: HedSimulator) -> None:
    simulator.schedule_outage(after_requests=1, seconds=30)
    requests.get(f"{simulator.url}/hed_api_spec", timeout=TIMEOUT)
    requests.get(f"{simulator.url}/nope", timeout=TIMEOUT)
    assert get_page(simulator.url).status_code == 200
    assert get_page(simulator.url).status_code == 503


def test_outage_takes_precedence_over_queued_responses_and_keeps_them(
    simulator: HedSimulator,
) -> None:
    simulator.queue_response(status=418, body={"error": "teapot"})
    simulator.schedule_outage(after_requests=0, seconds=30)
    assert get_page(simulator.url).status_code == 503
    simulator.clear_faults()
    assert get_page(simulator.url).status_code == 418


def test_clear_faults_ends_a_503_outage(simulator: HedSimulator) -> None:
    simulator.schedule_outage(after_requests=0, seconds=30)
    simulator.clear_faults()
    assert get_page(simulator.url).status_code == 200


def test_schedule_outage_refuses_bad_arguments(simulator: HedSimulator) -> None:
    with pytest.raises(ValueError, match="mode"):
        simulator.schedule_outage(after_requests=1, seconds=1, mode="teapot")
    with pytest.raises(ValueError, match="seconds"):
        simulator.schedule_outage(after_requests=1, seconds=0)
    with pytest.raises(ValueError, match="start"):
        HedSimulator(records=1).schedule_outage(after_requests=1, seconds=1, mode="refuse")


# --- refuse outage ---


def test_outage_refuse_refuses_tcp_connections_then_listens_on_the_same_port(
    simulator: HedSimulator,
) -> None:
    url = simulator.url
    simulator.schedule_outage(after_requests=1, seconds=OUTAGE_SECONDS, mode="refuse")
    before_last_good = time.monotonic()
    assert get_page(url).status_code == 200
    after_last_good = time.monotonic()
    time.sleep(0.3)  # the listener closes in the background right after that answer
    with pytest.raises(ConnectionRefusedError):
        connect_raw(url).close()
    assert status_or_error(url) == "refused"
    recovered = wait_for_recovery(url, OUTAGE_SECONDS + RECOVERY_SLACK_SECONDS)
    assert simulator.url == url
    assert recovered - before_last_good >= OUTAGE_SECONDS
    assert recovered - after_last_good < OUTAGE_SECONDS + RECOVERY_SLACK_SECONDS


def test_outage_refuse_closes_open_keep_alive_connections(simulator: HedSimulator) -> None:
    parts = urlsplit(simulator.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=TIMEOUT)
    headers = {"x-api-key": DEMO_API_KEY}
    connection.request("GET", "/hed_data?page_size=1", headers=headers)
    assert connection.getresponse().read()  # the pooled connection is open and idle now
    simulator.schedule_outage(after_requests=1, seconds=30, mode="refuse")
    assert get_page(simulator.url).status_code == 200  # another connection starts it
    connection.sock.settimeout(TIMEOUT)
    try:
        assert connection.sock.recv(1) == b""  # end of stream, without asking anything
    finally:
        connection.close()


def test_stop_during_a_refuse_outage_returns_promptly_and_stays_down() -> None:
    sim = HedSimulator(records=10)
    url = sim.start()
    sim.schedule_outage(after_requests=0, seconds=30, mode="refuse")
    time.sleep(0.3)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 5
    assert status_or_error(url) == "refused"


# --- bodies that do not decode ---


def test_gzip_header_on_a_plain_body_is_a_content_decoding_error(
    simulator: HedSimulator,
) -> None:
    simulator.queue_response(
        status=200, body='{"hed_records": []}', headers={"Content-Encoding": "gzip"}
    )
    with pytest.raises(requests.exceptions.ContentDecodingError):
        get_page(simulator.url)


def test_gzip_header_on_a_plain_json_body_is_a_content_decoding_error(
    simulator: HedSimulator,
) -> None:
    page = {"hed_records": [], "next_cursor": "x", "has_more": False}
    simulator.queue_response(status=200, body=page, headers={"Content-Encoding": "gzip"})
    with pytest.raises(requests.exceptions.ContentDecodingError):
        get_page(simulator.url)


# --- command line ---


def start_cli(*arguments: str) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "hed_simulator", "--records", "20", *arguments],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        if not selector.select(TIMEOUT):
            process.kill()
            raise AssertionError(f"simulator printed nothing: {process.communicate()[1]}")
    return process, process.stdout.readline().strip()


def stop_cli(process: subprocess.Popen) -> tuple[int, str]:
    process.terminate()
    _, stderr = process.communicate(timeout=TIMEOUT)
    return process.returncode, stderr


def test_cli_fail_statuses_flag() -> None:
    process, url = start_cli("--fail-rate", "1", "--fail-statuses", "425")
    try:
        statuses = [get_page(url).status_code for _ in range(3)]
    finally:
        returncode, stderr = stop_cli(process)
    assert statuses == [425] * 3
    assert (returncode, stderr) == (0, "")


def test_cli_trickle_flags() -> None:
    process, url = start_cli("--trickle-rate", "1", "--trickle-seconds", str(TRICKLE_SECONDS))
    try:
        status, reads = read_trickled_page(url, 3)
    finally:
        returncode, stderr = stop_cli(process)
    assert (status, [len(chunk) for chunk in reads]) == (200, [1, 1, 1])
    assert (returncode, stderr) == (0, "")


def test_cli_refuse_outage_flags() -> None:
    process, url = start_cli(
        *("--outage-after", "1", "--outage-seconds", "1", "--outage-mode", "refuse")
    )
    try:
        first = get_page(url).status_code
        time.sleep(0.3)
        during = status_or_error(url)
        wait_for_recovery(url, 1 + RECOVERY_SLACK_SECONDS)
    finally:
        returncode, stderr = stop_cli(process)
    assert (first, during) == (200, "refused")
    assert (returncode, stderr) == (0, "")


@pytest.mark.parametrize(
    "arguments",
    [
        ("--outage-seconds", "5"),
        ("--drift-rate", "0.5"),
        ("--tls-reset-rate", "0.5"),
        ("--fail-statuses", "5xx"),
        ("--outage-after", "1", "--outage-mode", "teapot"),
    ],
)
def test_cli_refuses_meaningless_or_malformed_fault_flags(arguments: tuple[str, ...]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hed_simulator", *arguments],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr
