#!/usr/bin/env python3
"""Soak the HED connector: faults, crash-and-resume, churn, bad input and secret leaks.

Why: the unit and e2e tests prove each behaviour once on small data. This runs the real
`fivetran debug` subprocess against the in-process HED simulator (loopback) under sustained
abuse and proves with figures that no row is lost, duplicated or wrong and that the API key
never leaks. It prints counts only, never a record's values (student data).

    python bench/soak.py            # full run, ~10-20 minutes
    python bench/soak.py --quick    # bounded run that CI drives through tests/test_soak.py

Exit code 0 only if every phase passes.
"""

import argparse
import base64
import contextlib
import hashlib
import json
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # bench/ is not a package: make the repo importable
    sys.path.insert(0, str(REPO_ROOT))

import duckdb  # noqa: E402

import connector  # noqa: E402
from devkit.sdk_cli import (  # noqa: E402
    fivetran_executable,
    make_project,
    offline_env,
    operation_counts,
    run_command,
    run_debug,
)
from hed_simulator import RECORD_FIELDS, HedSimulator  # noqa: E402
from hed_simulator.changelog import CursorCodec  # noqa: E402
from hed_simulator.faults import FaultInjector  # noqa: E402

# ---------------------------------------------------------------------------------------
# Settings

# Distinctive, random per run: any occurrence outside configuration.json is a leak.
SECRET_PREFIX = "soak-secret-"
PAGE_SIZE = 100  # the API default; round pages keep the re-fetch arithmetic readable
CHECKPOINT_INTERVAL = connector.DEFAULT_CHECKPOINT_INTERVAL  # explicit: the bound depends on it
CLI_TIMEOUT_S = 900  # one `fivetran debug`; the slowest (fault soak) takes ~1-2 minutes
DATA_PATH = connector.DATA_PATH


@dataclass(frozen=True)
class Profile:
    """Sizes of one soak mode."""

    records: int  # fault soak and churn source size
    crash_records: int  # source size of each crash trial
    trials: int  # crash-and-resume trials
    long_hang: bool  # one request hangs past the connector's read timeout


FULL = Profile(records=5_000, crash_records=5_000, trials=20, long_hang=True)
QUICK = Profile(records=1_000, crash_records=1_000, trials=3, long_hang=False)

# Fault mix of the fault soak: ~35% of requests fail (MIN_FAILURE_SHARE is checked).
BASE_FAULTS = {
    "fail_rate": 0.15,  # 500 / 503
    "rate_limit_every": 8,  # every 8th request: 429 with Retry-After
    "retry_after": 1,  # seconds the 429 asks for
    "reset_rate": 0.07,  # connection dropped mid-body
    "truncate_rate": 0.07,  # 200 with half a body: invalid JSON
    "latency_ms": 0,
}
# Latency spikes: slow answers well inside the read timeout, which must just be waited for.
SPIKES = {"hang_rate": 0.06, "hang_seconds": 2.0}
# The single hang longer than the read timeout (full mode): costs one timeout and a retry.
LONG_HANG = {"hang_rate": 0.02, "hang_seconds": connector.READ_TIMEOUT_S + 5}
# The long hang must hit one of these request numbers: early, so spikes follow it.
LONG_HANG_REQUESTS = range(3, 11)
MIN_FAILURE_SHARE = 0.30  # the bar for "sustained" faults
SHARE_MARGIN = 0.04  # fault seeds are picked with this much headroom over the bar
FAULT_KINDS = ("fail", "rate_limit", "reset", "truncate", "hang")
BODY_FAULTS = ("reset", "truncate")  # a 200 the client never got whole
SEED_SEARCH_LIMIT = 20_000
TIMEOUT_LOG = "the request timed out"  # the connector's warning when a read times out

# Crash and resume.
STARTUP_KILL_SHARE = 0.15  # share of kills aimed at CLI start-up rather than after a page
STARTUP_KILL_WINDOW_S = 1.5  # kills aimed at start-up land this soon after Popen
KILL_JITTER_S = 0.15  # after the k-th page is served, wait up to this long: kills land mid-page
MAX_RESUMES = 3  # reruns allowed after a kill before the trial counts as failed
POLL_S = 0.005  # how often the soak watches the simulator's request log
# Rows a resume may re-read: one checkpoint interval plus one page. At a kill the rows
# served past the last checkpoint are the pages loaded since it (fewer than the interval,
# so at most interval - page_size when the interval is a multiple of the page size), the
# page being loaded and the one page fetched ahead.
REFETCH_BOUND = CHECKPOINT_INTERVAL + PAGE_SIZE

# Churn: (new, updated) records per round, each followed by an incremental sync.
CHURN_ROUNDS = ((50, 120), (0, 200), (300, 0), (25, 25), (1, 1))

# Bad input.
MATRIX_RECORDS = 1_000  # 10 pages: room to fail mid-sync with rows already kept
FAIL_AFTER_PAGES = 3  # mid-sync faults are injected once this many pages were served
CONFIG_RECORDS = 100

TABLE_COLUMNS = (
    "phase",
    "cases",
    "requests",
    "faults",
    "retries",
    "lost",
    "duplicated",
    "wrong",
    "leaks",
    "elapsed_s",
    "result",
)
RETRY_LINE = re.compile(r"Sync complete: .*?([\d,]+) retries")
RETRY_WARNING = re.compile(r"HED API request failed \(.*?\); retry \d+")
FAILED_AFTER = re.compile(r"HED sync failed after ([\d,]+) records")


# ---------------------------------------------------------------------------------------
# Results


