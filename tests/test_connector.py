"""Specification of connector.py's sync, run in-process against the real simulator.

Operations are recorded instead of written to DuckDB (tests/test_connector_e2e.py covers
the SDK path), but every upserted row first goes through the SDK's own row encoding, so a
row the SDK would refuse fails here too. HTTP is real, over loopback, with faults injected
by the simulator. Time is a fake clock, so no test waits for backoff.
"""

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from ports import BlackholedPort, DribblingServer
from sdk_rows import SdkRowPath

import connector
from hed_simulator import DEMO_API_KEY

REPO_ROOT = Path(__file__).resolve().parent.parent
PAGE_SIZE = 100
RECORDS = 600
PREFETCH_WINDOW_S = 0.3  # how long a test gives a prefetcher to fetch more than it should
SHORT_TIMEOUT_S = 0.3  # the connector's timeouts, shortened so a timeout test takes seconds
SHORT_RETRY_BUDGET_S = 5.0  # fake seconds: a few attempts, each lasting a real SHORT_TIMEOUT_S
TRICKLE_SECONDS = 0.05  # between trickled bytes: a page would take minutes, each read is quick
WAIT_S = 10  # how long a test waits for a condition that comes in milliseconds
SDK = SdkRowPath()


class RecordingOps:
    """Stands in for the SDK's Operations: records what the connector emits. Each row is
    encoded as op.upsert does, and at each checkpoint the rows since the last one are
    staged and cast into DuckDB as the core does then, raising where either would."""

    def __init__(self):
        self.upserts = []
        self.unflushed = []
        self.checkpoints = []
        self.warnings = []
        self.rows_at_checkpoint = []
        self.on_upsert = None
        self.fail_checkpoints = False
        self.fail_at_checkpoint = None  # (number, message): that checkpoint fails, as the core's

    def upsert(self, table, data):
        SDK.encode(table, data)
        self.upserts.append((table, dict(data)))
        self.unflushed.append((table, dict(data)))
        if self.on_upsert:
            self.on_upsert(len(self.upserts))

    def checkpoint(self, state):
        if self.fail_at_checkpoint and self.fail_at_checkpoint[0] == len(self.checkpoints) + 1:
            self.fail_checkpoints = True  # after one failed operation the SDK fails them all
            raise RuntimeError(self.fail_at_checkpoint[1])
        if self.fail_checkpoints:
            raise RuntimeError("the SDK already failed this sync")
        for table in {table for table, _ in self.unflushed}:
            SDK.load(table, [row for name, row in self.unflushed if name == table])
        self.unflushed.clear()
        self.checkpoints.append(json.loads(json.dumps(state)))
        self.rows_at_checkpoint.append(len(self.upserts))

    def warning(self, message):
        self.warnings.append(message)

    def rows(self, table=connector.TABLE):
        return [row for name, row in self.upserts if name == table]

    def upserted_ids(self):
        return [row["record_id"] for row in self.rows()]


class FakeClock:
    """Time that moves only when the connector waits: records each backoff wait."""

    def __init__(self, on_sleep=None):
        self.now_s = 0.0
        self.sleeps = []
        self.on_sleep = on_sleep  # e.g. end a fault while the connector waits

    def now(self):
        return self.now_s

    def sleep(self, seconds, stop):
        self.sleeps.append(seconds)
        self.now_s += seconds
        if self.on_sleep:
            self.on_sleep()


@pytest.fixture(autouse=True)
def sdk_logging(monkeypatch):
    """The SDK sets its log level when it runs a connector; in-process tests set it here."""
    monkeypatch.setattr(connector.log, "LOG_LEVEL", connector.log.Level.INFO)


@pytest.fixture
def ops(monkeypatch):
    recorder = RecordingOps()
    monkeypatch.setattr(connector, "op", recorder)
    return recorder


@pytest.fixture
def clock():
    return FakeClock()


def settings_for(sim, **overrides):
    configuration = {
        "api_key": DEMO_API_KEY,
        "base_url": sim.url,
        "page_size": str(PAGE_SIZE),
        "checkpoint_interval": "100",
    }
    configuration.update(overrides)
    return configuration


def run_sync(sim, clock, state=None, **overrides):
    connector.sync(settings_for(sim, **overrides), state or {}, clock=clock)


