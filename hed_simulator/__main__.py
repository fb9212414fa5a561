"""`python -m hed_simulator`: run the simulator until SIGINT or SIGTERM.

The first stdout line is the base URL (flushed at once) so scripts can start it with
`--port 0` and read the port. Nothing else is printed unless --verbose is given, and even
then only method, path and status go to stderr.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from hed_simulator.simulator import (
    DEFAULT_HOST,
    DEFAULT_RECORDS,
    DEFAULT_SEED,
    DEMO_API_KEY,
    HedSimulator,
)

# How often the main thread wakes to notice a stop request.
_WAIT_SECONDS = 0.5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hed_simulator", description="Local HED API simulator (dev only)."
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="bind address (default loopback)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS)
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--api-key", default=DEMO_API_KEY, help="default: the demo key")
    parser.add_argument("--verbose", action="store_true", help="log method, path, status")
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started it dies (scripts: no orphan if killed)",
    )
    faults = parser.add_argument_group("faults (GET /hed_data only)")
    faults.add_argument("--fail-rate", type=float, default=0.0, help="fraction answered 500/503")
    faults.add_argument("--rate-limit-every", type=int, default=0, help="every Nth gets 429")
    faults.add_argument("--retry-after", type=float, default=1, help="Retry-After seconds")
    faults.add_argument("--latency-ms", type=float, default=0.0, help="delay per request")
    faults.add_argument("--reset-rate", type=float, default=0.0, help="fraction reset mid-body")
    faults.add_argument("--truncate-rate", type=float, default=0.0, help="fraction cut short")
    faults.add_argument("--hang-rate", type=float, default=0.0, help="fraction that stall")
    faults.add_argument("--hang-seconds", type=float, default=5.0, help="stall duration")
    faults.add_argument("--fault-seed", type=int, default=0, help="makes faults reproducible")
    return parser.parse_args(argv)


def build_simulator(args: argparse.Namespace) -> HedSimulator:
    simulator = HedSimulator(
        records=args.records,
        seed=args.seed,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        verbose=args.verbose,
    )
    simulator.set_faults(
        fail_rate=args.fail_rate,
        rate_limit_every=args.rate_limit_every,
        retry_after=args.retry_after,
        latency_ms=args.latency_ms,
        reset_rate=args.reset_rate,
        truncate_rate=args.truncate_rate,
        hang_rate=args.hang_rate,
        hang_seconds=args.hang_seconds,
        fault_seed=args.fault_seed,
    )
    return simulator


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        simulator = build_simulator(args)
    except ValueError as error:
        print(f"hed_simulator: {error}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    parent = os.getppid()
    print(simulator.start(), flush=True)
    try:
        while not stop.wait(_WAIT_SECONDS):
            if args.exit_with_parent and os.getppid() != parent:
                break  # reparented: whoever started us is gone
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
