"""Phase: SIGKILL `fivetran debug` at random moments, then rerun it without a reset.

Kills are counted from what happened, not from what was aimed at. A kill is a fault only
if it reached a running sync (the CLI died of SIGKILL); each is reported by where it
landed: during start-up (no page served yet), mid-sync (pages served, the final checkpoint
not yet written) or after the final checkpoint (the process was still running). A kill
that found the process already gone is reported apart and never counted.
"""

import contextlib
import json
import os
import signal
import statistics
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bench.soak.checker import Verdict, check, expected_of
from bench.soak.harness import BODY_FAULTS, Run, Soak, data_requests, served_pages, wait_until
from bench.soak.results import Phase
from bench.soak.settings import CHECKPOINT_INTERVAL, CLI_TIMEOUT_S, PAGE_SIZE
from hed_simulator.changelog import CursorCodec

STARTUP_KILL_SHARE = 0.15  # of the randomly aimed kills, the share aimed at CLI start-up
STARTUP_KILL_WINDOW_S = 1.5  # kills aimed at start-up land this soon after Popen
KILL_JITTER_S = 0.15  # after the k-th page is served, wait up to this long: mid-page kills
MAX_RESUMES = 3  # reruns allowed after a kill before the trial counts as failed
# Rows a resume may re-read: one checkpoint interval plus one page. At a kill the rows
# served past the last checkpoint are the pages loaded since it (fewer than the interval),
# the page being loaded and the one page fetched ahead.
REFETCH_BOUND = CHECKPOINT_INTERVAL + PAGE_SIZE
# Where a kill landed.
START_UP = "start-up"
MID_SYNC = "mid-sync"
AFTER_CHECKPOINT = "after final checkpoint"
AFTER_EXIT = "after exit"
DELIVERED = (START_UP, MID_SYNC, AFTER_CHECKPOINT)


@dataclass
class Trial:
    """One kill and the resumes after it."""

    aimed_after_pages: int  # 0 aims at start-up
    landed: str = ""
    exit_code: int = 0  # of the killed CLI: -SIGKILL when the kill reached it
    pages_before_kill: int = 0
    saved_position: int = 0
    refetched: list = field(default_factory=list)  # rows served again, per resume
    resume_runs: int = 0
    retries: int = 0
    requests: int = 0
    verdict: Verdict = field(default_factory=Verdict)


def aim_kill(soak: Soak, index: int, pages: int) -> int:
    """Pages to let the simulator serve before the kill (0: during start-up).

    The first three trials aim once mid-sync, once at start-up and once at the last page
    (where the final checkpoint and the exit race the kill); the rest aim at random.
    """
    if index == 1:
        return 0
    if index == 2:
        return pages
    if index > 2 and soak.rng.random() < STARTUP_KILL_SHARE:
        return 0
    return soak.rng.randint(1, max(1, pages - 1))


def kill_during_sync(soak: Soak, sim, project: Path, trial: Trial) -> Run:
    """Start a sync and SIGKILL its process group at the aimed moment."""
    process, log_path = soak.start_debug(project)
    started = time.monotonic()
    if trial.aimed_after_pages == 0:
        time.sleep(soak.rng.uniform(0, STARTUP_KILL_WINDOW_S))
    else:

        def reached() -> bool:
            return served_pages(sim) >= trial.aimed_after_pages or process.poll() is not None

        wait_until(reached, CLI_TIMEOUT_S, threading.Event())
        time.sleep(soak.rng.uniform(0, KILL_JITTER_S))
    with contextlib.suppress(ProcessLookupError):  # already reaped: it ended on its own
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    output = log_path.read_text(errors="replace")
    soak.outputs.append((f"killed {project.name}", output))
    return Run(process.returncode, output, time.monotonic() - started)


def where_kill_landed(exit_code: int, pages_before: int, saved: int, total: int) -> str:
    """From what happened: did SIGKILL end the CLI, and how far had the sync got?"""
    if exit_code != -signal.SIGKILL:
        return AFTER_EXIT
    if pages_before == 0:
        return START_UP
    return AFTER_CHECKPOINT if saved >= total else MID_SYNC


def served_positions(sim, codec: CursorCodec, total: int) -> set:
    """Log positions (= record indices, with no changes in the log) sent in whole pages."""
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