def wait_for(condition, timeout=WAIT_S):
    """Poll until `condition()` holds; fail the test if it does not within `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def data_requests(sim):
    return [r for r in sim.requests if r.path == connector.DATA_PATH]


def source_ids(sim):
    return {record["record_id"] for record in sim.records()}


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("api_key", "", "'api_key' is required"),
        ("api_key", "YOUR_HED_API_KEY", "'api_key' still holds the placeholder"),
        ("page_size", "0", "'page_size' must be an integer from 1 to 200"),
        ("page_size", "201", "'page_size' must be an integer from 1 to 200"),
        ("page_size", "abc", "'page_size' must be an integer from 1 to 200"),
        ("checkpoint_interval", "0", "'checkpoint_interval' must be an integer of at least 1"),
        ("checkpoint_interval", "ten", "'checkpoint_interval' must be an integer of at least 1"),
        ("base_url", "ftp://example.com", "'base_url' must be an http(s) URL"),
        ("base_url", "not a url", "'base_url' must be an http(s) URL"),
        ("base_url", "http://api.example.edu", "'base_url' must use https"),
        ("base_url", "https://user:pw@api.example.edu", "'base_url' must not contain a user"),
        ("api_key", "key\u20ac", "'api_key' must be printable ASCII"),
        ("api_key", "first-half\nsecond-half", "'api_key' must be printable ASCII"),
    ],
)
def test_invalid_configuration_is_refused_naming_the_key(
    simulator, ops, clock, key, value, expected
):
    with pytest.raises(ValueError, match=re.escape(expected)):
        run_sync(simulator, clock, **{key: value})


def test_invalid_configuration_makes_no_request(simulator, ops, clock):
    with pytest.raises(ValueError):
        run_sync(simulator, clock, page_size="0")
    assert data_requests(simulator) == []


def test_missing_api_key_is_refused():
    with pytest.raises(ValueError, match="'api_key' is required"):
        connector.validate_configuration({"base_url": "https://api.example.edu"})


def test_non_string_configuration_value_is_refused():
    with pytest.raises(ValueError, match="'page_size' must be a string"):
        connector.validate_configuration({"api_key": "k", "page_size": 100})


def test_configuration_errors_never_quote_the_key():
    secret = "s3cret-key-value"
    for bad in ({"page_size": "0"}, {"base_url": "http://example.com"}, {"page_size": 5}):
        with pytest.raises(ValueError) as caught:
            connector.validate_configuration({"api_key": secret, **bad})
        assert secret not in str(caught.value)


def test_http_is_allowed_for_loopback_hosts():
    for url in ("http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"):
        settings = connector.validate_configuration({"api_key": "k", "base_url": url + "/"})
        assert settings.base_url == url


def test_defaults_apply_when_optional_keys_are_absent():
    settings = connector.validate_configuration({"api_key": "k"})
    assert (settings.base_url, settings.page_size, settings.checkpoint_interval) == (
        connector.DEFAULT_BASE_URL,
        100,
        100,
    )


def test_configuration_errors_never_quote_a_value_pasted_into_the_wrong_field():
    secret = "hed-live-s3cret"
    for field_name in ("base_url", "page_size", "checkpoint_interval"):
        with pytest.raises(ValueError) as caught:
            connector.validate_configuration({"api_key": "k", field_name: secret})
        assert secret not in str(caught.value)


def test_settings_repr_hides_the_key():
    assert "s3cret" not in repr(connector.validate_configuration({"api_key": "s3cret"}))


# --- pagination and state -----------------------------------------------------------------


def test_full_sync_upserts_every_record_exactly_once(simulator, ops, clock):
    run_sync(simulator, clock)
    ids = ops.upserted_ids()
    assert len(ids) == RECORDS
    assert set(ids) == source_ids(simulator)
    assert {table for table, _ in ops.upserts} == {"hed_records"}


def test_first_sync_starts_without_a_cursor_and_passes_cursors_back_verbatim(
    simulator, ops, clock
):
    run_sync(simulator, clock)
    sent = [r.cursor for r in data_requests(simulator)]
    assert sent[0] is None
    assert all(cursor for cursor in sent[1:])
    assert all(r.page_size == PAGE_SIZE for r in data_requests(simulator))


def test_final_state_holds_only_the_cursor_past_the_end_and_the_state_version(
    simulator, ops, clock
):
    run_sync(simulator, clock)
    final = ops.checkpoints[-1]
    assert list(final) == ["next_cursor", "state_version"]
    assert final["next_cursor"].startswith("gAAAAA")


def test_every_checkpoint_carries_the_state_version(simulator, ops, clock):
    run_sync(simulator, clock)
    assert len(ops.checkpoints) > 1
    assert {state["state_version"] for state in ops.checkpoints} == {connector.STATE_VERSION}


def test_an_empty_source_still_saves_the_state_version(make_simulator, ops, clock):
    run_sync(make_simulator(records=0), clock)
    (state,) = ops.checkpoints
    assert state["state_version"] == connector.STATE_VERSION


LAB_STATE_FIX = "Re-sync all historical data"


def lab_state_warnings(output):
    return [line for line in output.splitlines() if "no state_version" in line]


def test_a_lab_state_warns_once_with_the_fix_and_continues_from_its_cursor(
    simulator, ops, clock, capsys
):
    run_sync(simulator, clock, page_size="100", checkpoint_interval="200")
    lab_state = {"next_cursor": ops.checkpoints[0]["next_cursor"]}  # past 200 records
    capsys.readouterr()
    ops.upserts.clear()
    run_sync(simulator, clock, state=lab_state)
    (warning,) = lab_state_warnings(capsys.readouterr().out)
    assert LAB_STATE_FIX in warning and "for this connection" in warning
    assert "a table re-sync of hed_records" in warning
    assert "./debug_and_reset.sh --local --yes or fivetran reset" in warning
    assert len(ops.upserted_ids()) == RECORDS - 200
    assert ops.checkpoints[-1]["state_version"] == connector.STATE_VERSION


def test_a_lab_state_warning_never_names_the_key_or_a_record(simulator, ops, clock, capsys):
    run_sync(simulator, clock)
    cursor = ops.checkpoints[-1]["next_cursor"]
    capsys.readouterr()
    run_sync(simulator, clock, state={"next_cursor": cursor})
    (warning,) = lab_state_warnings(capsys.readouterr().out)
    record = simulator.records()[0]
    assert DEMO_API_KEY not in warning
    assert cursor not in warning
    assert record["record_id"] not in warning and record["student_id"] not in warning


@pytest.mark.parametrize(
    "state",
    [{}, {"state_version": 2}, {"next_cursor": "gAAAAABx", "state_version": 2}],
    ids=["first sync", "empty source", "our own state"],
)
def test_no_lab_state_warning_for_states_we_wrote_or_none(simulator, ops, clock, capsys, state):
    run_sync(simulator, clock, state=state)
    assert lab_state_warnings(capsys.readouterr().out) == []


def test_checkpoints_follow_the_interval_at_page_boundaries(simulator, ops, clock):
    run_sync(simulator, clock, page_size="30", checkpoint_interval="100")
    assert ops.rows_at_checkpoint == [120, 240, 360, 480, 600, 600]


def test_rejected_items_count_toward_the_checkpoint_interval(simulator, ops, clock):
    last = simulator.records()[-1]["record_id"]
    simulator.corrupt_record(last, set={"record_id": None})
    run_sync(simulator, clock, page_size="100", checkpoint_interval="100")
    assert ops.rows_at_checkpoint == [100, 200, 300, 400, 500, 600, 600]
    assert len(ops.rows(connector.REJECTED_TABLE)) == 1


def test_resume_from_state_fetches_only_what_follows(simulator, ops, clock):
    run_sync(simulator, clock, page_size="100", checkpoint_interval="200")
    assert ops.rows_at_checkpoint[1] == 400
    middle = ops.checkpoints[1]
    first_400 = set(ops.upserted_ids()[:400])
    ops.upserts.clear()
    run_sync(simulator, clock, state=middle)
    resumed = set(ops.upserted_ids())
    assert len(resumed) == RECORDS - 400
    assert resumed.isdisjoint(first_400)


def test_incremental_sync_upserts_exactly_the_new_and_updated_records(simulator, ops, clock):
    run_sync(simulator, clock)
    changes = simulator.add_changes(new=10, updated=5)
    ops.upserts.clear()
    run_sync(simulator, clock, state=ops.checkpoints[-1])
    assert sorted(ops.upserted_ids()) == sorted(changes["new"] + changes["updated"])


def test_incremental_sync_without_changes_makes_one_request(simulator, ops, clock):
    run_sync(simulator, clock)
    state = ops.checkpoints[-1]
    ops.upserts.clear()
    simulator.clear_requests()
    run_sync(simulator, clock, state=state)
    assert ops.upserts == []
    assert len(data_requests(simulator)) == 1
    assert ops.checkpoints[-1] == state


def test_empty_source_ends_with_a_successful_sync(make_simulator, ops, clock):
    sim = make_simulator(records=0)
    run_sync(sim, clock)
    assert ops.upserts == []
    assert len(data_requests(sim)) == 1


def test_rejected_saved_cursor_warns_and_resyncs_from_the_start(simulator, ops, clock):
    run_sync(simulator, clock, state={"next_cursor": "gAAAAABtampered%3D%3D"})
    assert len(set(ops.upserted_ids())) == RECORDS
    assert any("rejected the saved cursor" in message for message in ops.warnings)
    assert data_requests(simulator)[1].cursor is None


def test_a_400_that_does_not_name_the_cursor_fails_instead_of_resyncing(simulator, ops, clock):
    simulator.queue_response(status=400, body={"error": "page_size must be an integer"})
    with pytest.raises(RuntimeError, match=r"rejected the request \(HTTP 400.*Check page_size"):
        run_sync(simulator, clock, state={"next_cursor": "gAAAAABsaved"})
    assert [r.cursor for r in data_requests(simulator)] == ["gAAAAABsaved"]
    assert ops.upserts == []


def test_a_rejected_cursor_whose_resync_fails_leaves_the_saved_state_alone(simulator, ops, clock):
    simulator.queue_response(status=400, body={"error": "Invalid cursor"})
    simulator.queue_response(status=401, body={"error": "Missing or invalid API key"})
    with pytest.raises(RuntimeError, match="Check api_key") as caught:
        run_sync(simulator, clock, state={"next_cursor": "gAAAAABsaved"})
    assert ops.checkpoints == []
    assert "saved state is unchanged" in str(caught.value)


def test_repeated_cursor_fails_instead_of_spinning(simulator, ops, clock):
    stuck = {"hed_records": [], "next_cursor": "gAAAAABstuck", "has_more": True}
    simulator.queue_response(status=200, body=stuck, times=5)
    with pytest.raises(RuntimeError, match="already seen"):
        run_sync(simulator, clock)
    assert len(data_requests(simulator)) <= 3


def test_more_pages_promised_without_a_cursor_fails(simulator, ops, clock):
    simulator.queue_response(
        status=200, body={"hed_records": [], "next_cursor": None, "has_more": True}
    )
    with pytest.raises(RuntimeError, match="sent no next_cursor"):
        run_sync(simulator, clock)


def test_endless_empty_pages_fail(simulator, ops, clock, monkeypatch):
    monkeypatch.setattr(connector, "MAX_EMPTY_PAGES_IN_A_ROW", 3)
    pages = [{"hed_records": [], "next_cursor": f"gAAAAAB{i}", "has_more": True} for i in range(5)]
    for page in pages:
        simulator.queue_response(status=200, body=page)
    with pytest.raises(RuntimeError, match="empty pages in a row"):
        run_sync(simulator, clock)


def test_failure_checkpoints_finished_pages_so_a_rerun_loses_nothing(simulator, ops, clock):
    def break_api_midway(upserted):
        if upserted == 250:
            simulator.queue_response(status=403, body={"error": "Forbidden"})

    ops.on_upsert = break_api_midway
    with pytest.raises(RuntimeError, match="Check api_key"):
        run_sync(simulator, clock)
    first_run = set(ops.upserted_ids())
    assert 250 <= len(first_run) < RECORDS
    ops.on_upsert = None
    run_sync(simulator, clock, state=ops.checkpoints[-1])
    assert first_run | set(ops.upserted_ids()) == source_ids(simulator)


def test_the_next_page_is_fetched_while_the_current_one_loads_and_no_further(
    simulator, ops, clock
):
    requests_seen = {}

    def watch_prefetch(upserted):
        if upserted == 1:  # page 1 is being loaded: page 2 is fetched meanwhile
            deadline = time.monotonic() + 5
            while len(data_requests(simulator)) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
        if upserted == PAGE_SIZE:  # page 1 is nearly loaded: page 3 waits for page 2's turn
            time.sleep(PREFETCH_WINDOW_S)  # time enough for an eager fetch to show itself
        if upserted in (1, PAGE_SIZE):
            requests_seen[upserted] = len(data_requests(simulator))

    ops.on_upsert = watch_prefetch
    run_sync(simulator, clock)
    assert requests_seen == {1: 2, PAGE_SIZE: 2}


def test_a_fetch_error_reaches_the_sync_after_the_pages_before_it(simulator, ops, clock):
    def forbid_the_third_page(upserted):
        if upserted == 1:  # page 2 is being fetched ahead: let it land, then break page 3
            deadline = time.monotonic() + 5
            while len(data_requests(simulator)) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            simulator.queue_response(status=403, body={"error": "Forbidden"})

    ops.on_upsert = forbid_the_third_page
    with pytest.raises(RuntimeError, match="Check api_key"):
        run_sync(simulator, clock)
    assert len(ops.upserted_ids()) == 2 * PAGE_SIZE
    assert ops.rows_at_checkpoint == [100, 200, 200]


# --- retries and failure classification --------------------------------------------------


def test_rate_limit_waits_the_retry_after_seconds(simulator, ops, clock):
    simulator.set_faults(rate_limit_every=2, retry_after=3)
    run_sync(simulator, clock)
    assert len(set(ops.upserted_ids())) == RECORDS
    assert clock.sleeps
    assert all(delay == 3 for delay in clock.sleeps)


def test_retry_after_is_capped(simulator, ops, clock):
    simulator.set_faults(rate_limit_every=2, retry_after=3600)
    run_sync(simulator, clock)
    assert max(clock.sleeps) == connector.RETRY_AFTER_CAP_S


def test_server_errors_back_off_exponentially_up_to_the_cap(simulator, ops, clock):
    simulator.set_faults(fail_rate=1.0)
    with pytest.raises(RuntimeError, match="kept failing"):
        run_sync(simulator, clock)
    for attempt, delay in enumerate(clock.sleeps[:-1], start=1):  # the last is cut short
        ceiling = min(connector.BACKOFF_CAP_S, connector.BACKOFF_BASE_S * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert max(clock.sleeps) > connector.BACKOFF_CAP_S / 2


def test_retrying_stops_after_one_last_attempt_at_the_end_of_the_budget(simulator, ops, clock):
    simulator.set_faults(fail_rate=1.0)
    with pytest.raises(RuntimeError, match=r"kept failing: server error \(HTTP 50[03]\)"):
        run_sync(simulator, clock)
    assert sum(clock.sleeps) == pytest.approx(connector.RETRY_BUDGET_S)
    assert len(data_requests(simulator)) == len(clock.sleeps) + 1


@pytest.mark.parametrize(
    ("faults", "jitter"),
    [
        ({"fail_rate": 1.0}, 1.0),  # 503s at the longest backoffs
        ({"rate_limit_every": 1, "retry_after": 55}, 0.0),  # 429s asking for long waits
    ],
)
def test_a_three_minute_outage_is_ridden_out_whatever_the_waits(simulator, ops, faults, jitter):
    """The API fails until 180 s of (fake) time have passed: the fetch must still succeed."""
    outage_s = 180

    def recover_after_the_outage():
        if clock.now_s >= outage_s:
            simulator.clear_faults()

    clock = FakeClock(on_sleep=recover_after_the_outage)
    simulator.set_faults(**faults)
    settings = connector.validate_configuration(settings_for(simulator))
    client = connector.HedClient(settings, clock=clock, jitter=lambda: jitter)
    page = client.fetch_page(None)
    assert len(page.records) == PAGE_SIZE
    assert outage_s <= clock.now_s <= connector.RETRY_BUDGET_S


def test_retry_after_zero_still_waits_the_first_backoff(simulator, ops, clock):
    simulator.queue_response(status=429, body={}, headers={"Retry-After": "0"}, times=2)
    run_sync(simulator, clock)
    assert clock.sleeps == [connector.BACKOFF_BASE_S, connector.BACKOFF_BASE_S]


def test_transient_faults_still_land_every_record(simulator, ops, clock):
    simulator.set_faults(fail_rate=0.3, rate_limit_every=4, reset_rate=0.1, fault_seed=7)
    run_sync(simulator, clock)
    assert set(ops.upserted_ids()) == source_ids(simulator)
    assert len(clock.sleeps) > 0


def test_truncated_bodies_are_retried(simulator, ops, clock):
    simulator.set_faults(truncate_rate=0.5, fault_seed=3)
    run_sync(simulator, clock)
    assert set(ops.upserted_ids()) == source_ids(simulator)


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504])
def test_statuses_worth_asking_again_are_retried(simulator, ops, clock, status):
    simulator.queue_response(status=status, body={"error": "try again"}, times=2)
    run_sync(simulator, clock)
    assert set(ops.upserted_ids()) == source_ids(simulator)
    assert [r.status for r in data_requests(simulator)][:3] == [status, status, 200]
    assert len(clock.sleeps) == 2


def test_a_body_that_cannot_be_decoded_is_retried(simulator, ops, clock):
    garbled = {"Content-Encoding": "gzip"}
    simulator.queue_response(status=200, body="not gzip at all", headers=garbled, times=2)
    run_sync(simulator, clock)
    assert set(ops.upserted_ids()) == source_ids(simulator)
    assert len(clock.sleeps) == 2


def test_a_dropped_connection_is_retried(simulator, ops, clock):
    simulator.set_faults(reset_rate=0.5, fault_seed=1)
    run_sync(simulator, clock)
    assert set(ops.upserted_ids()) == source_ids(simulator)
    assert any(r.fault == "reset" for r in data_requests(simulator))


def test_a_200_that_is_never_json_fails_naming_base_url(simulator, ops, clock):
    simulator.queue_response(status=200, body="<html>maintenance</html>", times=20)
    with pytest.raises(RuntimeError, match=r"broke its contract: it answered with a body that"):
        run_sync(simulator, clock)
    assert len(data_requests(simulator)) == connector.MAX_BAD_BODY_ATTEMPTS


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"data": []}, "without a 'hed_records' list"),
        (
            {"hed_records": [], "next_cursor": 5, "has_more": False},
            "'next_cursor' that is not a string",
        ),
        ({"hed_records": [], "next_cursor": "c", "has_more": "no"}, "'has_more' that is not"),
    ],
)
def test_a_page_of_the_wrong_shape_says_the_api_broke_its_contract(
    simulator, ops, clock, body, problem
):
    simulator.queue_response(status=200, body=body, times=20)
    with pytest.raises(RuntimeError, match="broke its contract") as caught:
        run_sync(simulator, clock)
    assert problem in str(caught.value)
    assert "is up" not in str(caught.value)


def test_wrong_key_fails_fast_with_one_request(simulator, ops, clock):
    with pytest.raises(RuntimeError, match="Check api_key") as caught:
        run_sync(simulator, clock, api_key="wrong-key")
    assert len(data_requests(simulator)) == 1
    assert clock.sleeps == []
    assert "wrong-key" not in str(caught.value)


def test_forbidden_fails_fast(simulator, ops, clock):
    simulator.queue_response(status=403, body={"error": "Forbidden"})
    with pytest.raises(RuntimeError, match=r"HTTP 403.*Check api_key"):
        run_sync(simulator, clock)
    assert len(data_requests(simulator)) == 1


def test_unknown_path_fails_fast_naming_base_url(simulator, ops, clock):
    with pytest.raises(RuntimeError, match=r"HTTP 404.*Check base_url"):
        connector.sync(settings_for(simulator, base_url=simulator.url + "/wrong"), {}, clock=clock)
    assert clock.sleeps == []


@pytest.mark.parametrize("status", [400, 405, 410, 422])
def test_other_client_errors_fail_fast_naming_the_settings(simulator, ops, clock, status):
    simulator.queue_response(status=status, body={"error": "no"})
    with pytest.raises(RuntimeError, match=rf"HTTP {status}: no\). Check page_size and base_url"):
        run_sync(simulator, clock)
    assert len(data_requests(simulator)) == 1
    assert clock.sleeps == []


def test_unreachable_api_fails_naming_base_url_and_the_connection(ops, clock):
    with pytest.raises(RuntimeError, match=r"http://127.0.0.1:9: the connection failed.*base_url"):
        connector.sync({"api_key": "k", "base_url": "http://127.0.0.1:9"}, {}, clock=clock)
    assert sum(clock.sleeps) <= connector.RETRY_BUDGET_S


@pytest.fixture
def tls_simulator(make_simulator):
    """The simulator over https, with a certificate from its own throwaway CA."""
    return make_simulator(tls=True)


def test_a_tls_handshake_that_breaks_off_is_retried(tls_simulator, ops, monkeypatch, capsys):
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tls_simulator.ca_file))
    tls_simulator.set_faults(tls_reset_rate=1.0)
    clock = FakeClock(on_sleep=tls_simulator.clear_faults)
    run_sync(tls_simulator, clock)
    assert set(ops.upserted_ids()) == source_ids(tls_simulator)
    assert len(clock.sleeps) == 1
    assert "HED API request failed (the secure (TLS) connection failed)" in capsys.readouterr().out


def test_a_certificate_that_does_not_verify_fails_fast_naming_base_url(
    tls_simulator, ops, clock, monkeypatch
):
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(RuntimeError, match=r"certificate of https://.* does not verify.*base_url"):
        run_sync(tls_simulator, clock)
    assert clock.sleeps == []
    assert len(data_requests(tls_simulator)) == 0  # refused before any HTTP was exchanged


def test_https_to_a_plain_http_server_is_retried_then_named_as_a_connection_failure(
    simulator, ops, clock
):
    https_url = simulator.url.replace("http://", "https://")
    with pytest.raises(RuntimeError, match=r"secure \(TLS\) connection failed.*Check base_url"):
        run_sync(simulator, clock, base_url=https_url)
    assert len(clock.sleeps) > 1


def test_an_api_that_stops_answering_is_retried_after_the_read_timeout(
    simulator, ops, monkeypatch, capsys
):
    monkeypatch.setattr(connector, "READ_TIMEOUT_S", SHORT_TIMEOUT_S)
    simulator.set_faults(hang_rate=1.0, hang_seconds=10 * SHORT_TIMEOUT_S)
    clock = FakeClock(on_sleep=simulator.clear_faults)
    run_sync(simulator, clock)
    assert set(ops.upserted_ids()) == source_ids(simulator)
    assert "HED API request failed (the API stopped answering (read timeout))" in (
        capsys.readouterr().out
    )


def test_a_failing_api_fails_the_sync_within_the_documented_four_minutes():
    """No attempt ends later than LAST_ATTEMPT_S after the budget, whenever it starts; what
    is left of the bound is slack for the failure's own checkpoint."""
    latest_end = max(
        spent + connector.attempt_seconds(spent)
        for spent in range(int(connector.RETRY_BUDGET_S) + 1)
    )
    assert latest_end == connector.RETRY_BUDGET_S + connector.LAST_ATTEMPT_S
    assert latest_end < connector.SYNC_FAILURE_BOUND_S == 4 * 60


