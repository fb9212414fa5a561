"""Specification of connector.py's sync, run in-process against the real simulator.

Operations are recorded instead of written to DuckDB (tests/test_connector_e2e.py covers
the SDK path); HTTP is real, over loopback, with faults injected by the simulator.
Backoff sleeps are injected so no test waits for them.
"""

import json
import re
import threading
import time

import pytest

import connector
from hed_simulator import DEMO_API_KEY

PAGE_SIZE = 100
RECORDS = 600


class RecordingOps:
    """Stands in for the SDK's Operations: records what the connector emits."""

    def __init__(self):
        self.upserts = []
        self.checkpoints = []
        self.warnings = []
        self.rows_at_checkpoint = []
        self.on_upsert = None

    def upsert(self, table, data):
        self.upserts.append((table, dict(data)))
        if self.on_upsert:
            self.on_upsert(len(self.upserts))

    def checkpoint(self, state):
        self.checkpoints.append(json.loads(json.dumps(state)))
        self.rows_at_checkpoint.append(len(self.upserts))

    def warning(self, message):
        self.warnings.append(message)

    def upserted_ids(self):
        return [row["record_id"] for _, row in self.upserts]


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
def sleeps():
    """Backoff waits the connector asked for, instead of waiting."""
    return []


def settings_for(sim, **overrides):
    configuration = {
        "api_key": DEMO_API_KEY,
        "base_url": sim.url,
        "page_size": str(PAGE_SIZE),
        "checkpoint_interval": "100",
    }
    configuration.update(overrides)
    return configuration


def run_sync(sim, sleeps, state=None, **overrides):
    connector.sync(settings_for(sim, **overrides), state or {}, sleep=sleeps.append)


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
    ],
)
def test_invalid_configuration_is_refused_naming_the_key(
    simulator, ops, sleeps, key, value, expected
):
    with pytest.raises(ValueError, match=re.escape(expected)):
        run_sync(simulator, sleeps, **{key: value})


def test_invalid_configuration_makes_no_request(simulator, ops, sleeps):
    with pytest.raises(ValueError):
        run_sync(simulator, sleeps, page_size="0")
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


def test_full_sync_upserts_every_record_exactly_once(simulator, ops, sleeps):
    run_sync(simulator, sleeps)
    ids = ops.upserted_ids()
    assert len(ids) == RECORDS
    assert set(ids) == source_ids(simulator)
    assert {table for table, _ in ops.upserts} == {"hed_records"}


def test_first_sync_starts_without_a_cursor_and_passes_cursors_back_verbatim(
    simulator, ops, sleeps
):
    run_sync(simulator, sleeps)
    sent = [r.cursor for r in data_requests(simulator)]
    assert sent[0] is None
    assert all(cursor for cursor in sent[1:])
    assert all(r.page_size == PAGE_SIZE for r in data_requests(simulator))


def test_final_state_holds_only_the_cursor_past_the_end(simulator, ops, sleeps):
    run_sync(simulator, sleeps)
    final = ops.checkpoints[-1]
    assert list(final) == ["next_cursor"]
    assert final["next_cursor"].startswith("gAAAAA")


def test_checkpoints_follow_the_interval_at_page_boundaries(simulator, ops, sleeps):
    run_sync(simulator, sleeps, page_size="30", checkpoint_interval="100")
    assert ops.rows_at_checkpoint == [120, 240, 360, 480, 600, 600]


def test_final_checkpoint_saves_a_cursor_advanced_only_by_skipped_records(simulator, ops, sleeps):
    last = simulator.records()[-1]["record_id"]
    simulator.corrupt_record(last, set={"record_id": None})
    run_sync(simulator, sleeps, page_size="100", checkpoint_interval="100")
    assert ops.rows_at_checkpoint == [100, 200, 300, 400, 500, 599]


def test_resume_from_state_fetches_only_what_follows(simulator, ops, sleeps):
    run_sync(simulator, sleeps, page_size="100", checkpoint_interval="200")
    assert ops.rows_at_checkpoint[1] == 400
    middle = ops.checkpoints[1]
    first_400 = set(ops.upserted_ids()[:400])
    ops.upserts.clear()
    run_sync(simulator, sleeps, state=middle)
    resumed = set(ops.upserted_ids())
    assert len(resumed) == RECORDS - 400
    assert resumed.isdisjoint(first_400)