@dataclass
class Phase:
    """Figures and verdict of one phase; `problems` empty means it passed."""

    name: str
    cases: int = 0
    requests: int = 0
    faults: int = 0
    retries: int = 0
    lost: int = 0
    duplicated: int = 0
    wrong: int = 0
    leaks: int = 0
    elapsed: float = 0.0
    details: list = field(default_factory=list)
    problems: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)

    def check(self, ok: bool, problem: str) -> bool:
        if not ok:
            self.problems.append(problem)
        return ok

    @property
    def passed(self) -> bool:
        clean = not (self.lost or self.duplicated or self.wrong or self.leaks)
        return clean and not self.problems

    def add(self, comparison: "Comparison") -> None:
        self.lost += comparison.lost
        self.duplicated += comparison.duplicated
        self.wrong += comparison.wrong + comparison.extra


@dataclass
class Run:
    """One CLI run: exit code, combined output, operation counts."""

    returncode: int
    output: str
    elapsed: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def upserts(self) -> int:
        return operation_counts(self.output).get("Upserts", 0)

    @property
    def retries(self) -> int:
        """From the connector's summary line, else its retry warnings (failed runs)."""
        match = RETRY_LINE.search(self.output)
        if match:
            return int(match.group(1).replace(",", ""))
        return len(RETRY_WARNING.findall(self.output))


# ---------------------------------------------------------------------------------------
# Warehouse versus source, by checksum


@dataclass
class Comparison:
    """Warehouse versus expected source rows, by record_id and canonical value."""

    expected: int
    loaded: int
    lost: int  # expected rows missing from the warehouse
    extra: int  # warehouse rows no source record explains
    wrong: int  # present in both with some field different
    duplicated: int  # warehouse rows sharing a record_id
    source_sum: str
    warehouse_sum: str

    @property
    def exact(self) -> bool:
        return self.source_sum == self.warehouse_sum and not self.duplicated

    def summary(self) -> str:
        verdict = "equal" if self.exact else "DIFFERENT"
        return (
            f"checksum {verdict} (source {self.source_sum}, warehouse {self.warehouse_sum}), "
            f"{self.loaded}/{self.expected} rows, lost {self.lost}, extra {self.extra}, "
            f"wrong {self.wrong}, duplicated {self.duplicated}"
        )


def api_timestamp(moment) -> str:
    """The API's `YYYY-MM-DD H:MM:SS` with an unpadded hour, from a DuckDB TIMESTAMP."""
    m = moment
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d} {m.hour}:{m.minute:02d}:{m.second:02d}"


def canonical_value(column: str, value, from_warehouse: bool):
    """One field in a form both sides share: API timestamps, 2-decimal money, float reprs.

    Doubles compare by repr of the float: the connector passes the API's float through to
    a DOUBLE column, so any drift at all is a wrong value.
    """
    if value is None:
        return None
    if column in connector.TIMESTAMP_COLUMNS:
        return api_timestamp(value) if from_warehouse else value
    if column in connector.MONEY_COLUMNS:
        return f"{value:.2f}" if from_warehouse else f"{float(value):.2f}"
    if column in connector.DOUBLE_COLUMNS:
        return repr(float(value))
    if column in connector.COUNT_COLUMNS:
        return int(value)
    return value


def canonical_row(row: dict, from_warehouse: bool) -> str:
    values = {c: canonical_value(c, row.get(c), from_warehouse) for c in RECORD_FIELDS}
    return json.dumps(values, sort_keys=True, separators=(",", ":"))


def checksum(rows: dict) -> str:
    """Order-independent: SHA-256 over the sorted (record_id, canonical JSON) lines."""
    digest = hashlib.sha256()
    for record_id in sorted(rows):
        digest.update(f"{record_id}\t{rows[record_id]}\n".encode())
    return digest.hexdigest()[:16]


def read_warehouse(project: Path) -> tuple[dict, int]:
    """{record_id: canonical row} and the number of rows sharing a record_id."""
    path = project / "files" / "warehouse.db"
    if not path.exists():
        return {}, 0
    columns = ", ".join(RECORD_FIELDS)
    with duckdb.connect(str(path), read_only=True) as db:
        cursor = db.execute(f"SELECT {columns} FROM tester.hed_records")
        rows = [dict(zip(RECORD_FIELDS, values, strict=True)) for values in cursor.fetchall()]
    loaded = {row["record_id"]: canonical_row(row, from_warehouse=True) for row in rows}
    return loaded, len(rows) - len(loaded)


def compare(project: Path, expected_records: list) -> Comparison:
    """Compare the project's warehouse with `expected_records` (the source's truth)."""
    expected = {r["record_id"]: canonical_row(r, from_warehouse=False) for r in expected_records}
    loaded, duplicated = read_warehouse(project)
    shared = expected.keys() & loaded.keys()
    return Comparison(
        expected=len(expected),
        loaded=len(loaded),
        lost=len(expected.keys() - loaded.keys()),
        extra=len(loaded.keys() - expected.keys()),
        wrong=sum(expected[key] != loaded[key] for key in shared),
        duplicated=duplicated,
        source_sum=checksum(expected),
        warehouse_sum=checksum(loaded),
    )


# ---------------------------------------------------------------------------------------
# Running the CLI and watching the simulator