def test_the_attempt_at_the_end_of_the_budget_gets_the_last_attempts_time():
    assert connector.attempt_seconds(0.0) == connector.ATTEMPT_DEADLINE_S
    assert connector.attempt_seconds(connector.RETRY_BUDGET_S) == connector.LAST_ATTEMPT_S


def test_an_attempt_late_in_the_budget_is_cut_short_however_long_its_own_deadline(
    simulator, ops, monkeypatch
):
    monkeypatch.setattr(connector, "ATTEMPT_DEADLINE_S", 3600.0)  # would outlast the test
    monkeypatch.setattr(connector, "RETRY_BUDGET_S", 0.0)
    monkeypatch.setattr(connector, "LAST_ATTEMPT_S", SHORT_TIMEOUT_S)
    simulator.set_faults(trickle_rate=1.0, trickle_seconds=TRICKLE_SECONDS)
    with pytest.raises(RuntimeError, match="was too slow"):
        run_sync(simulator, FakeClock())
    assert len(data_requests(simulator)) == 1


def test_a_page_trickled_once_is_retried_and_every_record_lands(
    simulator, ops, monkeypatch, capsys
):
    monkeypatch.setattr(connector, "ATTEMPT_DEADLINE_S", SHORT_TIMEOUT_S)
    simulator.set_faults(trickle_rate=1.0, trickle_seconds=TRICKLE_SECONDS)
    clock = FakeClock(on_sleep=simulator.clear_faults)
    run_sync(simulator, clock)
    assert set(ops.upserted_ids()) == source_ids(simulator)
    assert [r.fault for r in data_requests(simulator)][:2] == ["trickle", None]
    retried = (
        "HED API request failed (the whole response (headers and body) took longer than 0.3 s"
    )
    assert retried in capsys.readouterr().out


