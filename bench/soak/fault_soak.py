"""Phase: N random fault seeds, each one real sync through the simulator's faults.

No seed is chosen for being survivable: the seeds are drawn fresh each run (printed, and
replayable with --fault-seeds), so the survival rate is what the retry policy really does
at this failure share. A seed whose first sync gives up is rerun against the recovered
API and must then lose nothing. Survival is informational; the data check gates.
"""

import random
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field

from bench.soak.checker import Verdict, check, expected_of
from bench.soak.harness import Run, Soak, Watcher, data_requests, served_pages, wait_until
from bench.soak.results import Phase
from bench.soak.settings import PAGE_SIZE

# The fault mix every seed runs under: about 35% of requests fail (see failure_share()).
FAULT_MIX = {
    "fail_rate": 0.15,  # answered with one of fail_statuses:
    "fail_statuses": (500, 503, 408, 425),  # server errors, request timeout, too early
    "rate_limit_every": 8,  # every 8th request: 429 with Retry-After
    "retry_after": 1,  # seconds the 429 asks for
    "reset_rate": 0.07,  # connection dropped mid-body
    "truncate_rate": 0.07,  # 200 with half a body: invalid JSON
    "hang_rate": 0.06,  # latency spikes ...
    "hang_seconds": 2.0,  # ... well inside the read timeout: just waited for
    "latency_ms": 0,
}
FAULT_KINDS = ("fail", "rate_limit", "reset", "truncate", "hang")
FAILING_KINDS = ("fail", "rate_limit", "reset", "truncate")  # a spike only delays a page
SEED_SPACE = 2**31  # fault seeds are drawn uniformly from [0, SEED_SPACE)
# The long-hang case (full profile): one request hangs this much past the longest the
# connector waits for an answer (see header_wait_s), so it must give up on it, and only once.
LONG_HANG_PAST_TIMEOUT_S = 5
LONG_HANG_AFTER_PAGES = 3  # mid-sync, with rows already loaded
# The connector's retry warning after a read timeout.
TIMED_OUT = "(the API stopped answering (read timeout))"


def failure_share(mix: dict) -> float:
    """Share of requests the mix fails, from the simulator's order of draws: a rate limit
    first, then fail, hang (a spike, not a failure), reset, truncate."""
    limited = 1 / mix["rate_limit_every"] if mix["rate_limit_every"] else 0.0
    body = mix["reset_rate"] + (1 - mix["reset_rate"]) * mix["truncate_rate"]
    drawn = mix["fail_rate"] + (1 - mix["fail_rate"]) * (1 - mix["hang_rate"]) * body
    return limited + (1 - limited) * drawn


def draw_fault_seeds(count: int) -> list:
    """Fresh seeds from the OS: nobody, including this soak, picks them."""
    system = random.SystemRandom()
    return [system.randrange(SEED_SPACE) for _ in range(count)]


@dataclass
class SeedRun:
    """One fault seed: its first sync under faults and, if that gave up, the rerun."""

    case: str
    seed: int
    records: int
    requests: int = 0
    kinds: Counter = field(default_factory=Counter)
    failed: int = 0  # requests that yielded no page
    retries: int = 0
    exit_code: int = 0
    upserts: int = 0
    timeouts: int = 0
    rerun_exit: int | None = None
    rerun_requests: int = 0
    verdict: Verdict = field(default_factory=Verdict)
    elapsed: float = 0.0

    @property
    def faults(self) -> int:
        return sum(self.kinds.values())

    @property
    def survived(self) -> bool:
        return self.exit_code == 0

    def figures(self) -> dict:
        data = asdict(self)
        data.update(kinds=dict(self.kinds), faults=self.faults, verdict=self.verdict.figures())
        return data


def run_fault_soak(soak: Soak, phase: Phase) -> None:
    records = soak.profile.fault_records
    runs = [run_seed(soak, f"seed {seed}", seed, records) for seed in soak.fault_seeds]
    hang = None
    if soak.profile.long_hang:
        seed = soak.fault_seeds[0] if soak.fault_seeds else draw_fault_seeds(1)[0]
        hang = run_seed(soak, f"long hang, seed {seed}", seed, records, long_hang=True)
    report_fault_soak(phase, runs, hang, replayed=bool(soak.args.fault_seeds))
    if hang:
        phase.details.insert(
            1,
            f"long hang: one request hangs {long_hang_seconds(soak):g} s, past the "
            f"{header_wait_s(soak):g} s read timeout, after {LONG_HANG_AFTER_PAGES} pages",
        )


def run_seed(soak: Soak, case: str, seed: int, records: int, long_hang: bool = False):
    result = SeedRun(case, seed, records)
    with soak.simulator(records) as sim:
        project = soak.project("faults " + case, soak.configuration(sim))
        sim.set_faults(**FAULT_MIX, fault_seed=seed)
        sync = sync_with_long_hang if long_hang else sync_plainly
        run = sync(soak, sim, project, seed)
        record_first_sync(result, run, data_requests(sim))
        if not run.ok:
            sim.clear_faults()  # the API recovers; what was lost must come back
            sim.clear_requests()
            rerun = soak.debug(project)
            result.rerun_exit = rerun.returncode
            result.rerun_requests = len(data_requests(sim))
        result.verdict = check(project, expected_of(sim))
    return result


def sync_plainly(soak: Soak, sim, project, seed: int) -> Run:
    return soak.debug(project)