def test_incremental_sync_upserts_exactly_the_new_and_updated_records(simulator, ops, sleeps):
    run_sync(simulator, sleeps)
    changes = simulator.add_changes(new=10, updated=5)
    ops.upserts.clear()
    run_sync(simulator, sleeps, state=ops.checkpoints[-1])
    assert sorted(ops.upserted_ids()) == sorted(changes["new"] + changes["updated"])


def test_incremental_sync_without_changes_makes_one_request(simulator, ops, sleeps):
    run_sync(simulator, sleeps)
    state = ops.checkpoints[-1]
    ops.upserts.clear()
    simulator.clear_requests()
    run_sync(simulator, sleeps, state=state)
    assert ops.upserts == []
    assert len(data_requests(simulator)) == 1
    assert ops.checkpoints[-1] == state


def test_empty_source_ends_with_a_successful_sync(make_simulator, ops, sleeps):
    sim = make_simulator(records=0)
    run_sync(sim, sleeps)
    assert ops.upserts == []
    assert len(data_requests(sim)) == 1


def test_rejected_saved_cursor_warns_and_resyncs_from_the_start(simulator, ops, sleeps):
    run_sync(simulator, sleeps, state={"next_cursor": "gAAAAABtampered%3D%3D"})
    assert len(set(ops.upserted_ids())) == RECORDS
    assert any("rejected the saved cursor" in message for message in ops.warnings)
    assert data_requests(simulator)[1].cursor is None


def test_repeated_cursor_fails_instead_of_spinning(simulator, ops, sleeps):
    stuck = {"hed_records": [], "next_cursor": "gAAAAABstuck", "has_more": True}
    simulator.queue_response(status=200, body=stuck, times=5)
    with pytest.raises(RuntimeError, match="already seen"):
        run_sync(simulator, sleeps)
    assert len(data_requests(simulator)) <= 3


def test_more_pages_promised_without_a_cursor_fails(simulator, ops, sleeps):
    simulator.queue_response(
        status=200, body={"hed_records": [], "next_cursor": None, "has_more": True}
    )
    with pytest.raises(RuntimeError, match="sent no next_cursor"):
        run_sync(simulator, sleeps)


def test_endless_empty_pages_fail(simulator, ops, sleeps, monkeypatch):
    monkeypatch.setattr(connector, "MAX_EMPTY_PAGES_IN_A_ROW", 3)
    pages = [{"hed_records": [], "next_cursor": f"gAAAAAB{i}", "has_more": True} for i in range(5)]
    for page in pages:
        simulator.queue_response(status=200, body=page)
    with pytest.raises(RuntimeError, match="empty pages in a row"):
        run_sync(simulator, sleeps)


def test_failure_checkpoints_finished_pages_so_a_rerun_loses_nothing(simulator, ops, sleeps):
    def break_api_midway(upserted):
        if upserted == 250:
            simulator.queue_response(status=403, body={"error": "Forbidden"})

    ops.on_upsert = break_api_midway
    with pytest.raises(RuntimeError, match="Check api_key"):
        run_sync(simulator, sleeps)
    first_run = set(ops.upserted_ids())
    assert 250 <= len(first_run) < RECORDS
    ops.on_upsert = None
    run_sync(simulator, sleeps, state=ops.checkpoints[-1])
    assert first_run | set(ops.upserted_ids()) == source_ids(simulator)


def test_next_page_is_requested_while_the_current_page_loads(simulator, ops, sleeps):
    requests_while_loading = []

    def watch_prefetch(upserted):
        if upserted == 1:  # page 1 is being loaded: page 2, and only page 2, is fetched
            deadline = time.monotonic() + 5
            while len(data_requests(simulator)) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)  # time enough for a third request, were one coming
            requests_while_loading.append(len(data_requests(simulator)))

    ops.on_upsert = watch_prefetch
    run_sync(simulator, sleeps)
    assert requests_while_loading == [2]