def test_a_persistent_trickle_fails_as_too_slow_naming_the_api_url(simulator, ops, monkeypatch):
    monkeypatch.setattr(connector, "ATTEMPT_DEADLINE_S", SHORT_TIMEOUT_S)
    monkeypatch.setattr(connector, "RETRY_BUDGET_S", SHORT_RETRY_BUDGET_S)

    def trickle_from_the_third_page(upserted):
        if upserted == 1:  # page 2 is being fetched ahead: let it land, then slow page 3
            wait_for(lambda: len(data_requests(simulator)) >= 2)
            simulator.set_faults(trickle_rate=1.0, trickle_seconds=TRICKLE_SECONDS)

    ops.on_upsert = trickle_from_the_third_page
    with pytest.raises(RuntimeError) as caught:
        run_sync(simulator, FakeClock())
    assert f"The HED API at {simulator.url} was too slow: the whole response" in str(caught.value)
    assert ops.rows_at_checkpoint[-1] == len(ops.upserted_ids()) == 2 * PAGE_SIZE
    assert {r.fault for r in data_requests(simulator)[2:]} == {"trickle"}


OK_HEADERS = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
DRIBBLE_INTERVAL_S = 0.05  # between the pieces a dribbling server sends
CUT_OFF_SLACK_S = 1.0  # how late past its deadline a cut-off attempt may end on a loaded box