def run_crash_trial(soak: Soak, sim, index: int, phase: Phase) -> Trial:
    total = sim.record_count
    codec = CursorCodec(soak.args.seed)
    trial = Trial(aimed_after_pages=aim_kill(soak, index, -(-total // PAGE_SIZE)))
    project = soak.project(f"crash-{index:02d}", soak.configuration(sim))
    sim.clear_requests()
    killed = kill_during_sync(soak, sim, project, trial)
    served = served_positions(sim, codec, total)
    trial.exit_code = killed.returncode
    trial.pages_before_kill = served_pages(sim)
    trial.requests += len(data_requests(sim))
    trial.saved_position = saved_position(project, codec)
    trial.landed = where_kill_landed(
        trial.exit_code, trial.pages_before_kill, trial.saved_position, total
    )
    resume(soak, sim, project, trial, served, phase, index)
    trial.verdict = check(project, expected_of(sim))
    phase.add(trial.verdict)
    return trial


def resume(soak, sim, project, trial: Trial, served_before: set, phase, index: int) -> None:
    """Rerun until a sync succeeds (at most MAX_RESUMES times), measuring re-reads."""
    codec = CursorCodec(soak.args.seed)
    seen = set(served_before)
    for _ in range(MAX_RESUMES):
        sim.clear_requests()
        run = soak.debug(project)
        served = served_positions(sim, codec, sim.record_count)
        trial.requests += len(data_requests(sim))
        trial.resume_runs += 1
        trial.retries += run.retries
        trial.refetched.append(len(served & seen))
        seen |= served
        check_resume(phase, index, run, served, trial)
        if run.ok:
            return


def check_resume(phase: Phase, index: int, run: Run, served: set, trial: Trial) -> None:
    """A resume starts at the saved cursor and upserts each row it was served once."""
    phase.check(run.ok, f"trial {index}: resume exited {run.returncode}")
    if served and trial.resume_runs == 1:
        phase.check(
            min(served) == trial.saved_position,
            f"trial {index}: resume started at {min(served)}, state said {trial.saved_position}",
        )
    phase.check(
        run.upserts <= len(served),
        f"trial {index}: {run.upserts} upserts for {len(served)} rows served",
    )


def run_crash_phase(soak: Soak, phase: Phase) -> None:
    with soak.simulator(soak.profile.crash_records) as sim:
        trials = [run_crash_trial(soak, sim, i, phase) for i in range(soak.profile.trials)]
    report_crash_phase(phase, trials, soak.profile.crash_records)


def report_crash_phase(phase: Phase, trials: list, records: int) -> None:
    refetched = [count for trial in trials for count in trial.refetched[:1]]
    landed = Counter(trial.landed for trial in trials)
    delivered = sum(landed[where] for where in DELIVERED)
    phase.cases = len(trials)
    phase.faults = delivered
    phase.requests = sum(trial.requests for trial in trials)
    phase.retries = sum(trial.retries for trial in trials)
    phase.figures = {
        "landed": {where: landed[where] for where in (*DELIVERED, AFTER_EXIT)},
        "refetched": refetched,
        "trials": [{**asdict(t), "verdict": t.verdict.figures()} for t in trials],
    }
    phase.check(landed[MID_SYNC] > 0, "no kill landed mid-sync")
    worst = max(refetched, default=0)
    phase.check(
        worst <= REFETCH_BOUND,
        f"a resume re-fetched {worst} rows, over checkpoint_interval + page_size = "
        f"{REFETCH_BOUND}",
    )
    phase.details += [
        f"{len(trials)} trials of {records:,} records; kills: mid-sync {landed[MID_SYNC]}, "
        f"start-up {landed[START_UP]}, after final checkpoint {landed[AFTER_CHECKPOINT]} "
        f"(faults = kills delivered to a running sync: {delivered}); after exit "
        f"{landed[AFTER_EXIT]} (not counted); resume runs {sum(t.resume_runs for t in trials)}",
        "re-fetched rows per resume (served again after the kill): "
        + describe_counts(refetched)
        + f"; bound checkpoint_interval + page_size = {REFETCH_BOUND}",
        describe_checks(trials),
    ]


def describe_checks(trials: list) -> str:
    """One line for all clean trials; the summary of each one that is not."""
    clean = sum(trial.verdict.clean for trial in trials)
    text = f"check after each trial's last resume: {clean}/{len(trials)} exact"
    for index, trial in enumerate(trials):
        if not trial.verdict.clean:
            text += f"; trial {index} ({trial.landed}): {trial.verdict.summary()}"
    return text


def describe_counts(counts: list) -> str:
    if not counts:
        return "none"
    return (
        f"min {min(counts)}, median {statistics.median(counts):g}, max {max(counts)} "
        f"(all: {' '.join(map(str, counts))})"
    )