# --- retries and failures -----------------------------------------------------------------


def test_rate_limit_waits_the_retry_after_seconds(simulator, ops, sleeps):
    simulator.set_faults(rate_limit_every=2, retry_after=3)
    run_sync(simulator, sleeps)
    assert len(set(ops.upserted_ids())) == RECORDS
    assert sleeps
    assert all(delay == 3 for delay in sleeps)


def test_retry_after_is_capped(simulator, ops, sleeps):
    simulator.set_faults(rate_limit_every=2, retry_after=3600)
    run_sync(simulator, sleeps)
    assert max(sleeps) == connector.RETRY_AFTER_CAP_S


def test_server_errors_back_off_exponentially_up_to_the_cap_then_fail(simulator, ops, sleeps):
    simulator.set_faults(fail_rate=1.0)
    with pytest.raises(RuntimeError, match="kept failing"):
        run_sync(simulator, sleeps)
    assert len(data_requests(simulator)) == connector.MAX_ATTEMPTS
    assert len(sleeps) == connector.MAX_ATTEMPTS - 1
    for attempt, delay in enumerate(sleeps, start=1):
        ceiling = min(connector.BACKOFF_CAP_S, connector.BACKOFF_BASE_S * 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling


def test_total_retry_time_for_one_request_is_bounded(simulator):
    clock = {"now": 0.0}

    def advance_clock(seconds):
        clock["now"] += seconds

    simulator.set_faults(rate_limit_every=1, retry_after=50)
    settings = connector.validate_configuration(settings_for(simulator))
    client = connector.HedClient(settings, sleep=advance_clock, clock=lambda: clock["now"])
    with pytest.raises(connector.ApiError, match="kept failing"):
        client.fetch_page(None)
    assert clock["now"] <= connector.RETRY_BUDGET_S
    assert len(data_requests(simulator)) < connector.MAX_ATTEMPTS


def test_transient_faults_still_land_every_record(simulator, ops, sleeps):
    simulator.set_faults(fail_rate=0.3, rate_limit_every=4, reset_rate=0.1, fault_seed=7)
    run_sync(simulator, sleeps)
    assert set(ops.upserted_ids()) == source_ids(simulator)
    assert len(sleeps) > 0


def test_truncated_bodies_are_retried(simulator, ops, sleeps):
    simulator.set_faults(truncate_rate=0.5, fault_seed=3)
    run_sync(simulator, sleeps)
    assert set(ops.upserted_ids()) == source_ids(simulator)


def test_a_200_that_is_never_json_fails_after_a_few_attempts(simulator, ops, sleeps):
    simulator.queue_response(status=200, body="<html>maintenance</html>", times=20)
    with pytest.raises(RuntimeError, match="not JSON"):
        run_sync(simulator, sleeps)
    assert len(data_requests(simulator)) == connector.MAX_BAD_BODY_ATTEMPTS


def test_a_200_without_records_is_retried_then_fails(simulator, ops, sleeps):
    simulator.queue_response(status=200, body={"data": []}, times=20)
    with pytest.raises(RuntimeError, match="without a 'hed_records' list"):
        run_sync(simulator, sleeps)


def test_wrong_key_fails_fast_with_one_request(simulator, ops, sleeps):
    with pytest.raises(RuntimeError, match="Check api_key") as caught:
        run_sync(simulator, sleeps, api_key="wrong-key")
    assert len(data_requests(simulator)) == 1
    assert sleeps == []
    assert "wrong-key" not in str(caught.value)


def test_forbidden_fails_fast(simulator, ops, sleeps):
    simulator.queue_response(status=403, body={"error": "Forbidden"})
    with pytest.raises(RuntimeError, match=r"HTTP 403.*Check api_key"):
        run_sync(simulator, sleeps)
    assert len(data_requests(simulator)) == 1


def test_unknown_path_fails_fast_naming_base_url(simulator, ops, sleeps):
    with pytest.raises(RuntimeError, match=r"HTTP 404.*Check base_url"):
        connector.sync(
            settings_for(simulator, base_url=simulator.url + "/wrong"), {}, sleep=sleeps.append
        )
    assert sleeps == []


def test_unreachable_api_fails_with_an_actionable_message(ops, sleeps):
    with pytest.raises(RuntimeError, match=r"kept failing.*connection failed"):
        connector.sync({"api_key": "k", "base_url": "http://127.0.0.1:9"}, {}, sleep=sleeps.append)


def test_api_error_text_never_echoes_the_key(simulator, ops, sleeps):
    simulator.queue_response(status=400, body={"error": f"bad request for {DEMO_API_KEY}"})
    with pytest.raises(RuntimeError) as caught:
        run_sync(simulator, sleeps)
    assert DEMO_API_KEY not in str(caught.value)


# --- malformed records --------------------------------------------------------------------


def corrupt_three(sim):
    ids = [record["record_id"] for record in sim.records()[:3]]
    sim.corrupt_record(ids[0], drop=("record_id",))
    sim.corrupt_record(ids[1], set={"record_id": None})
    sim.corrupt_record(ids[2], set={"record_id": ""})
    return ids


def test_records_without_a_record_id_are_skipped_and_counted(simulator, ops, sleeps):
    corrupt_three(simulator)
    run_sync(simulator, sleeps)
    assert len(ops.upserts) == RECORDS - 3
    assert ops.warnings == [
        "Skipped 3 malformed HED records (3 missing, null or empty record_id). Their contents "
        "are not logged (student data); ask the API owner to fix them at the source."
    ]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("current_gpa", "abc"),
        ("financial_aid_amount", "lots"),
        ("financial_aid_amount", 1e20),
        ("current_gpa", 10**400),
        ("at_risk_flag", "yes"),
        ("intervention_count", 2.5),
        ("last_updated", "2024-13-01 0:00:00"),
        ("last_updated", "2024-08-04"),
        ("student_id", {"nested": True}),
    ],
)
def test_values_the_declared_type_cannot_take_skip_the_record(
    simulator, ops, sleeps, column, value
):
    victim = simulator.records()[10]["record_id"]
    simulator.corrupt_record(victim, set={column: value})
    run_sync(simulator, sleeps)
    assert victim not in ops.upserted_ids()
    assert len(ops.upserts) == RECORDS - 1
    assert f"1 invalid {column}" in ops.warnings[0]