@pytest.mark.parametrize(
    ("preamble", "piece"),
    [
        pytest.param(OK_HEADERS + b"Transfer-Encoding: chunked\r\n\r\n", b"0", id="chunk-size"),
        pytest.param(
            OK_HEADERS + b"Content-Encoding: deflate\r\n\r\n\x78\x9c",
            b"\x00\x00\x00\xff\xff",  # an empty stored block: decodes to nothing
            id="deflate",
        ),
    ],
)
def test_a_body_dribbled_inside_one_read_is_cut_off_at_the_attempts_deadline(preamble, piece):
    pieces = round(10 * SHORT_TIMEOUT_S / DRIBBLE_INTERVAL_S)  # ends: without a cut-off, fails
    with DribblingServer(preamble, piece, DRIBBLE_INTERVAL_S, pieces) as server:
        client = connector.HedClient(
            connector.validate_configuration({"api_key": "k", "base_url": server.url})
        )
        started = time.monotonic()
        with pytest.raises(connector.SlowResponseError, match=r"took longer than 0\.3 s"):
            client.request_page(None, 1, seconds=SHORT_TIMEOUT_S)
    assert time.monotonic() - started < SHORT_TIMEOUT_S + CUT_OFF_SLACK_S


def test_headers_that_end_after_the_deadline_are_too_slow():
    header_lines = round(4 * SHORT_TIMEOUT_S / DRIBBLE_INTERVAL_S)  # ~4 deadlines of headers
    body = b'{"hed_records": [], "next_cursor": null, "has_more": false}'
    epilogue = b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    with DribblingServer(
        b"HTTP/1.1 200 OK\r\n", b"X-Padding: x\r\n", DRIBBLE_INTERVAL_S, header_lines, epilogue
    ) as server:
        client = connector.HedClient(
            connector.validate_configuration({"api_key": "k", "base_url": server.url})
        )
        with pytest.raises(connector.SlowResponseError):
            client.request_page(None, 1, seconds=SHORT_TIMEOUT_S)