class Soak:
    """Shared run context: the secret, the scratch folder, the CLI env, every output."""

    def __init__(self, args: argparse.Namespace, profile: Profile, work: Path):
        self.args = args
        self.profile = profile
        self.work = work
        self.secret = SECRET_PREFIX + secrets.token_hex(8)
        self.env = offline_env(work / "cli")
        self.rng = random.Random(args.seed)
        self.outputs: list[tuple[str, str]] = []  # (label, text) of every command run
        # One copy for every project: the repository's file may be edited during a long run.
        self.connector_source = work / "connector.py"
        shutil.copy(REPO_ROOT / "connector.py", self.connector_source)
        self.connector_digest = file_digest(self.connector_source)

    def simulator(self, records: int) -> HedSimulator:
        return HedSimulator(records=records, seed=self.args.seed, api_key=self.secret)

    def configuration(self, sim: HedSimulator, **overrides) -> dict:
        configuration = {
            "api_key": self.secret,
            "base_url": sim.url,
            "page_size": str(PAGE_SIZE),
            "checkpoint_interval": str(CHECKPOINT_INTERVAL),
        }
        configuration.update(overrides)
        return configuration

    def project(self, name: str, configuration: dict) -> Path:
        return make_project(self.work / "projects" / name, configuration, self.connector_source)

    def debug(self, project: Path) -> Run:
        started = time.monotonic()
        result = run_debug(project, self.env, timeout=CLI_TIMEOUT_S)
        self.outputs.append((f"debug {project.name}", result.stdout))
        return Run(result.returncode, result.stdout, time.monotonic() - started)

    def start_debug(self, project: Path) -> tuple[subprocess.Popen, Path]:
        """`fivetran debug` in its own process group, so a kill takes all of it."""
        log_path = project.parent / f"{project.name}.killed.log"
        command = [fivetran_executable(), "debug", str(project), "--configuration"]
        command.append(str(project / "configuration.json"))
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                command,
                cwd=project,
                env=self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return process, log_path

    def leaks_in_outputs(self, since: int = 0) -> int:
        return sum(self.secret in text for _, text in self.outputs[since:])


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def data_requests(sim: HedSimulator) -> list:
    return [info for info in sim.requests if info.path == DATA_PATH]


def served_pages(sim: HedSimulator) -> int:
    """Pages the simulator answered whole (a reset or truncated 200 is not served)."""
    return sum(
        1
        for i in data_requests(sim)
        if i.status == 200 and i.fault not in (*BODY_FAULTS, "queued")
    )


def wait_until(condition: Callable[[], bool], timeout: float, stop: threading.Event) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if condition():
            return True
        time.sleep(POLL_S)
    return False


class Watcher:
    """Runs `action` once `condition` holds, in a thread, so faults land mid-sync."""

    def __init__(self, condition: Callable[[], bool], action: Callable[[], None]):
        self.fired = False
        self._stop = threading.Event()
        self._condition, self._action = condition, action
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        if wait_until(self._condition, CLI_TIMEOUT_S, self._stop):
            self._action()
            self.fired = True

    def __enter__(self) -> "Watcher":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(5)


# ---------------------------------------------------------------------------------------
# Phase 1: fault soak


def fails(decision) -> bool:
    """Whether the connector gets no page from this request (a short hang just waits)."""
    if decision.kind == "hang":
        return decision.hang_seconds >= connector.READ_TIMEOUT_S
    return decision.kind in ("fail", "rate_limit", "reset", "truncate")


def predict(config: dict, pages: int) -> Counter | None:
    """The fault sequence a one-request-at-a-time client meets while loading `pages` pages.

    Exact for the connector (one fetch thread) because it replays the simulator's own
    FaultInjector from the same seed. None if some page would exhaust the connector's retry
    policy: this soak is about surviving faults, and giving up there would be correct.
    """
    injector = FaultInjector()
    injector.configure(**config)
    tally = Counter()
    for _ in range(pages):
        attempts = bad_bodies = 0
        while True:
            decision = injector.decide()
            attempts += 1
            tally["requests"] += 1
            if decision.kind:
                tally[decision.kind] += 1
            if not fails(decision):
                break
            tally["failed"] += 1
            if decision.kind == "hang" and not tally["first_timeout"]:
                tally["first_timeout"] = tally["requests"]
            bad_bodies += decision.kind == "truncate"
            if attempts >= connector.MAX_ATTEMPTS or bad_bodies >= connector.MAX_BAD_BODY_ATTEMPTS:
                return None
    return tally


def pick_seed(config: dict, pages: int, start: int, accept: Callable[[Counter], bool]) -> int:
    """The first fault_seed from `start` whose predicted run `accept`s (deterministic)."""
    for seed in range(start, start + SEED_SEARCH_LIMIT):
        tally = predict({**config, "fault_seed": seed}, pages)
        if tally is not None and accept(tally):
            return seed
    raise RuntimeError(f"no fault_seed in {SEED_SEARCH_LIMIT} tries fits {config}")


def spike_plan_ok(tally: Counter) -> bool:
    """Every fault kind at least once, and a failure share clear of the bar."""
    share = tally["failed"] / tally["requests"]
    return share >= MIN_FAILURE_SHARE + SHARE_MARGIN and all(tally[k] for k in FAULT_KINDS)


def long_hang_plan_ok(tally: Counter) -> bool:
    """Exactly one hang in the whole run, early, and a failure share clear of the bar."""
    share = tally["failed"] / tally["requests"]
    return (
        tally["hang"] == 1
        and tally["first_timeout"] in LONG_HANG_REQUESTS
        and share >= MIN_FAILURE_SHARE + SHARE_MARGIN
    )


def plan_faults(soak: Soak, pages: int) -> tuple[dict, dict | None]:
    """(first config, config to switch to once the long hang was answered, or None)."""
    spikes = {**BASE_FAULTS, **SPIKES}
    spikes["fault_seed"] = pick_seed(spikes, pages, soak.args.seed, spike_plan_ok)
    if not soak.profile.long_hang:
        return spikes, None
    first = {**BASE_FAULTS, **LONG_HANG}
    first["fault_seed"] = pick_seed(first, pages, soak.args.seed, long_hang_plan_ok)
    return first, spikes


