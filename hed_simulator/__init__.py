"""Local simulator of the HED student-records REST API, for development and tests only.

Serves synthetic records over real HTTP (or https) on loopback, with opaque signed cursors,
an update change log, injectable faults and outages, drift modes that serve the value formats
the real API changed to (with `expected()`, the truth a connector must land), and the
OpenAPI document of the contract at GET /hed_api_spec. Never imported by connector.py.

    from hed_simulator import HedSimulator, DEMO_API_KEY, RECORD_FIELDS
    with HedSimulator(records=600, seed=42) as sim:
        ...  # GET f"{sim.url}/hed_data" with header x-api-key: DEMO_API_KEY
        sim.set_drift(("iso-timestamps", "invalid-values"), rate=0.2, seed=1)
        truth = sim.expected()  # Expected(rows, invalid, rejected)

Command line: `python -m hed_simulator --help`.
"""

from hed_simulator.data import FIELD_KINDS, RECORD_FIELDS
from hed_simulator.drift import DRIFT_MODES, REPRESENTATION_MODES, Expected
from hed_simulator.outage import OUTAGE_MODES
from hed_simulator.service import REQUEST_LOG_LIMIT, RequestInfo
from hed_simulator.simulator import DEMO_API_KEY, HedSimulator

__all__ = [
    "DEMO_API_KEY",
    "DRIFT_MODES",
    "FIELD_KINDS",
    "OUTAGE_MODES",
    "RECORD_FIELDS",
    "REPRESENTATION_MODES",
    "REQUEST_LOG_LIMIT",
    "Expected",
    "HedSimulator",
    "RequestInfo",
]
