"""Phase: bad configuration, bad API answers and bad records, each against the contract.

- Configuration errors are refused before any request, naming the key.
- API answers retrying cannot fix (401, 403, 404, any 400, malformed 200s that persist)
  fail with an actionable message; the rows loaded before are kept, and a rerun lands
  exactly the rest. Only a 400 saying "Invalid cursor" on a saved cursor re-syncs.
- Transient answers (408, 425, an undecodable body, a dropped TLS handshake, one malformed
  200) are retried through.
- A sync that fails before loading a page leaves state.json byte for byte as it was.
- Malformed records are never skipped: values that do not convert land as NULL with the
  raw value in `_hed_invalid_values`; items that cannot be keyed land in
  `hed_rejected_records`.
- Full profile only (minutes each): a 3-minute outage mid-sync is ridden out; an outage
  past the retry budget fails with the rows kept; an API refusing connections from the
  start fails in under 4 minutes.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from bench.soak.checker import Expected, check, expected_of
from bench.soak.harness import Run, Soak, Watcher, data_requests, served_pages
from bench.soak.results import Phase
from hed_simulator.changelog import CursorCodec

FAIL_AFTER_PAGES = 3  # mid-sync faults are injected once this many pages were served
CONFIG_RECORDS = 100
NEW_RECORDS = 50  # changes an incremental sync would bring in the saved-state cases
FAILED_AFTER = "HED sync failed after"  # the connector's failure message (contract)
SYNC_FAILED = "SYNC FAILED"  # the SDK's verdict on a failed sync
DATA_QUALITY = "Data quality:"  # the connector's warning when something did not fit
SAVED_CURSOR_REJECTED = "rejected the saved cursor"  # its warning before a re-sync
TLS_RETRY = "TLS"  # in the connector's retry warning after a dropped TLS handshake
TLS_RESET_AFTER_FIRST = 0.2  # once one handshake was dropped, drop this share of the rest
RESET_RATE_WITH_TLS = 0.3  # mid-body drops force new connections, so new handshakes
STATE_FILE = Path("files") / "state.json"
# The contract's bound for an API unreachable from the start.
UNREACHABLE_FAILS_WITHIN_S = 240

# Configuration cases: (name, overrides, message the refusal must contain). None = drop key.
CONFIG_CASES = (
    ("api_key missing", {"api_key": None}, "'api_key' is required"),
    ("api_key empty", {"api_key": ""}, "'api_key' is required"),
    ("api_key placeholder", {"api_key": "YOUR_HED_API_KEY"}, "'api_key' still holds"),
    # The SDK refuses non-strings itself, before the connector runs; it names no key.
    ("page_size a number", {"page_size": 100}, "all values must be strings"),
    ("page_size 0", {"page_size": "0"}, "'page_size' must be an integer from 1 to 200"),
    ("page_size 201", {"page_size": "201"}, "'page_size' must be an integer from 1 to 200"),
    ("page_size abc", {"page_size": "abc"}, "'page_size' must be an integer from 1 to 200"),
    ("checkpoint_interval 0", {"checkpoint_interval": "0"}, "'checkpoint_interval' must be"),
    ("base_url malformed", {"base_url": "htp:/hed api"}, "'base_url' must be an http(s) URL"),
    ("base_url http remote", {"base_url": "http://hed.example.com"}, "'base_url' must use https"),
)


def reply(status: int, message: str | None = None, **extra) -> dict:
    """queue_response arguments: a JSON error body unless `body` is given."""
    body = {"error": message} if message is not None else extra.pop("body")
    return {"status": status, "body": body, **extra}


NOT_JSON = "<html><body>Service maintenance</body></html>"
NOT_GZIP = b"plain bytes that claim to be gzip"
INVALID_CURSOR = "Invalid cursor"  # the API's message for a cursor it does not know
OTHER_400 = "page_size must be an integer from 1 to 200"  # a 400 about something else


@dataclass(frozen=True)
class Expectation:
    """What one sync must show: its outcome ("fail", "succeed" or "land"), a message in its
    output, and the rows an earlier sync had already loaded."""

    name: str
    outcome: str
    message: str
    rows_before: int = 0


@dataclass(frozen=True)
class Corruption:
    """One record served differently, and what the warehouse must then hold for it.

    position: the record's place in the log (below the smallest profile's 500 records).

    lands: columns whose served value converts, with the value it converts to; raw:
    columns whose served value does not convert (NULL, raw value kept).
    """

    position: int
    drop: tuple = ()
    serve: dict = field(default_factory=dict)
    lands: dict = field(default_factory=dict)
    raw: tuple = ()


@dataclass(frozen=True)
class ApiCase:
    """A bad API answer mid-sync, or bad records, and the outcome the contract specifies.

    outcome: "fail" (clear message, rows before it kept, a rerun lands exactly the rest),
    "succeed" (retried through), "land" (every record lands, raw or rejected where it must).
    """

    name: str
    outcome: str
    message: str
    reply: dict | None = None  # queue_response arguments, injected mid-sync
    corrupt: tuple = ()  # Corruption per record


@dataclass(frozen=True)
class StateCase:
    """A sync from a saved cursor whose first answers are bad.

    saved: "synced" (a real cursor from a finished sync, then NEW_RECORDS new records) or
    "foreign" (a well-formed cursor the API refuses). replies: queued before the sync.
    outcome: "resync" or "fail" (nothing loaded: state.json must stay byte for byte).
    """

    name: str
    saved: str
    replies: tuple
    outcome: str
    message: str


@dataclass(frozen=True)
class OutageCase:
    """A scheduled outage (full profile): after `after` requests, `seconds` of `mode`."""

    name: str
    mode: str
    after: int
    seconds: float
    outcome: str  # "succeed" or "fail"
    message: str


def api_cases(bad_body_attempts: int) -> tuple:
    """The mid-sync cases. A persistent malformed 200 is queued exactly as often as the
    connector under test asks again (a reply left in the queue would hit the rerun)."""
    return (
        ApiCase("401 mid-sync", "fail", "Check api_key", reply(401, "Bad key")),
        ApiCase("403 mid-sync", "fail", "Check api_key", reply(403, "Denied")),
        ApiCase("404 mid-sync", "fail", "Check base_url", reply(404, "Not found")),
        ApiCase(
            "400 Invalid cursor mid-sync",
            "fail",
            "rejected the cursor",
            reply(400, INVALID_CURSOR),
        ),
        ApiCase("400 other error mid-sync", "fail", "HTTP 400", reply(400, OTHER_400)),
        ApiCase("408 once", "succeed", "HTTP 408", reply(408, "Request Timeout")),
        ApiCase("425 once", "succeed", "HTTP 425", reply(425, "Too Early")),
        ApiCase(
            "undecodable body once",
            "succeed",
            "could not be decoded",
            reply(200, body=NOT_GZIP, headers={"Content-Encoding": "gzip"}),
        ),
        ApiCase("200 not JSON once", "succeed", "not UTF-8 JSON", reply(200, body=NOT_JSON)),
        ApiCase(
            "200 not JSON persistently",
            "fail",
            "broke its contract",
            reply(200, body=NOT_JSON, times=bad_body_attempts),
        ),
        ApiCase(
            "200 JSON without hed_records persistently",
            "fail",
            "broke its contract",
            reply(200, body={"data": []}, times=bad_body_attempts),
        ),
        ApiCase(
            "record_id missing, null, blank, boolean or an integer",
            "land",
            DATA_QUALITY,
            corrupt=(
                Corruption(5, drop=("record_id",)),
                Corruption(120, serve={"record_id": None}),
                Corruption(250, serve={"record_id": "   "}),
                Corruption(310, serve={"record_id": True}),
                # An integer id can be keyed: it lands as its decimal text.
                Corruption(460, serve={"record_id": 987654321}, lands={"record_id": "987654321"}),
            ),
        ),
        ApiCase(
            "values that do or do not convert",
            "land",
            DATA_QUALITY,
            corrupt=(
                Corruption(17, serve={"current_gpa": "abc"}, raw=("current_gpa",)),
                Corruption(
                    150,
                    serve={"credit_hours_attempted": "12"},
                    lands={"credit_hours_attempted": 12},
                ),
                Corruption(333, serve={"at_risk_flag": "yes"}, lands={"at_risk_flag": True}),
                Corruption(410, serve={"last_updated": "yesterday"}, raw=("last_updated",)),
                Corruption(
                    499, serve={"financial_aid_amount": "lots"}, raw=("financial_aid_amount",)
                ),
                Corruption(
                    288, serve={"engagement_score": " "}, lands={"engagement_score": None}
                ),  # blank in a non-text column: NULL, not invalid
                Corruption(
                    66,
                    serve={"discussion_posts": 4.5, "current_gpa": [3]},
                    raw=("discussion_posts", "current_gpa"),
                ),
            ),
        ),
    )


# The re-sync's first request refused: nothing loaded, so the foreign cursor stays saved.
STATE_CASES = (
    StateCase(
        "400 Invalid cursor on the saved cursor", "foreign", (), "resync", SAVED_CURSOR_REJECTED
    ),
    StateCase(
        "401 on the first request from a saved cursor",
        "synced",
        (reply(401, "Bad key"),),
        "fail",
        "Check api_key",
    ),
    StateCase(
        "400 other error on the saved cursor: no re-sync",
        "synced",
        (reply(400, OTHER_400),),
        "fail",
        "HTTP 400",
    ),
    StateCase(
        "saved cursor rejected, then the re-sync refused (401)",
        "foreign",
        (reply(400, INVALID_CURSOR), reply(401, "Bad key")),
        "fail",
        "Check api_key",
    ),
)
OUTAGE_CASES = (
    OutageCase("3-minute outage mid-sync (503)", "503", 3, 180, "succeed", "HTTP 503"),
    OutageCase(
        "outage past the retry budget mid-sync (503)", "503", 3, 240, "fail", "kept failing"
    ),
    OutageCase("API refusing connections from the start", "refuse", 0, 240, "fail", "base_url"),
)


# ---------------------------------------------------------------------------------------
# Configuration


def run_config_cases(soak: Soak, phase: Phase) -> None:
    with soak.simulator(CONFIG_RECORDS) as sim:
        for name, overrides, message in CONFIG_CASES:
            project = soak.project("config " + name, soak.configuration(sim, **overrides))
            sim.clear_requests()
            run = soak.debug(project)
            seen = len(data_requests(sim))
            phase.cases += 1
            phase.check(not run.ok, f"config '{name}': sync did not fail")
            phase.check(message in run.output, f"config '{name}': no message '{message}'")
            phase.check(seen == 0, f"config '{name}': {seen} requests before refusing")
    phase.details.append(
        f"configuration: {len(CONFIG_CASES)} cases refused before any request, message checked "
        "(non-string values are refused by the SDK itself, which names no key)"
    )


# ---------------------------------------------------------------------------------------
# Bad answers and bad records mid-sync


def run_api_case(soak: Soak, case: ApiCase, phase: Phase) -> str:
    """Run one case against a fresh simulator; returns a one-line outcome for the report."""
    with soak.simulator(soak.profile.matrix_records) as sim:
        source = sim.records()
        project = soak.project("api " + case.name, soak.configuration(sim))
        corrupted = corrupt_records(sim, source, case.corrupt)
        run = run_with_injection(soak, sim, project, case.reply)
        injected = sum(info.fault == "queued" for info in data_requests(sim))
        phase.faults += injected + len(case.corrupt)
        phase.requests += len(data_requests(sim))
        if case.reply is not None:
            phase.check(injected > 0, f"'{case.name}': the injected reply was never served")
        expected = with_corruptions(expected_of(sim), corrupted)
        spec = Expectation(case.name, case.outcome, case.message)
        note = check_outcome(soak, sim, project, spec, run, expected, phase)
    phase.cases += 1
    return f"{case.name}: {note}"


def corrupt_records(sim, source: list, corruptions: tuple) -> list:
    """Apply each corruption; returns (record_id as served, corruption) pairs."""
    applied = []
    for corruption in corruptions:
        record = source[corruption.position]
        sim.corrupt_record(record["record_id"], drop=corruption.drop, set=corruption.serve)
        served_id = corruption.serve.get("record_id", record["record_id"])
        applied.append((str(served_id), corruption))
    return applied


def with_corruptions(expected: Expected, corrupted: list) -> Expected:
    """The simulator takes a test's own values into its truth as served: state here what
    the contract makes of them (converted, or NULL with the raw value kept)."""
    for key, corruption in corrupted:
        row = expected.rows.get(key)
        if row is None:  # could not be keyed: the simulator already lists it as rejected
            continue
        row.update(corruption.lands)
        if corruption.raw:
            raw = {column: corruption.serve[column] for column in corruption.raw}
            expected.invalid[key] = {**expected.invalid.get(key, {}), **raw}
            row.update(dict.fromkeys(corruption.raw))
    return expected


def run_with_injection(soak: Soak, sim, project: Path, answer: dict | None) -> Run:
    """Run the sync, queueing `answer` once FAIL_AFTER_PAGES pages were served."""
    if answer is None:
        return soak.debug(project)

    def reached() -> bool:
        return served_pages(sim) >= FAIL_AFTER_PAGES

    with Watcher(reached, lambda: sim.queue_response(**answer)):
        return soak.debug(project)


def check_outcome(
    soak: Soak, sim, project: Path, spec: Expectation, run: Run, expected: Expected, phase: Phase
) -> str:
    """Check `run` against the specified outcome; rerun failures to land everything."""
    name = spec.name
    phase.retries += run.retries
    phase.check(spec.message in run.output, f"'{name}': output lacks '{spec.message}'")
    if spec.outcome == "fail":
        return check_failure_and_rerun(soak, sim, project, spec, run, expected, phase)
    phase.check(run.ok, f"'{name}': sync exited {run.returncode}, expected success")
    if spec.outcome == "succeed":
        phase.check(run.retries > 0, f"'{name}': the fault was not retried")
    verdict = check(project, expected)
    phase.add(verdict)
    return f"exit {run.returncode}, {run.retries} retries; {verdict.summary()}"


def check_failure_and_rerun(
    soak: Soak, sim, project: Path, spec: Expectation, run: Run, expected: Expected, phase: Phase
) -> str:
    """A failure: clear message, rows before it kept, a rerun on the healed API lands
    exactly the rest."""
    name = spec.name
    phase.check(not run.ok and SYNC_FAILED in run.output, f"'{name}': did not fail clearly")
    reported = reported_rows(run.output)
    kept = check(project, expected)
    phase.check(
        kept.rows == spec.rows_before + reported,
        f"'{name}': {kept.rows} rows kept, {spec.rows_before} before, the sync said {reported}",
    )
    phase.check(kept.wrong == kept.stale == 0, f"'{name}' kept rows: {kept.summary()}")
    sim.clear_faults()
    rerun = soak.debug(project)
    phase.retries += rerun.retries
    final = check(project, expected)
    phase.add(final)
    phase.check(rerun.ok, f"'{name}': rerun exited {rerun.returncode}")
    rest = final.expected - kept.rows
    phase.check(rerun.upserts == rest, f"'{name}': rerun upserted {rerun.upserts}, needed {rest}")
    return (
        f"exit {run.returncode} with message, kept {kept.rows} rows; rerun exit "
        f"{rerun.returncode} upserted {rerun.upserts}; {final.summary()}"
    )


def reported_rows(output: str) -> int:
    """N from `HED sync failed after N records`, or -1 when the message is missing."""
    for line in output.splitlines():
        if FAILED_AFTER in line:
            words = line.split(FAILED_AFTER, 1)[1].split()
            return int(words[0].replace(",", "")) if words else -1
    return -1


# ---------------------------------------------------------------------------------------
# A dropped TLS handshake


def run_tls_case(soak: Soak, phase: Phase) -> str:
    """https with the simulator's own CA: every handshake is dropped until the connector
    has retried one, then a share of them, with mid-body drops forcing new connections."""
    name = "TLS handshakes dropped"
    with soak.simulator(soak.profile.matrix_records, tls=True) as sim:
        project = soak.project("api " + name, soak.configuration(sim))
        env = {**soak.env, "REQUESTS_CA_BUNDLE": sim.ca_file}
        sim.set_faults(tls_reset_rate=1.0, fault_seed=soak.args.seed)

        def drop_fewer() -> None:
            sim.set_faults(tls_reset_rate=TLS_RESET_AFTER_FIRST, reset_rate=RESET_RATE_WITH_TLS)

        run = soak.debug_watching(project, env, TLS_RETRY, drop_fewer)
        tls_retries = sum(
            TLS_RETRY in line and "retry" in line for line in run.output.splitlines()
        )
        resets = sum(info.fault == "reset" for info in data_requests(sim))
        phase.faults += tls_retries + resets
        phase.requests += len(data_requests(sim))
        phase.check(tls_retries > 0, f"'{name}': no TLS handshake was retried")
        spec = Expectation(name, "succeed", TLS_RETRY)
        note = check_outcome(soak, sim, project, spec, run, expected_of(sim), phase)
    phase.cases += 1
    return f"{name}: {tls_retries} handshake retries, {resets} mid-body drops; {note}"


# ---------------------------------------------------------------------------------------
# Syncs from a saved cursor whose first answers are bad


def prepare_saved_state(soak: Soak, sim, project: Path, saved: str, phase: Phase) -> None:
    if saved == "foreign":
        write_foreign_cursor(project, soak.args.seed)
        return
    first = soak.debug(project)
    phase.check(first.ok, f"{project.name}: the first sync exited {first.returncode}")
    sim.add_changes(new=NEW_RECORDS)


def write_foreign_cursor(project: Path, seed: int) -> None:
    """A saved cursor from another API instance: well-formed, but the API refuses it."""
    state = project / STATE_FILE
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"next_cursor": CursorCodec(seed + 1).encode(300)}))


def run_state_case(soak: Soak, case: StateCase, phase: Phase) -> str:
    with soak.simulator(soak.profile.matrix_records) as sim:
        project = soak.project("state " + case.name, soak.configuration(sim))
        prepare_saved_state(soak, sim, project, case.saved, phase)
        before = (project / STATE_FILE).read_bytes()
        kept_before = check(project, expected_of(sim)).rows
        for answer in case.replies:
            sim.queue_response(**answer)
        sim.clear_requests()
        run = soak.debug(project)
        phase.faults += len(case.replies) + (case.saved == "foreign")
        phase.requests += len(data_requests(sim))
        resynced = SAVED_CURSOR_REJECTED in run.output
        phase.check(resynced == (case.saved == "foreign"), f"'{case.name}': re-synced {resynced}")
        unchanged = (project / STATE_FILE).read_bytes() == before
        if case.outcome == "fail":
            phase.check(unchanged, f"'{case.name}': state.json changed by a failed sync")
            phase.check(
                reported_rows(run.output) == 0, f"'{case.name}': the failed sync loaded rows"
            )
        outcome = "land" if case.outcome == "resync" else case.outcome
        spec = Expectation(case.name, outcome, case.message, kept_before)
        note = check_outcome(soak, sim, project, spec, run, expected_of(sim), phase)
    phase.cases += 1
    state = "unchanged" if unchanged else "rewritten"
    words = f"{kept_before} rows before, re-synced {yes_no(resynced)}, state.json {state}"
    return f"{case.name}: {words}; {note}"


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


# ---------------------------------------------------------------------------------------
# Outages (full profile)


def run_outage_case(soak: Soak, case: OutageCase, phase: Phase) -> str:
    with soak.simulator(soak.profile.matrix_records) as sim:
        project = soak.project("outage " + case.name, soak.configuration(sim))
        sim.schedule_outage(after_requests=case.after, seconds=case.seconds, mode=case.mode)
        run = soak.debug(project)
        phase.faults += 1
        phase.requests += len(data_requests(sim))
        if case.mode == "refuse":  # the rerun rides out the rest of the outage
            phase.check(
                run.elapsed < UNREACHABLE_FAILS_WITHIN_S,
                f"'{case.name}': failed after {run.elapsed:.0f} s, not within "
                f"{UNREACHABLE_FAILS_WITHIN_S} s",
            )
        spec = Expectation(case.name, case.outcome, case.message)
        note = check_outcome(soak, sim, project, spec, run, expected_of(sim), phase)
    phase.cases += 1
    return f"{case.name}: first sync {run.elapsed:.0f} s; {note}"


def run_bad_input(soak: Soak, phase: Phase) -> None:
    run_config_cases(soak, phase)
    for case in api_cases(soak.connector.MAX_BAD_BODY_ATTEMPTS):
        phase.details.append("api " + run_api_case(soak, case, phase))
    phase.details.append("api " + run_tls_case(soak, phase))
    for case in STATE_CASES:
        phase.details.append("saved state " + run_state_case(soak, case, phase))
    if soak.profile.outages:
        for case in OUTAGE_CASES:
            phase.details.append("outage " + run_outage_case(soak, case, phase))
