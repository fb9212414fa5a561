"""Phase: the API's data drifts; every served record must still land.

One case per drift mode and one with every mode at once, each a real `fivetran debug` of
a fresh drifted source. Every served record must be in the warehouse: typed values exact
where the served value converts, the raw value in `_hed_invalid_values` where it does not,
an item that cannot be keyed whole in `hed_rejected_records`. Then the API is fixed (the
drift cleared) and an incremental sync runs: nothing new arrives, and the warehouse still
holds everything, because nothing had been skipped for a later sync to bring. Zero lost
is the figure.
"""

from dataclasses import asdict, dataclass, field

from bench.soak.checker import KEY, Expected, Verdict, check, expected_of, is_keyable
from bench.soak.harness import Soak, data_requests
from bench.soak.results import Phase
from hed_simulator import DRIFT_MODES, RECORD_FIELDS

MODE_RATE = 0.5  # one mode: half the records drift, so drifted and clean share every page
ALL_MODES_RATE = 0.3  # all modes: each picks 30% of records on its own, so they overlap
DATA_QUALITY = "Data quality:"  # the connector's one warning when anything did not fit


@dataclass
class DriftCase:
    """One drifted sync and the incremental sync after the API was fixed."""

    name: str
    modes: tuple
    rate: float
    served: int = 0  # items the source serves
    drifted: int = 0  # items served other than in the standard form
    exit_code: int = 0
    requests: int = 0
    warned: bool = False
    verdict: Verdict = field(default_factory=Verdict)
    fixed: bool = False  # the API was fixed and synced again
    fixed_exit: int = 0
    fixed_upserts: int = 0
    fixed_requests: int = 0
    after_fix: Verdict = field(default_factory=Verdict)
    elapsed: float = 0.0

    def figures(self) -> dict:
        data = asdict(self)
        data.update(verdict=self.verdict.figures(), after_fix=self.after_fix.figures())
        return data


def drift_cases(fix_every: bool) -> list:
    """(name, modes, rate, fix the API afterwards?) per case: every mode alone, then all."""
    cases = [(mode, (mode,), MODE_RATE, fix_every) for mode in DRIFT_MODES]
    return [*cases, ("all modes", DRIFT_MODES, ALL_MODES_RATE, True)]


def count_drifted(served: list, expected: Expected) -> int:
    """Items served other than in the API's standard form: respelled or invalid values,
    new fields, non-ASCII text (its page then comes without a charset), or no usable key."""
    return sum(is_drifted(item, expected) for item in served)


def is_drifted(item, expected: Expected) -> bool:
    if not is_keyable(item):
        return True
    truth = expected.rows.get(str(item[KEY]))
    new_fields = set(item) - set(RECORD_FIELDS)
    non_ascii = any(isinstance(value, str) and not value.isascii() for value in item.values())
    return truth is None or item != truth or bool(new_fields) or non_ascii


def run_drift_case(soak: Soak, name: str, modes: tuple, rate: float, fix: bool) -> DriftCase:
    case = DriftCase(name, modes, rate)
    with soak.simulator(soak.profile.drift_records) as sim:
        sim.set_drift(modes=modes, rate=rate, seed=soak.args.seed)
        project = soak.project("drift " + name, soak.configuration(sim))
        run = soak.debug(project)
        expected = expected_of(sim)
        served = sim.records()
        case.served, case.drifted = len(served), count_drifted(served, expected)
        case.exit_code, case.elapsed = run.returncode, run.elapsed
        case.requests = len(data_requests(sim))
        case.warned = DATA_QUALITY in run.output
        case.verdict = check(project, expected)
        if fix:
            fix_and_sync_again(soak, sim, project, case, expected)
    return case


def fix_and_sync_again(soak: Soak, sim, project, case: DriftCase, expected: Expected) -> None:
    """The API owner fixes the API; the next sync must have nothing left to bring, and the
    warehouse must still hold what the drifted sync landed."""
    sim.clear_drift()
    sim.clear_requests()
    fixed = soak.debug(project)
    case.fixed = True
    case.fixed_exit, case.fixed_upserts = fixed.returncode, fixed.upserts
    case.fixed_requests = len(data_requests(sim))
    case.after_fix = check(project, expected)


def check_case(phase: Phase, case: DriftCase) -> None:
    name = case.name
    phase.check(case.exit_code == 0, f"drift {name}: sync exited {case.exit_code}")
    misfits = case.verdict.raw_values + case.verdict.rejected_expected
    if misfits:
        phase.check(
            case.warned, f"drift {name}: no '{DATA_QUALITY}' warning for {misfits} misfits"
        )
    if not case.fixed:
        return
    phase.check(case.fixed_exit == 0, f"drift {name}: sync after the fix exited {case.fixed_exit}")
    phase.check(
        case.fixed_upserts == 0,
        f"drift {name}: the sync after the fix upserted {case.fixed_upserts}: something had "
        "been skipped",
    )


def run_drift(soak: Soak, phase: Phase) -> None:
    specs = drift_cases(soak.profile.fix_every_drift)
    cases = [run_drift_case(soak, *spec) for spec in specs]
    for case in cases:
        add_worst(phase, case.verdict, case.after_fix)
        check_case(phase, case)
        phase.details.append(describe_case(case))
    phase.cases = len(cases)
    phase.requests = sum(case.requests + case.fixed_requests for case in cases)
    phase.faults = sum(case.drifted for case in cases)
    phase.figures = {"cases": [case.figures() for case in cases]}


def add_worst(phase: Phase, *verdicts: Verdict) -> None:
    """Checks of one warehouse at two moments: count each defect once, at its worst."""
    phase.lost += max(verdict.lost for verdict in verdicts)
    phase.stale += max(verdict.stale for verdict in verdicts)
    phase.wrong += max(verdict.wrong for verdict in verdicts)


def describe_case(case: DriftCase) -> str:
    text = (
        f"{case.name} (rate {case.rate:g}): exit {case.exit_code}, {case.served} items served, "
        f"{case.drifted} drifted, warned {'yes' if case.warned else 'no'}, "
        f"{case.elapsed:.1f} s; check: {case.verdict.summary()}"
    )
    if case.fixed:
        text += (
            f"; API fixed, incremental sync: exit {case.fixed_exit}, {case.fixed_requests} "
            f"requests, {case.fixed_upserts} upserts; check: {case.after_fix.summary()}"
        )
    return text