def test_skip_warning_never_contains_record_values(simulator, ops, sleeps, capsys):
    victim = simulator.records()[5]
    simulator.corrupt_record(victim["record_id"], set={"current_gpa": "SECRET-GPA"})
    run_sync(simulator, sleeps)
    printed = capsys.readouterr().out + " ".join(ops.warnings)
    assert "SECRET-GPA" not in printed
    assert victim["record_id"] not in printed
    assert victim["student_id"] not in printed


def test_null_values_are_loaded(simulator, ops, sleeps):
    victim = simulator.records()[0]["record_id"]
    simulator.corrupt_record(victim, set={"current_gpa": None, "last_login_date": None})
    run_sync(simulator, sleeps)
    assert victim in ops.upserted_ids()


def test_money_is_sent_as_exact_cents(simulator, ops, sleeps):
    run_sync(simulator, sleeps)
    source = {r["record_id"]: r["financial_aid_amount"] for r in simulator.records()}
    for _, row in ops.upserts:
        assert row["financial_aid_amount"] == f"{source[row['record_id']]:.2f}"


def test_fields_the_api_adds_later_are_passed_through(simulator, ops, sleeps):
    victim = simulator.records()[0]["record_id"]
    simulator.corrupt_record(victim, set={"retention_score": 0.87})
    run_sync(simulator, sleeps)
    row = next(row for _, row in ops.upserts if row["record_id"] == victim)
    assert row["retention_score"] == 0.87


# --- schema, form and connection test -----------------------------------------------------