def test_a_connection_check_against_a_trickling_api_says_too_slow(simulator, monkeypatch):
    monkeypatch.setattr(connector, "SETUP_TEST_DEADLINE_S", SHORT_TIMEOUT_S)
    simulator.set_faults(trickle_rate=1.0, trickle_seconds=TRICKLE_SECONDS)
    result = connector.check_connection(settings_for(simulator))
    assert f"The HED API at {simulator.url} is reachable but too slow" in result.failure


def test_a_connection_that_never_completes_fails_naming_base_url(ops, clock, monkeypatch):
    monkeypatch.setattr(connector, "CONNECT_TIMEOUT_S", SHORT_TIMEOUT_S)
    port = BlackholedPort()
    configuration = {"api_key": "k", "base_url": f"http://127.0.0.1:{port.port}"}
    try:
        with pytest.raises(RuntimeError, match=r":\d+: the connection timed out.*base_url"):
            connector.sync(configuration, {}, clock)
    finally:
        port.close()


def test_api_error_text_never_echoes_the_key(simulator, ops, clock):
    simulator.queue_response(status=400, body={"error": f"bad request for {DEMO_API_KEY}"})
    with pytest.raises(RuntimeError) as caught:
        run_sync(simulator, clock)
    assert DEMO_API_KEY not in str(caught.value)


def test_redirects_fail_fast_without_following(simulator, ops, clock):
    simulator.queue_response(status=302, body={}, headers={"Location": "http://127.0.0.2:9/steal"})
    with pytest.raises(RuntimeError, match=r"redirects \(HTTP 302\)"):
        run_sync(simulator, clock)
    assert len(data_requests(simulator)) == 1


def test_mid_sync_cursor_rejection_fails_instead_of_resyncing(simulator, ops, clock):
    def reject_cursor(upserted):
        if upserted == 150:
            simulator.queue_response(status=400, body={"error": "Invalid cursor"})

    ops.on_upsert = reject_cursor
    with pytest.raises(RuntimeError, match="rejected the cursor"):
        run_sync(simulator, clock)
    cursors = [r.cursor for r in data_requests(simulator)]
    assert cursors.count(None) == 1


def test_last_page_without_a_cursor_keeps_the_previous_one(simulator, ops, clock):
    first, second = simulator.records()[:2]
    pages = [
        {"hed_records": [first], "next_cursor": "gAAAAABpage2", "has_more": True},
        {"hed_records": [second], "next_cursor": None, "has_more": False},
    ]
    for page in pages:
        simulator.queue_response(status=200, body=page)
    run_sync(simulator, clock)
    assert ops.checkpoints[-1] == {"next_cursor": "gAAAAABpage2", "state_version": 2}
    assert len(ops.upserts) == 2


# --- every served record lands ---------------------------------------------------------------


def corrupt_three(sim):
    ids = [record["record_id"] for record in sim.records()[:3]]
    sim.corrupt_record(ids[0], drop=("record_id",))
    sim.corrupt_record(ids[1], set={"record_id": None})
    sim.corrupt_record(ids[2], set={"record_id": ""})
    return ids


def test_records_without_a_record_id_land_in_the_rejected_table(simulator, ops, clock):
    corrupt_three(simulator)
    run_sync(simulator, clock)
    assert len(ops.rows()) == RECORDS - 3
    rejected = ops.rows(connector.REJECTED_TABLE)
    assert sorted(row["reason"] for row in rejected) == [
        "empty record_id",
        "missing record_id",
        "null record_id",
    ]
    assert all(row["source_cursor"] is None for row in rejected)  # all on the first page


def test_the_warning_counts_rejected_records_by_reason(simulator, ops, clock):
    corrupt_three(simulator)
    run_sync(simulator, clock)
    assert ops.warnings == [
        "Data quality: 3 records could not be keyed: kept whole in hed_rejected_records (1 "
        "empty record_id, 1 missing record_id, 1 null record_id). Values are not logged "
        "(student data); ask the API owner to fix them at the source."
    ]


def test_a_value_that_does_not_convert_lands_null_with_the_raw_value_kept(simulator, ops, clock):
    victim = simulator.records()[10]["record_id"]
    simulator.corrupt_record(victim, set={"current_gpa": "N/A"})
    run_sync(simulator, clock)
    row = next(row for row in ops.rows() if row["record_id"] == victim)
    assert row["current_gpa"] is None
    assert row[connector.INVALID_VALUES_COLUMN] == {"current_gpa": "N/A"}
    assert len(ops.rows()) == RECORDS