def header_wait_s(soak: Soak) -> float:
    """How long the connector waits for an answer's headers: its read timeout, cut to the
    attempt's deadline."""
    return min(soak.connector.READ_TIMEOUT_S, soak.connector.ATTEMPT_DEADLINE_S)


def long_hang_seconds(soak: Soak) -> float:
    return header_wait_s(soak) + LONG_HANG_PAST_TIMEOUT_S


def sync_with_long_hang(soak: Soak, sim, project, seed: int) -> Run:
    """Make the first request after LONG_HANG_AFTER_PAGES pages hang past the timeout.

    Every fault but the hang is off for half the read timeout: the next request surely
    arrived and hung in that window; its retry (after the timeout) surely did not, and
    meets the normal mix again.
    """
    fired = []
    hang_s = long_hang_seconds(soak)

    def hang_next_request() -> None:
        fired.append(time.monotonic())
        quiet = {"fail_rate": 0.0, "rate_limit_every": 0, "reset_rate": 0.0}
        sim.set_faults(**quiet, truncate_rate=0.0, hang_rate=1.0, hang_seconds=hang_s)
        time.sleep(header_wait_s(soak) / 2)
        sim.set_faults(**FAULT_MIX, fault_seed=seed)

    with Watcher(lambda: served_pages(sim) >= LONG_HANG_AFTER_PAGES, hang_next_request):
        run = soak.debug(project)
    if fired:  # the hung request is logged only when its late answer is written
        remaining = fired[0] + hang_s + 1 - time.monotonic()
        wait_until(lambda: False, max(0.0, remaining), threading.Event())
    return run


def record_first_sync(result: SeedRun, run: Run, requests: list) -> None:
    result.requests = len(requests)
    result.kinds = Counter(info.fault for info in requests if info.fault in FAULT_KINDS)
    result.timeouts = sum(TIMED_OUT in line for line in run.output.splitlines() if "retry" in line)
    result.failed = sum(result.kinds[kind] for kind in FAILING_KINDS) + result.timeouts
    result.retries = run.retries
    result.exit_code = run.returncode
    result.upserts = run.upserts
    result.elapsed = run.elapsed


def check_seed(phase: Phase, run: SeedRun) -> None:
    """The behaviour each seed must show, besides the data check."""
    name = run.case
    if run.survived:
        phase.check(run.upserts == run.records, f"{name}: {run.upserts} upserts, {run.records}")
        phase.check(
            run.retries == run.failed,
            f"{name}: connector counted {run.retries} retries for {run.failed} failed requests",
        )
    else:
        phase.check(run.rerun_exit == 0, f"{name}: the rerun exited {run.rerun_exit}")


def report_fault_soak(phase: Phase, runs: list, hang: SeedRun | None, replayed: bool) -> None:
    everything = [*runs, hang] if hang else runs
    for run in everything:
        phase.add(run.verdict)
        check_seed(phase, run)
    if hang:
        phase.check(hang.timeouts == 1, f"long hang: {hang.timeouts} read timeouts, expected 1")
    phase.cases = len(everything)
    phase.requests = sum(run.requests + run.rerun_requests for run in everything)
    phase.faults = sum(run.faults for run in everything)
    phase.retries = sum(run.retries for run in everything)
    phase.survived = f"{sum(run.survived for run in runs)}/{len(runs)}"
    phase.figures = {
        "mix": FAULT_MIX,
        "configured_failure_share": failure_share(FAULT_MIX),
        "seeds": [run.figures() for run in runs],
        "long_hang": hang.figures() if hang else None,
    }
    phase.details.append(describe_plan(runs, replayed))
    phase.details += [describe_seed(run) for run in everything]


def describe_plan(runs: list, replayed: bool) -> str:
    requests = sum(run.requests for run in runs)
    failed = sum(run.failed for run in runs)
    seeds = ",".join(str(run.seed) for run in runs)
    origin = (
        "replayed from --fault-seeds" if replayed else "drawn at random this run, none selected"
    )
    text = (
        f"{len(runs)} fault seeds {origin} (replay: --fault-seeds {seeds or 'none'}); page "
        f"{PAGE_SIZE}; configured failure share "
        f"{failure_share(FAULT_MIX):.0%} ({'/'.join(map(str, FAULT_MIX['fail_statuses']))}, "
        f"429 every {FAULT_MIX['rate_limit_every']}th "
        f"with Retry-After {FAULT_MIX['retry_after']} s, resets, truncated bodies, "
        f"{FAULT_MIX['hang_seconds']:g} s latency spikes), measured {share(failed, requests)}; "
        f"survived (first sync exit 0, informational) {sum(r.survived for r in runs)}/{len(runs)}"
    )
    return text


def describe_seed(run: SeedRun) -> str:
    mix = ", ".join(f"{kind} {run.kinds[kind]}" for kind in FAULT_KINDS if run.kinds[kind])
    text = (
        f"{run.case}: {run.records:,} records, exit {run.exit_code}; {run.requests} requests, "
        f"{run.faults} faults ({mix or 'none'}), {run.failed} failed "
        f"({share(run.failed, run.requests)}), {run.retries} retries, {run.timeouts} read "
        f"timeouts, {run.elapsed:.1f} s"
    )
    if run.rerun_exit is not None:
        text += f"; rerun, API recovered: exit {run.rerun_exit}, {run.rerun_requests} requests"
    return text + f"; check: {run.verdict.summary()}"


def share(part: int, whole: int) -> str:
    return f"{part / whole:.0%}" if whole else "n/a"
