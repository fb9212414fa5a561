"""Phase: rounds of new and updated records, each followed by an incremental sync.

Each round must upsert exactly the changed records, and afterwards every row must hold its
record's latest version: a row still holding the version before the round is stale.
"""

from bench.soak.checker import Verdict, check, expected_of
from bench.soak.harness import Run, Soak, data_requests
from bench.soak.results import Phase

# (new, updated) records per round, each followed by an incremental sync: mixed, only
# updates, only new records, small, and the smallest change there is.
CHURN_ROUNDS = ((50, 120), (0, 200), (300, 0), (25, 25), (1, 1))
INCREMENTAL_LOG = "Incremental sync from saved cursor"  # the connector's first log line


def run_churn(soak: Soak, phase: Phase) -> None:
    with soak.simulator(soak.profile.churn_records) as sim:
        project = soak.project("churn", soak.configuration(sim))
        first = soak.debug(project)
        phase.check(first.ok, f"churn initial sync exited {first.returncode}")
        history = [expected_of(sim)]
        results, verdict = [], Verdict()
        for number, (new, updated) in enumerate(CHURN_ROUNDS, start=1):
            sim.clear_requests()
            sim.add_changes(new=new, updated=updated)
            run = soak.debug(project)
            latest = expected_of(sim)
            verdict = check(project, latest, tuple(history))
            history.append(latest)
            phase.requests += len(data_requests(sim))
            phase.retries += run.retries
            phase.add(verdict)
            check_round(phase, number, run, verdict, new + updated)
            results.append(f"{new}+{updated}->{run.upserts}")
    phase.cases = len(CHURN_ROUNDS)
    phase.details.append(
        f"initial {soak.profile.churn_records:,} records, then rounds (new+updated -> "
        f"upserts): {', '.join(results)}; after the last round: {verdict.summary()}"
    )


def check_round(phase: Phase, number: int, run: Run, verdict: Verdict, changed: int) -> None:
    """Each incremental sync upserts exactly the changed records and leaves none stale."""
    phase.check(run.ok, f"churn round {number} exited {run.returncode}")
    phase.check(INCREMENTAL_LOG in run.output, f"round {number} was not incremental")
    phase.check(
        run.upserts == changed, f"round {number}: {run.upserts} upserts, {changed} changes"
    )
    phase.check(verdict.clean, f"round {number}: {verdict.summary()}")