def test_the_warning_counts_invalid_values_by_column_and_reason(simulator, ops, clock):
    records = simulator.records()
    simulator.corrupt_record(records[1]["record_id"], set={"current_gpa": "N/A"})
    simulator.corrupt_record(records[2]["record_id"], set={"current_gpa": "x", "last_updated": 1})
    run_sync(simulator, clock)
    assert ops.warnings == [
        "Data quality: 3 values did not fit the column type: set null, kept raw in "
        "hed_records._hed_invalid_values (current_gpa: 2 not a number; last_updated: 1 not a "
        "timestamp). Values are not logged (student data); ask the API owner to fix them at "
        "the source."
    ]


def test_an_update_carrying_a_bad_value_replaces_the_old_version(simulator, ops, clock):
    run_sync(simulator, clock)
    changes = simulator.add_changes(updated=1)
    (victim,) = changes["updated"]
    simulator.corrupt_record(victim, set={"engagement_score": "high"})
    ops.upserts.clear()
    run_sync(simulator, clock, state=ops.checkpoints[-1])
    (row,) = ops.rows()
    latest = next(r for r in simulator.records() if r["record_id"] == victim)
    assert row["record_id"] == victim
    assert row["total_course_views"] == latest["total_course_views"]
    assert row["engagement_score"] is None
    assert row[connector.INVALID_VALUES_COLUMN] == {"engagement_score": "high"}


def test_the_data_quality_warning_never_contains_record_values(simulator, ops, clock, capsys):
    victim = simulator.records()[5]
    simulator.corrupt_record(victim["record_id"], set={"current_gpa": "SECRET-GPA"})
    simulator.corrupt_record(simulator.records()[6]["record_id"], set={"record_id": ""})
    run_sync(simulator, clock)
    printed = capsys.readouterr().out + " ".join(ops.warnings)
    assert "SECRET-GPA" not in printed
    assert victim["record_id"] not in printed
    assert victim["student_id"] not in printed


def test_one_data_quality_warning_per_sync(simulator, ops, clock):
    for record in simulator.records()[:300:10]:
        simulator.corrupt_record(record["record_id"], set={"at_risk_flag": "perhaps"})
    run_sync(simulator, clock)
    assert len(ops.warnings) == 1
    assert "at_risk_flag: 30 not a boolean" in ops.warnings[0]


def test_a_clean_sync_warns_about_nothing(simulator, ops, clock):
    run_sync(simulator, clock)
    assert ops.warnings == []


def test_null_values_are_loaded(simulator, ops, clock):
    victim = simulator.records()[0]["record_id"]
    simulator.corrupt_record(victim, set={"current_gpa": None, "last_login_date": None})
    run_sync(simulator, clock)
    row = next(row for row in ops.rows() if row["record_id"] == victim)
    assert (row["current_gpa"], row[connector.INVALID_VALUES_COLUMN]) == (None, None)


def test_money_is_sent_as_exact_cents(simulator, ops, clock):
    run_sync(simulator, clock)
    source = {r["record_id"]: r["financial_aid_amount"] for r in simulator.records()}
    for row in ops.rows():
        assert row["financial_aid_amount"] == f"{source[row['record_id']]:.2f}"


def test_fields_the_api_adds_later_are_passed_through_as_double_text(simulator, ops, clock):
    victim = simulator.records()[0]["record_id"]
    simulator.corrupt_record(victim, set={"retention_score": 0.87})
    run_sync(simulator, clock)
    row = next(row for row in ops.rows() if row["record_id"] == victim)
    assert row["retention_score"] == "0.87"


def test_text_without_a_charset_is_read_as_utf_8(simulator, ops, clock):
    standing = "Dean\u2019s List \u2013 \u00e9l\u00e8ve"
    record = {**simulator.records()[0], "academic_standing": standing}
    page = {"hed_records": [record], "next_cursor": "gAAAAABend", "has_more": False}
    body = json.dumps(page, ensure_ascii=False).encode("utf-8")
    simulator.queue_response(status=200, body=body, headers={"Content-Type": "text/plain"})
    run_sync(simulator, clock)
    assert ops.rows()[0]["academic_standing"] == standing


def test_a_body_that_is_not_utf_8_is_retried_as_a_bad_body(simulator, ops, clock):
    simulator.queue_response(status=200, body=b'{"hed_records": ["\xe9"]}')
    run_sync(simulator, clock)
    assert set(ops.upserted_ids()) == source_ids(simulator)
    assert len(clock.sleeps) == 1


# --- schema, form and connection test -----------------------------------------------------


def test_schema_declares_the_records_table_keyed_by_record_id():
    records, _ = connector.schema({})
    assert records["table"] == "hed_records"
    assert records["primary_key"] == ["record_id"]
    assert records["columns"]["financial_aid_amount"] == {
        "type": "DECIMAL",
        "precision": 18,
        "scale": 2,
    }
    assert records["columns"]["last_updated"] == "NAIVE_DATETIME"
    assert records["columns"]["current_gpa"] == "DOUBLE"
    assert records["columns"]["_hed_invalid_values"] == "JSON"


def test_schema_declares_the_rejected_records_table_keyed_by_content():
    _, rejected = connector.schema({})
    assert rejected["table"] == "hed_rejected_records"
    assert rejected["primary_key"] == ["rejection_id"]
    assert rejected["columns"] == {
        "rejection_id": "STRING",
        "raw_record": "JSON",
        "reason": "STRING",
        "seen_at": "UTC_DATETIME",
        "source_cursor": "STRING",
    }


def test_configuration_form_offers_the_four_keys_with_a_hidden_api_key():
    fields = connector.configuration_form().to_response().fields
    assert [f.name for f in fields] == ["api_key", "base_url", "page_size", "checkpoint_interval"]
    assert fields[0].text_field == connector.form_field.TextField.password
    assert all(f.description for f in fields)


def test_connection_check_passes_with_a_valid_key(simulator):
    result = connector.check_connection(settings_for(simulator))
    assert result.success is True
    assert [r.page_size for r in data_requests(simulator)] == [1]


def test_connection_check_reports_a_bad_key(simulator):
    result = connector.check_connection(settings_for(simulator, api_key="nope"))
    assert "Check api_key" in result.failure