def test_schema_declares_the_table_keyed_by_record_id():
    (table,) = connector.schema({})
    assert table["table"] == "hed_records"
    assert table["primary_key"] == ["record_id"]
    assert table["columns"]["financial_aid_amount"] == {
        "type": "DECIMAL",
        "precision": 18,
        "scale": 2,
    }
    assert table["columns"]["last_updated"] == "NAIVE_DATETIME"
    assert table["columns"]["current_gpa"] == "DOUBLE"


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


def test_connection_check_reports_configuration_errors():
    result = connector.check_connection({"api_key": "k", "page_size": "500"})
    assert "'page_size'" in result.failure


def test_requests_carry_the_key_only_in_the_header(simulator, ops, sleeps):
    run_sync(simulator, sleeps)
    assert all(r.api_key_ok for r in data_requests(simulator))
    assert all(DEMO_API_KEY not in (r.cursor or "") for r in data_requests(simulator))


# --- failures that must not leak or hang ----------------------------------------------------


def test_unexpected_error_checkpoints_then_fails_without_quoting_values(simulator, ops, sleeps):
    def explode(upserted):
        if upserted == 150:
            raise KeyError("STU-SECRET-VALUE")

    ops.on_upsert = explode
    with pytest.raises(RuntimeError, match="unexpected KeyError at") as caught:
        run_sync(simulator, sleeps)
    assert "STU-SECRET-VALUE" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert len(ops.checkpoints) == 2
    assert ops.checkpoints[-1] == ops.checkpoints[0]  # past page 1; page 2 was not finished


def test_sdk_refusing_every_record_of_a_page_fails_the_sync(simulator, ops, sleeps):
    def refuse(upserted):
        raise ValueError("refused")

    ops.on_upsert = refuse
    with pytest.raises(RuntimeError, match="refused every record of a page"):
        run_sync(simulator, sleeps)


def test_redirects_fail_fast_without_following(simulator, ops, sleeps):
    simulator.queue_response(status=302, body={}, headers={"Location": "http://127.0.0.2:9/steal"})
    with pytest.raises(RuntimeError, match=r"redirects \(HTTP 302\)"):
        run_sync(simulator, sleeps)
    assert len(data_requests(simulator)) == 1


def test_https_to_a_plain_http_server_fails_fast(simulator, ops, sleeps):
    https_url = simulator.url.replace("http://", "https://")
    with pytest.raises(RuntimeError, match=r"secure \(TLS\) connection"):
        run_sync(simulator, sleeps, base_url=https_url)
    assert sleeps == []


def test_mid_sync_cursor_rejection_fails_instead_of_resyncing(simulator, ops, sleeps):
    def reject_cursor(upserted):
        if upserted == 150:
            simulator.queue_response(status=400, body={"error": "Invalid cursor"})

    ops.on_upsert = reject_cursor
    with pytest.raises(RuntimeError, match="rejected the cursor"):
        run_sync(simulator, sleeps)
    cursors = [r.cursor for r in data_requests(simulator)]
    assert cursors.count(None) == 1


def test_last_page_without_a_cursor_keeps_the_previous_one(simulator, ops, sleeps):
    first, second = simulator.records()[:2]
    pages = [
        {"hed_records": [first], "next_cursor": "gAAAAABpage2", "has_more": True},
        {"hed_records": [second], "next_cursor": None, "has_more": False},
    ]
    for page in pages:
        simulator.queue_response(status=200, body=page)
    run_sync(simulator, sleeps)
    assert ops.checkpoints[-1] == {"next_cursor": "gAAAAABpage2"}
    assert len(ops.upserts) == 2


def test_fetch_thread_stops_requesting_once_the_sync_fails(simulator, ops):
    def fail_after_first_page(upserted):
        if upserted == 1:
            simulator.set_faults(fail_rate=1.0)
        if upserted == 50:
            raise KeyError("reader failed")

    ops.on_upsert = fail_after_first_page
    with pytest.raises(RuntimeError):
        connector.sync(settings_for(simulator), {})  # real, stop-aware backoff waits
    settled = len(data_requests(simulator))
    time.sleep(1.5)
    assert len(data_requests(simulator)) == settled
    assert not any(t.name == "hed-prefetch" and t.is_alive() for t in threading.enumerate())
