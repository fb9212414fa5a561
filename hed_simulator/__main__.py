"""`python -m hed_simulator`: run the simulator until SIGINT or SIGTERM.

The first stdout line is the base URL (flushed at once) so scripts can start it with
`--port 0` and read the port. Nothing else is printed unless --verbose is given, and even
then only method, path and status go to stderr; the one exception is `--tls` without
`--ca-file`, which names the generated CA file on stderr (a client needs it).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
from types import FrameType

from hed_simulator.drift import DRIFT_MODES
from hed_simulator.outage import OUTAGE_MODES
from hed_simulator.simulator import (
    DEFAULT_HOST,
    DEFAULT_RECORDS,
    DEFAULT_SEED,
    DEMO_API_KEY,
    HedSimulator,
)

# How often the main thread wakes to notice a stop request.
_WAIT_SECONDS = 0.5
# The contract's reference outage: a connector rides out 3 minutes of downtime.
_DEFAULT_OUTAGE_SECONDS = 180.0
_DESCRIPTION = """Local HED API simulator (dev and tests only).

Serves GET /hed_data (x-api-key header, page_size 1-200, cursor) with synthetic student
records, GET /hed_api_spec (the OpenAPI 3.1 document of the contract, no key needed) and
POST /_simulator/changes ({"new": N, "updated": M}, same key). Prints the base URL as the
first stdout line and runs until Ctrl-C or SIGTERM."""
_EPILOG = """drift modes (--drift, comma-separated):
  iso-timestamps   timestamps as other ISO 8601 spellings of the same UTC instant
                   (+02:00, Z, -05:00, 7 fractional digits, T without zone, date-only)
  string-numbers   numbers as text ("3.10", "12", "12.0", " 12 ", "1234.56")
  string-booleans  at_risk_flag as "true"/"f"/"Yes"/"0"... in mixed case, or 0/1
  invalid-values   one value per record that cannot convert ("N/A", "12abc", "maybe")
  no-charset       pages as text/plain without charset; standings with non-ASCII text
  unkeyed          items without a usable record_id, or not objects at all
  new-fields       undeclared fields (retention_score 12345.67, library_visits, campus)
iso-timestamps, string-numbers, string-booleans and no-charset change only the spelling:
the values stay the same (no-charset's non-ASCII text is part of the values, correctly
decoded as UTF-8). --drift-rate picks each mode's records independently."""


def parse_mode_list(text: str) -> tuple[str, ...]:
    """--drift value: comma-separated mode names, each known."""
    modes = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [mode for mode in modes if mode not in DRIFT_MODES]
    if not modes or unknown:
        choices = ", ".join(DRIFT_MODES)
        raise argparse.ArgumentTypeError(f"unknown drift mode in {text!r}; choose from {choices}")
    return modes


def parse_status_list(text: str) -> tuple[int, ...]:
    """--fail-statuses value: comma-separated HTTP statuses."""
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected statuses like 500,503, got {text!r}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m hed_simulator",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="bind address (default loopback)")
    parser.add_argument(
        "--port", type=int, default=0, metavar="N", help="port to listen on; 0 picks a free one"
    )
    parser.add_argument(
        "--records",
        type=int,
        default=DEFAULT_RECORDS,
        metavar="N",
        help=f"records to start with (default {DEFAULT_RECORDS})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        metavar="N",
        help=f"makes data and cursors reproducible (default {DEFAULT_SEED})",
    )
    parser.add_argument("--api-key", default=DEMO_API_KEY, help="default: the demo key")
    parser.add_argument("--verbose", action="store_true", help="log method, path, status")
    parser.add_argument(
        "--exit-with-parent",
        action="store_true",
        help="stop when the process that started it dies (scripts: no orphan if killed)",
    )
    parser.add_argument("--tls", action="store_true", help="serve https (self-signed CA)")
    parser.add_argument(
        "--ca-file", help="with --tls: also write the CA certificate (PEM) to this path"
    )
    add_fault_arguments(parser)
    add_drift_arguments(parser)
    args = parser.parse_args(argv)
    check_combinations(parser, args)
    return args


