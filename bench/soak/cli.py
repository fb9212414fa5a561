"""Entry point: parse the command line, run the phases, print the table, exit truthfully."""

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import bench.soak
from bench.soak.bad_input import run_bad_input
from bench.soak.churn import run_churn
from bench.soak.crash import run_crash_phase
from bench.soak.drift import run_drift
from bench.soak.fault_soak import draw_fault_seeds, run_fault_soak
from bench.soak.harness import Soak, file_digest
from bench.soak.results import GATING, Phase, report, write_json
from bench.soak.secret_scan import run_secret_scan
from bench.soak.selftest import run_checker_selftest
from bench.soak.settings import FULL, QUICK, Profile
from devkit.sdk_cli import REPO_ROOT

# (--phases key, name in the table, body), in running order. The secret scan runs last:
# it scans what every other phase left.
PHASES = (
    ("checker", "checker", run_checker_selftest),
    ("faults", "fault soak", run_fault_soak),
    ("crash", "crash+resume", run_crash_phase),
    ("churn", "churn", run_churn),
    ("drift", "drift", run_drift),
    ("bad-input", "bad input", run_bad_input),
    ("secrets", "secret scan", run_secret_scan),
)
PHASE_KEYS = tuple(key for key, _, _ in PHASES)
DEFAULT_DATA_SEED = 7  # the simulator's data and the kill moments; any value works


def parse_args(argv: list | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.soak", description=bench.soak.__doc__.split("\n\n")[0]
    )
    parser.add_argument("--quick", action="store_true", help="bounded run (~2-4 min) for CI")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    parser.add_argument("--seeds", type=int, help="number of random fault seeds (N)")
    parser.add_argument(
        "--fault-seeds", type=parse_seed_list, help="replay these fault seeds (comma-separated)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_DATA_SEED, help="data/kill seed")
    parser.add_argument(
        "--records", type=int, help="source size of the fault, crash, churn and drift syncs"
    )
    parser.add_argument("--trials", type=int, help="crash-and-resume trials")
    parser.add_argument(
        "--phases", type=parse_phase_list, help=f"run only these: {','.join(PHASE_KEYS)}"
    )
    parser.add_argument("--self-test", action="store_true", help="only the checker self-test")
    parser.add_argument(
        "--connector", type=Path, default=REPO_ROOT / "connector.py", help="connector to test"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    return parser.parse_args(argv)


def parse_seed_list(text: str) -> list:
    return [int(part) for part in text.split(",") if part.strip()]


def parse_phase_list(text: str) -> list:
    keys = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [key for key in keys if key not in PHASE_KEYS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown phase {unknown[0]}; phases: {PHASE_KEYS}")
    return keys


def profile_for(args: argparse.Namespace) -> Profile:
    profile = QUICK if args.quick else FULL
    sizes = {}
    if args.records:
        names = ("fault_records", "crash_records", "churn_records", "drift_records")
        sizes = dict.fromkeys(names, args.records)
    if args.trials is not None:
        sizes["trials"] = args.trials
    if args.seeds is not None:
        sizes["fault_seeds"] = args.seeds
    return dataclasses.replace(profile, **sizes)


def selected_phases(args: argparse.Namespace) -> list:
    if args.self_test:
        return [PHASES[0]]
    keys = args.phases or PHASE_KEYS
    return [phase for phase in PHASES if phase[0] in keys]


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


def header(soak: Soak, args: argparse.Namespace) -> str:
    tested = f"{args.connector.name} sha256 {soak.connector_digest}"
    if args.connector.exists() and file_digest(args.connector) != soak.connector_digest:
        tested += " (the file changed during the run; this snapshot was tested)"
    return (
        f"HED connector soak ({soak.profile.name}): data seed {args.seed}, "
        f"{len(soak.fault_seeds)} fault seeds, {tested}\n"
        f"Gating (any non-zero fails the run): {', '.join(GATING)} and every PROBLEM line. "
        "Informational: cases, requests, faults, retries, survived, elapsed."
    )


def main(argv: list | None = None) -> int:
    args = parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="hed-soak-"))
    soak = Soak(args, profile_for(args), work)
    selected = selected_phases(args)
    if any(body is run_fault_soak for _, _, body in selected):
        soak.fault_seeds = args.fault_seeds or draw_fault_seeds(soak.profile.fault_seeds)
    started = time.monotonic()
    phases = [run_phase(soak, name, body) for _, name, body in selected]
    text = report(header(soak, args), phases)
    if soak.secret in text:  # never print the key, even in our own report
        phases[-1].problems.append("the report itself contained the key")
        text = report(header(soak, args), phases).replace(soak.secret, "***")
    print(text)
    print(f"wall time {time.monotonic() - started:.0f} s")
    if args.json:
        run = {
            "mode": soak.profile.name,
            "profile": dataclasses.asdict(soak.profile),
            "data_seed": args.seed,
            "fault_seeds": soak.fault_seeds,
            "connector_sha256": soak.connector_digest,
        }
        write_json(args.json, run, phases)
    passed = all(phase.passed for phase in phases)
    if args.keep or not passed:
        print(f"scratch folder kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if passed else 1
