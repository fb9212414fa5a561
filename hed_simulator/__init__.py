"""Local simulator of the HED student-records REST API, for development and tests only.

Serves synthetic records over real HTTP on loopback, with opaque signed cursors, an update
change log, and injectable faults. Never imported by connector.py.

    from hed_simulator import HedSimulator, DEMO_API_KEY, RECORD_FIELDS
    with HedSimulator(records=600, seed=42) as sim:
        ...  # GET f"{sim.url}/hed_data" with header x-api-key: DEMO_API_KEY

Command line: `python -m hed_simulator --help`.
"""

from hed_simulator.data import RECORD_FIELDS
from hed_simulator.service import REQUEST_LOG_LIMIT, RequestInfo
from hed_simulator.simulator import DEMO_API_KEY, HedSimulator

__all__ = ["DEMO_API_KEY", "RECORD_FIELDS", "REQUEST_LOG_LIMIT", "HedSimulator", "RequestInfo"]