def test_connection_check_reports_a_wrong_url(simulator):
    result = connector.check_connection(settings_for(simulator, base_url=simulator.url + "/x"))
    assert "Check base_url" in result.failure


def test_connection_check_reports_an_unreachable_host():
    result = connector.check_connection({"api_key": "k", "base_url": "http://127.0.0.1:9"})
    assert "Could not reach the HED API" in result.failure


def test_connection_check_calls_a_busy_api_busy(simulator):
    simulator.queue_response(status=503, body={"error": "maintenance"})
    result = connector.check_connection(settings_for(simulator))
    assert "Try the test again in a few minutes" in result.failure


def test_connection_check_names_a_200_that_is_not_a_page(simulator):
    simulator.queue_response(status=200, body="<html>login</html>")
    result = connector.check_connection(settings_for(simulator))
    assert "answered with a body that is not UTF-8 JSON. Check that base_url" in result.failure
    assert "Could not reach" not in result.failure


def test_connection_check_reports_configuration_errors():
    result = connector.check_connection({"api_key": "k", "page_size": "500"})
    assert "'page_size'" in result.failure


def test_requests_carry_the_key_only_in_the_header(simulator, ops, clock):
    run_sync(simulator, clock)
    assert all(r.api_key_ok for r in data_requests(simulator))
    assert all(DEMO_API_KEY not in (r.cursor or "") for r in data_requests(simulator))


# --- failures that must not leak, lose or hang ---------------------------------------------


def test_unexpected_error_checkpoints_then_fails_without_quoting_values(
    simulator, ops, clock, monkeypatch
):
    shape_record = connector.shape_record

    def explode(record):
        if len(ops.upserts) == 150:
            raise KeyError("STU-SECRET-VALUE")
        return shape_record(record)

    monkeypatch.setattr(connector, "shape_record", explode)
    with pytest.raises(RuntimeError, match="unexpected KeyError at") as caught:
        run_sync(simulator, clock)
    assert "STU-SECRET-VALUE" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert len(ops.checkpoints) == 2
    assert ops.checkpoints[-1] == ops.checkpoints[0]  # past page 1; page 2 was not finished


def test_a_row_the_sdk_refuses_fails_the_sync_without_checkpointing_past_it(simulator, ops, clock):
    def refuse(upserted):
        if upserted == 150:
            raise ValueError("Long value out of range: 12345")

    ops.on_upsert = refuse
    with pytest.raises(RuntimeError, match="SDK refused a row for hed_records") as caught:
        run_sync(simulator, clock)
    assert "12345" not in str(caught.value)
    assert ops.rows_at_checkpoint == [100, 150]
    assert ops.checkpoints[-1] == ops.checkpoints[0]  # still past page 1 only


def test_a_failing_checkpoint_does_not_hide_the_reason_the_sync_failed(simulator, ops, clock):
    def break_everything(upserted):
        if upserted == 150:
            ops.fail_checkpoints = True
            raise ValueError("the SDK refused this row")

    ops.on_upsert = break_everything
    with pytest.raises(RuntimeError, match="SDK refused a row") as caught:
        run_sync(simulator, clock)
    assert "also refused the checkpoint (RuntimeError)" in str(caught.value)


def test_a_failure_at_the_final_checkpoint_fails_the_sync_without_quoting_values(
    simulator, ops, clock
):
    final = RECORDS // PAGE_SIZE + 1  # one per page, then the final one
    ops.fail_at_checkpoint = (final, 'Conversion Error: Input: "{"current_gpa": "SECRET"}"')
    with pytest.raises(RuntimeError, match="unexpected RuntimeError at") as caught:
        run_sync(simulator, clock)
    assert "SECRET" not in str(caught.value)
    assert "also refused the checkpoint" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name == connector.PREFETCH_THREAD_NAME]


def test_fetch_thread_stops_requesting_once_the_sync_fails(simulator, ops):
    def fail_while_the_next_page_is_retried(upserted):
        if upserted == 1:
            simulator.set_faults(fail_rate=1.0)
        if upserted == 50:  # the fetch of page 2 or 3 is failing and backing off by now
            wait_for(lambda: any(r.status and r.status >= 500 for r in data_requests(simulator)))
            raise KeyError("reader failed")

    ops.on_upsert = fail_while_the_next_page_is_retried
    with pytest.raises(RuntimeError):
        connector.sync(settings_for(simulator), {})  # real, stop-aware backoff waits
    at_failure = len(data_requests(simulator))
    for thread in prefetch_threads():
        thread.join(WAIT_S)  # the stop wakes its backoff wait at once
    assert prefetch_threads() == []
    assert len(data_requests(simulator)) <= at_failure + 1  # at most the one in flight


# A sync in a process of its own: page 1 comes at once, page 2 (fetched ahead) trickles a
# byte a second with a deadline of an hour, and the first row is refused.
STUCK_FETCH_SCRIPT = """
import sys, time
import connector
from hed_simulator import DEMO_API_KEY, HedSimulator

connector.log.LOG_LEVEL = connector.log.Level.INFO
connector.ATTEMPT_DEADLINE_S = 3600.0
sim = HedSimulator(records=300, seed=5)
sim.start()


class RefusingOps:
    def upsert(self, table, data):
        while not any(r.fault == "trickle" for r in sim.requests):
            time.sleep(0.01)
        raise ValueError("refused")

    def checkpoint(self, state):
        pass

    def warning(self, message):
        pass


import requests
answer = requests.get(sim.url + "/hed_data", params={"page_size": 100},
                      headers={"x-api-key": DEMO_API_KEY}, timeout=10).json()
sim.clear_requests()
sim.queue_response(status=200, body=answer)
sim.set_faults(trickle_rate=1.0, trickle_seconds=1.0)
connector.op = RefusingOps()
try:
    connector.sync({"api_key": DEMO_API_KEY, "base_url": sim.url}, {})
except RuntimeError as error:
    print("sync failed:", error)
    sys.stdout.flush()
"""
EXIT_BOUND_S = 60  # the stuck fetch would hold a non-daemon thread for an hour


def test_a_failed_sync_lets_the_process_exit_while_a_fetch_is_still_in_flight():
    result = subprocess.run(
        [sys.executable, "-c", STUCK_FETCH_SCRIPT],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=EXIT_BOUND_S,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "sync failed: HED sync failed after 0 records: The Fivetran SDK refused a row" in (
        result.stdout
    )
