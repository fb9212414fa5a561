"""The soak's sizes and limits, in one place, each with the reason for its value."""

from dataclasses import dataclass

# Distinctive, random per run: any occurrence outside configuration.json is a leak.
SECRET_PREFIX = "soak-secret-"
PAGE_SIZE = 100  # the API default; round pages keep the re-fetch arithmetic readable
# The connector's default, set explicitly: the crash phase's re-fetch bound depends on it.
CHECKPOINT_INTERVAL = 100
CLI_TIMEOUT_S = 900  # one `fivetran debug`; the slowest (the long-hang case) takes ~2 min
POLL_S = 0.005  # how often the soak watches the simulator's request log
DATA_PATH = "/hed_data"  # the API's one data endpoint (contract)


@dataclass(frozen=True)
class Profile:
    """Sizes of one soak mode."""

    name: str
    fault_records: int  # source size of each fault seed's sync
    fault_seeds: int  # N: random, unselected fault seeds
    long_hang: bool  # one extra fault case whose request hangs past the read timeout
    crash_records: int  # source size of each crash trial
    trials: int  # crash-and-resume trials
    churn_records: int  # initial source size of the churn phase
    drift_records: int  # source size of each drift case
    fix_every_drift: bool  # "fix the API, sync again" after every drift case, not only the last
    matrix_records: int  # source size of each bad-input case (pages to fail in the middle of)
    outages: bool  # bad input's outage cases, minutes each (a 3-minute outage, ...)


FULL = Profile(
    name="full",
    fault_records=2_000,
    fault_seeds=20,
    long_hang=True,
    crash_records=5_000,
    trials=20,
    churn_records=5_000,
    drift_records=2_000,
    fix_every_drift=True,
    matrix_records=1_000,
    outages=True,
)
# Sized for CI: about 2-4 minutes on 2 shared cores.
QUICK = Profile(
    name="quick",
    fault_records=1_000,
    fault_seeds=3,
    long_hang=False,
    crash_records=1_000,
    trials=3,
    churn_records=1_000,
    drift_records=300,
    fix_every_drift=False,
    matrix_records=500,
    outages=False,
)