def run_fault_soak(soak: Soak, phase: Phase) -> None:
    records = soak.profile.records
    pages = -(-records // PAGE_SIZE)
    first, then = plan_faults(soak, pages)
    with soak.simulator(records) as sim:
        project = soak.project("fault-soak", soak.configuration(sim))
        sim.set_faults(**first)
        hung = (lambda: any(i.fault == "hang" for i in data_requests(sim))) if then else None
        with Watcher(hung or (lambda: False), lambda: sim.set_faults(**then)) as switch:
            run = soak.debug(project)
        if hung:  # the hung request is logged only when its answer is written, 35 s after
            wait_until(hung, LONG_HANG["hang_seconds"], threading.Event())
        requests = data_requests(sim)
        comparison = compare(project, sim.records())
    report_fault_soak(phase, run, requests, comparison, records, switch.fired)


def report_fault_soak(
    phase: Phase, run: Run, requests: list, comparison: Comparison, records: int, switched: bool
) -> None:
    kinds = Counter(info.fault for info in requests if info.fault in FAULT_KINDS)
    timeouts = run.output.count(TIMEOUT_LOG)
    pages = -(-records // PAGE_SIZE)
    failed = len(requests) - pages  # every request that did not yield the page it asked for
    share = failed / max(len(requests), 1)
    phase.cases, phase.requests, phase.retries = 1, len(requests), run.retries
    phase.faults = sum(kinds.values())
    phase.add(comparison)
    phase.figures = {"kinds": dict(kinds), "timeouts": timeouts, "failure_share": share}
    phase.check(run.ok, f"fault soak sync exited {run.returncode}")
    phase.check(comparison.exact, f"fault soak warehouse differs: {comparison.summary()}")
    phase.check(run.upserts == records, f"fault soak upserted {run.upserts}, expected {records}")
    phase.check(share >= MIN_FAILURE_SHARE, f"failure share {share:.0%} below the bar")
    phase.check(run.retries == failed, f"connector counted {run.retries} retries, {failed} failed")
    missing = [kind for kind in FAULT_KINDS if not kinds[kind]]
    phase.check(not missing, f"fault kinds never injected: {missing}")
    if switched:
        phase.check(timeouts == 1, f"expected exactly 1 read timeout, saw {timeouts}")
    mix = ", ".join(f"{kind} {kinds[kind]}" for kind in FAULT_KINDS)
    hangs = f"{SPIKES['hang_seconds']:g} s spikes"
    if switched:
        hangs = f"one {LONG_HANG['hang_seconds']:g} s hang, then {hangs}"
    phase.details += [
        f"{records:,} records, page {PAGE_SIZE}: {len(requests)} requests for {pages} pages, "
        f"{failed} failed ({share:.0%}); injected: {mix}; hangs: {hangs}; read timeouts "
        f"{timeouts} (read timeout {connector.READ_TIMEOUT_S:g} s)",
        f"exit {run.returncode}, upserts {run.upserts}, connector retries {run.retries}, "
        f"sync {run.elapsed:.1f} s; {comparison.summary()}",
    ]


# ---------------------------------------------------------------------------------------
# Phase 2: crash and resume


@dataclass
class Trial:
    """One kill and the resumes after it."""

    target_pages: int
    outcome: str = ""  # "start-up", "mid-sync" or "after end": where the kill landed
    killed_served: int = 0
    saved_position: int = 0
    refetched: list = field(default_factory=list)  # per resume
    resume_runs: int = 0
    retries: int = 0
    requests: int = 0


def served_positions(sim: HedSimulator, codec: CursorCodec, total: int) -> set:
    """Log positions (= record indices) the simulator sent in whole pages.

    With no changes in the log, position p holds record index p and a page from cursor c
    holds positions pos(c) .. pos(c)+page_size-1: what the killed process could have loaded.
    """
    positions = set()
    for info in data_requests(sim):
        if info.status != 200 or info.fault in BODY_FAULTS:
            continue
        start = codec.decode(info.cursor) if info.cursor else 0
        positions.update(range(start, min(start + (info.page_size or PAGE_SIZE), total)))
    return positions


def saved_position(project: Path, codec: CursorCodec) -> int:
    """Where the checkpointed state points (0 when nothing was checkpointed)."""
    path = project / "files" / "state.json"
    if not path.exists():
        return 0
    cursor = json.loads(path.read_text() or "{}").get("next_cursor")
    return codec.decode(cursor) if cursor else 0


def kill_at_random(soak: Soak, sim: HedSimulator, project: Path, trial: Trial) -> Run:
    """Start a sync and SIGKILL its process group after `target_pages` pages (0: start-up)."""
    process, log_path = soak.start_debug(project)
    started = time.monotonic()
    if trial.target_pages == 0:
        time.sleep(soak.rng.uniform(0, STARTUP_KILL_WINDOW_S))
    else:

        def reached() -> bool:
            return served_pages(sim) >= trial.target_pages or process.poll() is not None

        wait_until(reached, CLI_TIMEOUT_S, threading.Event())
        time.sleep(soak.rng.uniform(0, KILL_JITTER_S))
    with contextlib.suppress(ProcessLookupError):  # already gone: it ended before the kill
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    output = log_path.read_text(errors="replace")
    soak.outputs.append((f"killed {project.name}", output))
    return Run(process.returncode, output, time.monotonic() - started)


def pick_kill_target(rng: random.Random, pages: int) -> int:
    """Pages to let the simulator serve before the kill: 0 aims at start-up; `pages` at the
    final checkpoint and summary; anything between lands mid-sync."""
    return 0 if rng.random() < STARTUP_KILL_SHARE else rng.randint(1, pages)


def where_kill_landed(killed: set, saved: int, total: int) -> str:
    """Start-up: no page served yet; after end: everything checkpointed; else mid-sync."""
    if not killed:
        return "start-up"
    return "after end" if saved >= total else "mid-sync"


def run_crash_trial(soak: Soak, sim: HedSimulator, index: int, phase: Phase) -> Trial:
    total = sim.record_count
    codec = CursorCodec(soak.args.seed)
    trial = Trial(target_pages=pick_kill_target(soak.rng, -(-total // PAGE_SIZE)))
    project = soak.project(f"crash-{index:02d}", soak.configuration(sim))
    sim.clear_requests()
    kill_at_random(soak, sim, project, trial)
    killed = served_positions(sim, codec, total)
    trial.requests += len(data_requests(sim))
    trial.killed_served = len(killed)
    trial.saved_position = saved_position(project, codec)
    trial.outcome = where_kill_landed(killed, trial.saved_position, total)
    for _ in range(MAX_RESUMES):
        sim.clear_requests()
        run = soak.debug(project)
        served = served_positions(sim, codec, total)
        trial.requests += len(data_requests(sim))
        trial.resume_runs += 1
        trial.retries += run.retries
        trial.refetched.append(len(served & killed))
        killed |= served
        check_resume(phase, index, run, served, trial)
        if run.ok:
            break
    phase.add(compare(project, sim.records()))
    return trial


def check_resume(phase: Phase, index: int, run: Run, served: set, trial: Trial) -> None:
    """A resume starts at the saved cursor and upserts each row it was served exactly once."""
    phase.check(run.ok, f"trial {index}: resume exited {run.returncode}")
    if served and trial.resume_runs == 1:
        phase.check(
            min(served) == trial.saved_position,
            f"trial {index}: resume started at {min(served)}, state said {trial.saved_position}",
        )
    excess = run.upserts - len(served)
    phase.duplicated += max(0, excess)
    phase.check(excess <= 0, f"trial {index}: {run.upserts} upserts for {len(served)} rows served")


def run_crash_phase(soak: Soak, phase: Phase) -> None:
    trials = []
    with soak.simulator(soak.profile.crash_records) as sim:
        for index in range(soak.profile.trials):
            trials.append(run_crash_trial(soak, sim, index, phase))
    report_crash_phase(phase, trials, soak.profile.crash_records)


def report_crash_phase(phase: Phase, trials: list, records: int) -> None:
    refetched = [count for trial in trials for count in trial.refetched[:1]]
    where = Counter(trial.outcome for trial in trials)
    phase.cases = len(trials)
    phase.faults = len(trials)  # one SIGKILL each
    phase.requests = sum(trial.requests for trial in trials)
    phase.retries = sum(trial.retries for trial in trials)
    phase.figures = {"refetched": refetched, "where": dict(where)}
    phase.check(where["mid-sync"] > 0, "no kill landed mid-sync")
    phase.check(
        max(refetched, default=0) <= REFETCH_BOUND,
        f"a resume re-fetched {max(refetched, default=0)} rows, over checkpoint_interval + "
        f"page_size = {REFETCH_BOUND}",
    )
    phase.details += [
        f"{len(trials)} trials of {records:,} records: kills during start-up {where['start-up']}, "
        f"mid-sync {where['mid-sync']}, after the end {where['after end']}; "
        f"resume runs {sum(t.resume_runs for t in trials)}",
        "re-fetched rows per resume (served again after the kill): "
        + describe_counts(refetched)
        + f"; bound checkpoint_interval + page_size = {REFETCH_BOUND}",
    ]


def describe_counts(counts: list) -> str:
    if not counts:
        return "none"
    return (
        f"min {min(counts)}, median {statistics.median(counts):g}, max {max(counts)} "
        f"(all: {' '.join(map(str, counts))})"
    )


# ---------------------------------------------------------------------------------------
# Phase 3: churn


def run_churn(soak: Soak, phase: Phase) -> None:
    with soak.simulator(soak.profile.records) as sim:
        project = soak.project("churn", soak.configuration(sim))
        first = soak.debug(project)
        phase.check(first.ok, f"churn initial sync exited {first.returncode}")
        results = []
        for number, (new, updated) in enumerate(CHURN_ROUNDS, start=1):
            sim.clear_requests()
            sim.add_changes(new=new, updated=updated)
            run = soak.debug(project)
            comparison = compare(project, sim.records())
            phase.requests += len(data_requests(sim))
            phase.retries += run.retries
            phase.add(comparison)
            check_churn_round(phase, number, run, comparison, new + updated)
            results.append(f"{new}+{updated}->{run.upserts}")
    phase.cases = len(CHURN_ROUNDS)
    phase.details.append(
        f"initial {soak.profile.records:,} records, then rounds (new+updated -> upserts): "
        + ", ".join(results)
        + f"; final {comparison.summary()}"
    )


def check_churn_round(phase: Phase, number: int, run: Run, comparison: Comparison, changed: int):
    """Each incremental sync upserts exactly the changed records and matches the source."""
    phase.check(run.ok, f"churn round {number} exited {run.returncode}")
    phase.check(
        "Incremental sync from saved cursor" in run.output, f"round {number} was not incremental"
    )
    phase.check(
        run.upserts == changed, f"round {number}: {run.upserts} upserts, {changed} changes"
    )
    phase.check(comparison.exact, f"round {number}: {comparison.summary()}")


# ---------------------------------------------------------------------------------------
# Phase 4: bad input


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


@dataclass(frozen=True)
class ApiCase:
    """A bad API answer and what connector.py specifies for it.

    outcome: "fail" (clear failure naming the problem, rows before it kept, a rerun lands
    the rest), "succeed" (retried through), "resync" (saved cursor refused: full re-sync),
    "skip" (malformed records skipped and counted, every other row loaded).
    """

    name: str
    outcome: str
    message: str
    reply: dict | None = None  # queue_response arguments, injected mid-sync
    corrupt: tuple = ()  # (log position, drop fields, set fields) per corrupted record


NOT_JSON = "<html><body>Service maintenance</body></html>"
API_CASES = (
    ApiCase(
        "401 mid-sync", "fail", "Check api_key", {"status": 401, "body": {"error": "Bad key"}}
    ),
    ApiCase("403 mid-sync", "fail", "Check api_key", {"status": 403, "body": {"error": "Denied"}}),
    ApiCase("404 mid-sync", "fail", "No HED API at", {"status": 404, "body": {"error": "No"}}),
    ApiCase(
        "400 cursor rejected mid-sync",
        "fail",
        "rejected the cursor",
        {"status": 400, "body": {"error": "Invalid cursor"}},
    ),
    ApiCase("400 saved cursor rejected", "resync", "re-syncing all records"),
    ApiCase(
        "503 until retries run out",
        "fail",
        "kept failing",
        {
            "status": 503,
            "body": {"error": "down"},
            "headers": {"Retry-After": "0"},
            "times": connector.MAX_ATTEMPTS,
        },
    ),
    ApiCase("200 not JSON once", "succeed", "not JSON", {"status": 200, "body": NOT_JSON}),
    ApiCase(
        "200 not JSON persistently",
        "fail",
        "not JSON",
        {"status": 200, "body": NOT_JSON, "times": connector.MAX_BAD_BODY_ATTEMPTS},
    ),
    ApiCase(
        "200 JSON without hed_records",
        "fail",
        "without a 'hed_records' list",
        {"status": 200, "body": {"data": []}, "times": connector.MAX_BAD_BODY_ATTEMPTS},
    ),
    ApiCase(
        "record_id missing or null",
        "skip",
        "Skipped 2 malformed HED records",
        corrupt=((5, ("record_id",), {}), (420, (), {"record_id": None})),
    ),
    ApiCase(
        "values of the wrong type",
        "skip",
        "Skipped 5 malformed HED records",
        corrupt=(
            (17, (), {"current_gpa": "abc"}),
            (150, (), {"credit_hours_attempted": "12"}),
            (333, (), {"at_risk_flag": "yes"}),
            (640, (), {"last_updated": "yesterday"}),
            (999, (), {"financial_aid_amount": "lots"}),
        ),
    ),
)


def run_config_cases(soak: Soak, phase: Phase) -> None:
    with soak.simulator(CONFIG_RECORDS) as sim:
        for name, overrides, message in CONFIG_CASES:
            configuration = soak.configuration(sim, **overrides)
            configuration = {k: v for k, v in configuration.items() if v is not None}
            project = soak.project("config-" + re.sub(r"\W+", "-", name), configuration)
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


def run_api_case(soak: Soak, case: ApiCase, phase: Phase) -> str:
    """Run one case against a fresh simulator; returns a one-line outcome for the report."""
    with soak.simulator(MATRIX_RECORDS) as sim:
        source = sim.records()
        project = soak.project("api-" + re.sub(r"\W+", "-", case.name), soak.configuration(sim))
        bad_ids = corrupt_records(sim, source, case.corrupt)
        if case.outcome == "resync":
            write_foreign_cursor(project, soak.args.seed)
        run, injected = run_with_injection(soak, sim, project, case)
        phase.faults += injected + len(case.corrupt) + (case.outcome == "resync")
        note = check_api_outcome(soak, sim, project, case, run, bad_ids, phase)
        phase.requests += len(data_requests(sim))
    phase.cases += 1
    return f"{case.name}: {note}"


def corrupt_records(sim: HedSimulator, source: list, corruptions: tuple) -> set:
    ids = set()
    for position, drop, overrides in corruptions:
        record_id = source[position]["record_id"]
        sim.corrupt_record(record_id, drop=drop, set=overrides)
        ids.add(record_id)
    return ids


def write_foreign_cursor(project: Path, seed: int) -> None:
    """A saved cursor from another API instance: well-formed, but the API refuses it."""
    state_dir = project / "files"
    state_dir.mkdir(parents=True, exist_ok=True)
    cursor = CursorCodec(seed + 1).encode(300)
    (state_dir / "state.json").write_text(json.dumps({"next_cursor": cursor}))


def run_with_injection(soak: Soak, sim: HedSimulator, project: Path, case: ApiCase):
    """Run the sync, queueing the case's reply once FAIL_AFTER_PAGES pages were served."""
    if case.reply is None:
        return soak.debug(project), 0

    def reached() -> bool:
        return served_pages(sim) >= FAIL_AFTER_PAGES

    with Watcher(reached, lambda: sim.queue_response(**case.reply)):
        run = soak.debug(project)
    injected = sum(info.fault == "queued" for info in data_requests(sim))
    return run, injected


def check_api_outcome(
    soak: Soak, sim: HedSimulator, project: Path, case: ApiCase, run: Run, bad_ids, phase
) -> str:
    """Check `run` against the case's specified outcome; rerun failures to land everything."""
    name = case.name
    phase.retries += run.retries
    phase.check(case.message in run.output, f"'{name}': output lacks '{case.message}'")
    if case.reply is not None:
        queued = any(info.fault == "queued" for info in data_requests(sim))
        phase.check(queued, f"'{name}': the injected reply was never served")
    if case.outcome != "fail":
        phase.check(run.ok, f"'{name}': sync exited {run.returncode}, expected success")
        expected = [r for r in sim.records() if r.get("record_id") not in bad_ids]
        comparison = compare(project, [r for r in expected if r.get("record_id")])
        phase.add(comparison)
        phase.check(comparison.exact, f"'{name}': {comparison.summary()}")
        return f"exit {run.returncode}, {comparison.loaded}/{comparison.expected} rows exact"
    return check_failure_and_rerun(soak, sim, project, case, run, phase)


def check_failure_and_rerun(
    soak: Soak, sim: HedSimulator, project: Path, case: ApiCase, run: Run, phase: Phase
) -> str:
    """A mid-sync failure: clear message, rows before it kept, a rerun lands exactly the rest."""
    name = case.name
    phase.check(not run.ok and "SYNC FAILED" in run.output, f"'{name}': did not fail clearly")
    match = FAILED_AFTER.search(run.output)
    reported = int(match.group(1).replace(",", "")) if match else -1
    kept = compare(project, sim.records())
    phase.check(kept.loaded == reported > 0, f"'{name}': kept {kept.loaded}, said {reported}")
    phase.check(kept.wrong == kept.extra == 0, f"'{name}' kept rows: {kept.summary()}")
    rerun = soak.debug(project)
    phase.retries += rerun.retries
    final = compare(project, sim.records())
    phase.add(final)
    phase.check(rerun.ok, f"'{name}': rerun exited {rerun.returncode}")
    phase.check(final.exact, f"'{name}' after rerun: {final.summary()}")
    rest = final.expected - kept.loaded
    phase.check(rerun.upserts == rest, f"'{name}': rerun upserted {rerun.upserts}, needed {rest}")
    return (
        f"exit {run.returncode} with message, kept {kept.loaded} rows; rerun exit "
        f"{rerun.returncode} upserted {rerun.upserts}, {final.loaded}/{final.expected} exact"
    )


def run_bad_input(soak: Soak, phase: Phase) -> None:
    run_config_cases(soak, phase)
    for case in API_CASES:
        phase.details.append("api " + run_api_case(soak, case, phase))


# ---------------------------------------------------------------------------------------
# Phase 5: secret scan


def package_project(soak: Soak, project: Path) -> subprocess.CompletedProcess:
    result = run_command(
        [fivetran_executable(), "package", project], project, soak.env, CLI_TIMEOUT_S
    )
    soak.outputs.append((f"package {project.name}", result.stdout))
    return result


def scan_zip(soak: Soak, phase: Phase, archive: Path) -> list:
    """Names of zip entries holding the secret; also checks configuration.json is left out."""
    with zipfile.ZipFile(archive) as bundle:
        names = bundle.namelist()
        leaking = [name for name in names if soak.secret.encode() in bundle.read(name)]
    phase.check(
        not any(Path(name).name == "configuration.json" for name in names),
        "the package zip contains configuration.json",
    )
    phase.details.append(f"package zip entries: {', '.join(sorted(names))}")
    return leaking


def run_deploy_dry_run(soak: Soak, phase: Phase, project: Path) -> list:
    """deploy.sh --dry-run, if the repository has it: its output and staged files stay clean.

    The script deletes its staging folder on exit, so the staged files are checked by name
    from its listing, and by content through the repository files they are copies of.
    """
    script = REPO_ROOT / "deploy.sh"
    if not script.exists():
        phase.details.append("deploy.sh: not in the repository yet, dry-run check skipped")
        return []
    account_key = fake_fivetran_key()
    command = [str(script), "--dry-run", "--account", "soak", "--destination", "soak_dest"]
    command += ["--connection", "soak_conn", "--config", str(project / "configuration.json")]
    result = subprocess.run(
        command,
        cwd=REPO_ROOT,
        env={**soak.env, "FIVETRAN_API_KEY": account_key},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    soak.outputs.append(("deploy.sh --dry-run", result.stdout))
    phase.check(result.returncode == 0, f"deploy.sh --dry-run exited {result.returncode}")
    leaks = ["deploy.sh output: Fivetran key"] if account_key in result.stdout else []
    staged = staged_files(result.stdout)
    phase.check(bool(staged), "deploy.sh --dry-run listed no staged files")
    phase.check("configuration.json" not in staged, "deploy.sh stages configuration.json")
    for name in staged:
        source = REPO_ROOT / name
        if source.is_file() and soak.secret.encode() in source.read_bytes():
            leaks.append(f"deploy.sh staged file {name}")
    phase.details.append(
        f"deploy.sh --dry-run: exit {result.returncode}, staged {', '.join(staged) or 'nothing'}"
        f", Fivetran key masked: {account_key not in result.stdout}"
    )
    return leaks


def fake_fivetran_key() -> str:
    """A well-formed (base64 of key:secret), distinctive Fivetran key that must stay masked."""
    pair = f"soak-fivetran-{secrets.token_hex(4)}:{secrets.token_hex(12)}"
    return base64.b64encode(pair.encode()).decode()


def staged_files(output: str) -> list:
    """The file names deploy.sh --dry-run lists between 'would hold:' and the command."""
    if "would hold:" not in output:
        return []
    listing = output.split("would hold:", 1)[1].split("and this command", 1)[0]
    return sorted(line.strip() for line in listing.splitlines() if line.strip())


def files_under(folder: Path) -> list:
    return [path for path in folder.rglob("*") if path.is_file()]


def run_secret_scan(soak: Soak, phase: Phase) -> None:
    churn = soak.work / "projects" / "churn"
    packaged = package_project(soak, churn)
    phase.check(packaged.returncode == 0, f"fivetran package exited {packaged.returncode}")
    archives = sorted((churn / "files").glob("*.zip"))
    phase.check(bool(archives), "fivetran package wrote no zip")
    leaks = [f"{a.name}:{name}" for a in archives for name in scan_zip(soak, phase, a)]
    leaks += run_deploy_dry_run(soak, phase, churn)
    leaks += [label for label, text in soak.outputs if soak.secret in text]
    files = files_under(soak.work)
    configs = [p for p in files if p.name == "configuration.json"]
    scanned = [p for p in files if p.name != "configuration.json"]
    leaks += [
        str(p.relative_to(soak.work)) for p in scanned if soak.secret.encode() in p.read_bytes()
    ]
    # Positive control: the scanner must find the key where it is meant to be.
    found = sum(soak.secret.encode() in p.read_bytes() for p in configs)
    phase.check(found > 0, "the scan found the key in no configuration.json: scanner broken")
    kinds = Counter(kind_of(path) for path in scanned)
    phase.cases = len(soak.outputs) + len(scanned)
    phase.leaks = len(leaks)
    phase.figures = {"leaking": leaks, "files": dict(kinds)}
    phase.details += [
        f"scanned {len(soak.outputs)} command outputs and {len(scanned)} files "
        f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}); key found in "
        f"{found}/{len(configs)} configuration.json files (expected: all that hold it)",
        "leaks: " + (", ".join(leaks) if leaks else "none"),
    ]


def kind_of(path: Path) -> str:
    parts = set(path.parts)
    if "crash-reports" in parts:
        return "crash reports"
    if path.name == "state.json":
        return "state files"
    if path.suffix == ".zip":
        return "zips"
    if path.suffix == ".db" or ".wal" in path.suffixes:
        return "warehouses"
    if "home" in parts:
        return "CLI home files"
    return "other files"


# ---------------------------------------------------------------------------------------
# Report and entry point


PHASES = (
    ("fault soak", run_fault_soak),
    ("crash+resume", run_crash_phase),
    ("churn", run_churn),
    ("bad input", run_bad_input),
    ("secret scan", run_secret_scan),
)


def run_phase(soak: Soak, name: str, body: Callable) -> Phase:
    """Run one phase; a crash of the soak itself fails the phase instead of the whole run."""
    phase = Phase(name)
    first_output = len(soak.outputs)
    started = time.monotonic()
    print(f"... {name}", file=sys.stderr, flush=True)
    try:
        body(soak, phase)
    except Exception as error:  # reported as a failed phase, with its type and message
        phase.problems.append(f"soak error: {type(error).__name__}: {error}")
    phase.elapsed = time.monotonic() - started
    if name != "secret scan":
        phase.leaks = soak.leaks_in_outputs(first_output)
    return phase


def verdict(phase: Phase) -> str:
    return "PASS" if phase.passed else "FAIL"


def table(phases: list) -> str:
    rows = [TABLE_COLUMNS]
    for p in phases:
        rows.append(
            (p.name, *(getattr(p, a) for a in TABLE_COLUMNS[1:9]), f"{p.elapsed:.1f}", verdict(p))
        )
    total = [sum(getattr(p, attr) for p in phases) for attr in TABLE_COLUMNS[1:9]]
    elapsed = f"{sum(p.elapsed for p in phases):.1f}"
    rows.append(("TOTAL", *total, elapsed, "PASS" if all(p.passed for p in phases) else "FAIL"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(TABLE_COLUMNS))]
    lines = [" | ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    return "\n".join(lines)


def report(soak: Soak, phases: list, mode: str) -> str:
    tested = f"connector.py sha256 {soak.connector_digest}"
    if file_digest(REPO_ROOT / "connector.py") != soak.connector_digest:
        tested += " (the repository's copy changed during the run; this snapshot was tested)"
    lines = [f"HED connector soak ({mode}): seed {soak.args.seed}, {tested}", ""]
    lines += [table(phases), ""]
    for phase in phases:
        lines += [f"[{phase.name}] {detail}" for detail in phase.details]
        lines += [f"[{phase.name}] PROBLEM: {problem}" for problem in phase.problems]
    return "\n".join(lines)


def write_json(path: Path, soak: Soak, phases: list, mode: str) -> None:
    payload = {
        "mode": mode,
        "seed": soak.args.seed,
        "passed": all(p.passed for p in phases),
        "phases": [{**asdict(p), "passed": p.passed} for p in phases],
    }
    path.write_text(json.dumps(payload, indent=2) + "\n")


def parse_args(argv: list | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="bounded run (~3-4 min) for CI")
    parser.add_argument("--records", type=int, help="records per sync (fault, churn, crash)")
    parser.add_argument("--trials", type=int, help="crash-and-resume trials")
    parser.add_argument("--seed", type=int, default=7, help="simulator, kill and fault seed")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    return parser.parse_args(argv)


def profile_for(args: argparse.Namespace) -> Profile:
    profile = QUICK if args.quick else FULL
    records = args.records or profile.records
    return Profile(
        records=records,
        crash_records=args.records or profile.crash_records,
        trials=profile.trials if args.trials is None else args.trials,
        long_hang=profile.long_hang,
    )


def main(argv: list | None = None) -> int:
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    work = Path(tempfile.mkdtemp(prefix="hed-soak-"))
    soak = Soak(args, profile_for(args), work)
    phases = [run_phase(soak, name, body) for name, body in PHASES]
    text = report(soak, phases, mode)
    if soak.secret in text:  # never print the key, even in our own report
        phases[-1].problems.append("the report itself contained the key")
        text = report(soak, phases, mode).replace(soak.secret, "***")
    print(text)
    if args.json:
        write_json(args.json, soak, phases, mode)
    passed = all(p.passed for p in phases)
    if args.keep or not passed:
        print(f"scratch folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