def add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    faults = parser.add_argument_group("faults (GET /hed_data only, except the outage)")
    faults.add_argument(
        "--fail-rate", type=float, default=0.0, help="fraction answered with --fail-statuses"
    )
    faults.add_argument(
        "--fail-statuses",
        type=parse_status_list,
        default=None,
        metavar="S[,S...]",
        help="statuses --fail-rate picks from (default 500,503), e.g. 408 or 425 or 502",
    )
    faults.add_argument("--rate-limit-every", type=int, default=0, help="every Nth gets 429")
    faults.add_argument("--retry-after", type=float, default=1, help="Retry-After seconds")
    faults.add_argument("--latency-ms", type=float, default=0.0, help="delay per request")
    faults.add_argument("--reset-rate", type=float, default=0.0, help="fraction reset mid-body")
    faults.add_argument("--truncate-rate", type=float, default=0.0, help="fraction cut short")
    faults.add_argument("--hang-rate", type=float, default=0.0, help="fraction that stall")
    faults.add_argument("--hang-seconds", type=float, default=5.0, help="stall duration")
    faults.add_argument(
        "--trickle-rate", type=float, default=0.0, help="fraction of pages sent byte by byte"
    )
    faults.add_argument(
        "--trickle-seconds", type=float, default=2.0, help="delay between trickled bytes"
    )
    faults.add_argument(
        "--tls-reset-rate",
        type=float,
        default=0.0,
        help="with --tls: fraction of new connections dropped mid-handshake",
    )
    faults.add_argument("--fault-seed", type=int, default=0, help="makes faults reproducible")
    faults.add_argument(
        "--outage-after",
        type=int,
        default=None,
        metavar="N",
        help="after N more GET /hed_data requests the API goes down (0: at once)",
    )
    faults.add_argument(
        "--outage-seconds",
        type=float,
        default=None,
        metavar="S",
        help=f"wall-clock length of the outage (default {_DEFAULT_OUTAGE_SECONDS:g})",
    )
    faults.add_argument(
        "--outage-mode",
        choices=OUTAGE_MODES,
        default=None,
        help="503: answer 503 to everything; refuse: refuse connections, then listen again "
        "on the same port (default 503)",
    )


def add_drift_arguments(parser: argparse.ArgumentParser) -> None:
    drift = parser.add_argument_group("drift (value formats the real API changed to)")
    drift.add_argument(
        "--drift",
        type=parse_mode_list,
        default=(),
        metavar="MODE[,MODE...]",
        help="serve drifted records; modes listed below",
    )
    drift.add_argument(
        "--drift-rate",
        type=float,
        default=None,
        metavar="R",
        help="share of records each mode affects (default 1.0)",
    )
    drift.add_argument(
        "--drift-seed",
        type=int,
        default=None,
        metavar="N",
        help="which records drift, and how (default 0)",
    )


def check_combinations(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Options that mean nothing without another are errors, not silently ignored."""
    if args.ca_file and not args.tls:
        parser.error("--ca-file needs --tls")
    if args.tls_reset_rate and not args.tls:
        parser.error("--tls-reset-rate needs --tls")
    if not args.drift and (args.drift_rate is not None or args.drift_seed is not None):
        parser.error("--drift-rate and --drift-seed need --drift")
    outage_details = args.outage_seconds is not None or args.outage_mode is not None
    if args.outage_after is None and outage_details:
        parser.error("--outage-seconds and --outage-mode need --outage-after")


def build_simulator(args: argparse.Namespace) -> HedSimulator:
    simulator = HedSimulator(
        records=args.records,
        seed=args.seed,
        api_key=args.api_key,
        host=args.host,
        port=args.port,
        verbose=args.verbose,
        tls=args.tls,
    )
    simulator.set_faults(
        fail_rate=args.fail_rate,
        fail_statuses=args.fail_statuses,
        rate_limit_every=args.rate_limit_every,
        retry_after=args.retry_after,
        latency_ms=args.latency_ms,
        reset_rate=args.reset_rate,
        truncate_rate=args.truncate_rate,
        hang_rate=args.hang_rate,
        hang_seconds=args.hang_seconds,
        tls_reset_rate=args.tls_reset_rate,
        trickle_rate=args.trickle_rate,
        trickle_seconds=args.trickle_seconds,
        fault_seed=args.fault_seed,
    )
    if args.drift:
        rate = 1.0 if args.drift_rate is None else args.drift_rate
        simulator.set_drift(args.drift, rate=rate, seed=args.drift_seed or 0)
    return simulator


def schedule_outage(simulator: HedSimulator, args: argparse.Namespace) -> None:
    """After start(): a refuse outage needs the port it will give back."""
    if args.outage_after is not None:
        seconds = _DEFAULT_OUTAGE_SECONDS if args.outage_seconds is None else args.outage_seconds
        simulator.schedule_outage(args.outage_after, seconds, args.outage_mode or "503")


def publish_ca_file(simulator: HedSimulator, destination: str | None) -> None:
    """Copy the generated CA where the caller asked, or name it on stderr."""
    if simulator.ca_file is None:
        return
    if destination:
        shutil.copyfile(simulator.ca_file, destination)
    else:
        print(f"hed_simulator: CA certificate: {simulator.ca_file}", file=sys.stderr, flush=True)


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
    url = simulator.start()
    try:
        schedule_outage(simulator, args)
        publish_ca_file(simulator, args.ca_file)
    except (OSError, ValueError) as error:
        simulator.stop()
        print(f"hed_simulator: {error}", file=sys.stderr)
        return 2
    print(url, flush=True)
    try:
        while not stop.wait(_WAIT_SECONDS):
            if args.exit_with_parent and os.getppid() != parent:
                break  # reparented: whoever started us is gone
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
