"""Benchmark: our connector against the SDK-core floor and a lab-style connector.

Every row goes through the SDK core (`fivetran debug` writes DuckDB), so the connector
cannot beat the core: it can only waste nothing on top of it, hide API latency behind
loading, and stay flat in memory. This script measures exactly that, in one run:

1. floor: `bench/floor_connector` upserts the same records from a pre-fetched file
   with our schema, row conversion and checkpoint cadence, and no HTTP.
2. ours: connector.py against the simulator (then 7: a no-change incremental sync).
3. lab: `bench/lab_connector`, the seed lab's style (untyped, checkpoint per page,
   sequential, no retries, `yield`).
4. ours and lab again with 100 ms of API latency per request.
5. peak RSS of our sync (and of the floor, as control) at 10,000 and 100,000 records.
6. our connector with checkpoint_interval 1,000 and 10,000 (100 is case 2).

Each case runs several times, interleaved round-robin so machine noise hits every case
alike; medians are reported. Each simulator is a `python -m hed_simulator` subprocess so
it shares no GIL with anything. Time is the wall time of the `fivetran debug` process and
the sync's own elapsed time as the SDK prints it; the ratio targets use the latter.
Targets are printed as met / not met and never fail the run.

    python bench/benchmark.py            # full: several minutes, writes bench/results.json
    python bench/benchmark.py --quick    # smoke test for CI; says nothing about speed,
                                         # writes bench/results-quick.json (gitignored)
"""

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # runnable as `python bench/benchmark.py` from anywhere
    sys.path.insert(0, str(REPO_ROOT))

import argparse  # noqa: E402
import hashlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from importlib import metadata  # noqa: E402

import requests  # noqa: E402

from devkit.sdk_cli import (  # noqa: E402
    fivetran_executable,
    make_project,
    offline_env,
    run_command,
)

BENCH_DIR = REPO_ROOT / "bench"
FLOOR_CONNECTOR = BENCH_DIR / "floor_connector" / "connector.py"
LAB_CONNECTOR = BENCH_DIR / "lab_connector" / "connector.py"
OUR_CONNECTOR = REPO_ROOT / "connector.py"
DEFAULT_OUTPUT = BENCH_DIR / "results.json"  # the committed results of the last full run
# A quick run's default: gitignored, so a smoke run never replaces the committed figures.
QUICK_OUTPUT = BENCH_DIR / "results-quick.json"
OUR_SNAPSHOT = "connector-under-test.py"  # copy of connector.py taken once, at start
CODE_COST_SCRIPT = BENCH_DIR / "code_cost.py"  # our code's CPU with the SDK stubbed out

# The simulator's documented demo key and a fixed seed: every run sees the same records.
API_KEY = "hed-demo-key"
SEED = 42
PAGE_SIZE = 100  # the API's default and our connector's
DEFAULT_CHECKPOINT_INTERVAL = 100  # our connector's default cadence
LATENCY_MS = 100  # case 4: a slow API, per request
SWEEP_INTERVALS = (1_000, 10_000)  # case 6; 100 is case 2 itself
# Full run: the issue's sizes. Three runs is the least a median means anything with.
FULL_RECORDS, FULL_RUNS, FULL_RSS_RECORDS = 20_000, 3, (10_000, 100_000)
# Quick run (CI smoke test): small enough for ~1 minute, big enough for several pages.
QUICK_RECORDS, QUICK_RUNS, QUICK_RSS_RECORDS = 1_000, 1, (1_000, 5_000)
# The large memory case takes ~3 minutes a run at ~600 rows/s: one run, stated in results.
LARGE_RSS_RUNS = 1
SYNC_TIMEOUT_S = 1_800  # one sync of 100,000 rows takes ~3 min; 10x leaves room for noise
SIMULATOR_START_TIMEOUT_S = 30
REQUEST_LOG_SETTLE_S = 0.3  # the simulator logs a request before sending its body
TIME_BINARY = "/usr/bin/time"  # GNU time -v: peak RSS of the largest process in the tree

# Targets from the issue: (name, ratio key, comparison, limit).
TARGETS = (
    ("our sync / core floor at N records", "ours_vs_floor_sync", "<=", 1.10),
    ("lab / ours with 100 ms API latency", "lab_vs_ours_latency_sync", ">=", 1.30),
    ("peak RSS ours: large N / small N", "rss_ours_large_vs_small", "<=", 1.20),
    ("requests of a no-change incremental sync", "incremental_requests", "<=", 1),
)

SYNC_ELAPSED = re.compile(r"SYNC SUCCEEDED\W+total elapsed (\d+):(\d+):(\d+)\.(\d+)")
SDK_MEMORY = re.compile(r"memory usage: average ([\d.]+) MB, peak ([\d.]+) MB")
MAX_RSS = re.compile(r"Maximum resident set size \(kbytes\): (\d+)")
CPU_TIMES = re.compile(r"(?:User|System) time \(seconds\): ([\d.]+)")
OPERATION_ROW = re.compile(r"^\s*(Upserts|Checkpoints)\s*\|\s*(\d+)\s*$", re.MULTILINE)
OUTPUT_TAIL_LINES = 40  # how much of a failed run's output to show


class BenchmarkError(RuntimeError):
    """A run failed or loaded the wrong number of rows: the numbers would be meaningless."""


# ---------------------------------------------------------------------------------------
# Simulator


class Simulator:
    """A `python -m hed_simulator` subprocess; counts the data requests it serves.

    It runs with --verbose so every request prints "GET /hed_data <status>" on stderr,
    which a reader thread counts: the request count of a run comes from the API side.
    """

    def __init__(self, records: int, latency_ms: float = 0):
        self.records = records
        self.latency_ms = latency_ms
        self.url = ""
        self._data_requests = 0
        self._lock = threading.Lock()
        self._process: subprocess.Popen | None = None

    def start(self) -> "Simulator":
        command = [sys.executable, "-m", "hed_simulator", "--port", "0", "--verbose"]
        command += ["--records", str(self.records), "--seed", str(SEED), "--api-key", API_KEY]
        command += ["--latency-ms", str(self.latency_ms)]
        self._process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.url = read_first_line(self._process, SIMULATOR_START_TIMEOUT_S)
        threading.Thread(target=self._count_requests, daemon=True).start()
        return self

    def _count_requests(self) -> None:
        for line in self._process.stderr:
            if line.startswith("GET /hed_data"):
                with self._lock:
                    self._data_requests += 1

    def data_requests(self) -> int:
        """GET /hed_data requests served so far, after letting the log catch up."""
        time.sleep(REQUEST_LOG_SETTLE_S)
        with self._lock:
            return self._data_requests

    def cpu_seconds(self) -> float | None:
        """CPU the simulator has used so far: on a 2-core machine it competes with the sync."""
        try:
            fields = Path(f"/proc/{self._process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, AttributeError):
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def read_first_line(process: subprocess.Popen, timeout: float) -> str:
    """The simulator's first stdout line (its URL), or an error if it never comes."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()))
    reader.start()
    reader.join(timeout)
    if not lines or not lines[0].startswith("http"):
        process.kill()
        raise BenchmarkError(f"the simulator did not print its URL: {lines!r}")
    return lines[0].strip()


def fetch_pages(url: str, destination: Path) -> int:
    """Write every page the API serves as one JSON list per line: the floor's input."""
    session = requests.Session()
    session.headers["x-api-key"] = API_KEY
    cursor, count = None, 0
    with destination.open("w", encoding="utf-8") as out:
        while True:
            params = {"page_size": PAGE_SIZE, **({"cursor": cursor} if cursor else {})}
            response = session.get(f"{url}/hed_data", params=params, timeout=30)
            response.raise_for_status()
            body = response.json()
            out.write(json.dumps(body["hed_records"]) + "\n")
            count += len(body["hed_records"])
            if not body["has_more"]:
                return count
            cursor = body["next_cursor"]


# ---------------------------------------------------------------------------------------
# One sync


def run_sync(project: Path, env: dict) -> dict:
    """Run `fivetran debug` under GNU time; return its measurements.

    Raises:
        BenchmarkError: the sync did not succeed.
    """
    time_file = project.parent / f"{project.name}.time"
    command = [TIME_BINARY, "-v", "-o", str(time_file), fivetran_executable(), "debug"]
    command += [str(project), "--configuration", str(project / "configuration.json")]
    started = time.monotonic()
    completed = run_command(command, project, env, SYNC_TIMEOUT_S)
    wall = time.monotonic() - started
    output = completed.stdout
    if completed.returncode != 0 or not SYNC_ELAPSED.search(output):
        tail = "\n".join(output.splitlines()[-OUTPUT_TAIL_LINES:])
        raise BenchmarkError(f"sync in {project} failed (exit {completed.returncode}):\n{tail}")
    return {"wall_s": round(wall, 3), **parse_output(output), **parse_time_file(time_file)}


def parse_output(output: str) -> dict:
    """Sync elapsed, SDK memory line and operation counts from a debug run's output."""
    hours, minutes, seconds, millis = SYNC_ELAPSED.search(output).groups()
    sync_s = int(hours) * 3600 + int(minutes) * 60 + int(seconds) + int(millis) / 1000
    counts = {name.lower(): int(value) for name, value in OPERATION_ROW.findall(output)}
    memory = SDK_MEMORY.search(output)
    return {
        "sync_s": sync_s,
        "upserts": counts.get("upserts", -1),
        "checkpoints": counts.get("checkpoints", -1),
        "sdk_avg_mb": float(memory.group(1)) if memory else None,
        "sdk_peak_mb": float(memory.group(2)) if memory else None,
    }


def parse_time_file(time_file: Path) -> dict:
    """Peak RSS (MiB) of the debug process tree's largest process, and its CPU seconds
    (user + system, children included): CPU time shows work done even when other jobs
    on the machine stretch the wall time."""
    text = time_file.read_text() if time_file.exists() else ""
    match = MAX_RSS.search(text)
    cpu = [float(value) for value in CPU_TIMES.findall(text)]
    return {
        "peak_rss_mib": round(int(match.group(1)) / 1024, 1) if match else None,
        "cpu_s": round(sum(cpu), 2) if cpu else None,
    }


# ---------------------------------------------------------------------------------------
# Cases


@dataclass
class Case:
    """One measured configuration; `kind` picks the connector: floor, ours or lab."""

    name: str
    description: str
    kind: str
    records: int
    simulator: Simulator | None
    pages_file: Path | None = None
    checkpoint_interval: int = DEFAULT_CHECKPOINT_INTERVAL
    runs: int = FULL_RUNS
    follow_with_incremental: bool = False
    results: list = field(default_factory=list)

    def settings(self) -> dict:
        latency = self.simulator.latency_ms if self.simulator else 0
        return {
            "description": self.description,
            "connector": self.kind,
            "records": self.records,
            "checkpoint_interval": self.checkpoint_interval,
            "latency_ms": latency,
            "planned_runs": self.runs,
        }


def configuration_for(case: Case) -> dict:
    """The configuration.json of a case's project (all values strings, as the SDK wants)."""
    if case.kind == "floor":
        return {"checkpoint_interval": str(case.checkpoint_interval), "pages_file": "pages.jsonl"}
    configuration = {"api_key": API_KEY, "base_url": case.simulator.url}
    configuration["page_size"] = str(PAGE_SIZE)
    if case.kind == "ours":
        configuration["checkpoint_interval"] = str(case.checkpoint_interval)
    return configuration


def build_project(case: Case, folder: Path, ours: Path) -> Path:
    """A fresh project folder for one run (no files/, so the sync is an initial one).

    `ours` is the snapshot of connector.py taken at start: every run uses the same code
    even if the working copy changes while the benchmark runs.
    """
    source = {"floor": FLOOR_CONNECTOR, "lab": LAB_CONNECTOR, "ours": ours}[case.kind]
    make_project(folder, configuration_for(case), connector_source=source)
    if case.kind == "floor":
        shutil.copy(ours, folder / "hed_connector.py")
        link_or_copy(case.pages_file, folder / "pages.jsonl")
    return folder


def link_or_copy(source: Path, destination: Path) -> None:
    """Hard-link big input files (instant); copy where links are not possible."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy(source, destination)


def measure(case: Case, project: Path, env: dict, expected_upserts: int) -> dict:
    """One sync of `project`, with the requests it made and a check of what it loaded."""
    before = case.simulator.data_requests() if case.simulator else 0
    cpu_before = case.simulator.cpu_seconds() if case.simulator else None
    result = run_sync(project, env)
    if case.simulator:
        result["requests"] = case.simulator.data_requests() - before
        cpu_after = case.simulator.cpu_seconds()
        if cpu_before is not None and cpu_after is not None:
            result["simulator_cpu_s"] = round(cpu_after - cpu_before, 2)
    if result["upserts"] != expected_upserts:
        raise BenchmarkError(
            f"{case.name}: {result['upserts']} upserts, expected {expected_upserts}"
        )
    result["rows_per_s"] = round(case.records / result["sync_s"], 1) if expected_upserts else None
    return result


def run_round(cases: list[Case], incremental: Case, round_index: int, workdir: Path, env: dict):
    """Run every case due in this round once, in the fixed order (round-robin)."""
    ours = workdir / OUR_SNAPSHOT
    for case in cases:
        if round_index >= case.runs:
            continue
        project = build_project(case, workdir / f"{case.name}-r{round_index}", ours)
        result = measure(case, project, env, case.records)
        case.results.append(result)
        print_run(case, round_index, result)
        if case.follow_with_incremental:
            result = measure(incremental, project, env, 0)
            incremental.results.append(result)
            print_run(incremental, round_index, result)
        shutil.rmtree(project, ignore_errors=True)


def print_run(case: Case, round_index: int, result: dict) -> None:
    rss = result["peak_rss_mib"]
    print(
        f"  round {round_index + 1} {case.name:<24} wall {result['wall_s']:7.2f} s  "
        f"sync {result['sync_s']:7.2f} s  rss {rss} MiB  requests {result.get('requests', '-')}",
        flush=True,
    )


# ---------------------------------------------------------------------------------------
# Plan


@dataclass
class Plan:
    """Sizes and run counts of one benchmark run."""

    records: int
    runs: int
    rss_records: tuple
    large_rss_runs: int
    quick: bool


def make_plan(args: argparse.Namespace) -> Plan:
    records, runs, rss = (
        (QUICK_RECORDS, QUICK_RUNS, QUICK_RSS_RECORDS)
        if args.quick
        else (FULL_RECORDS, FULL_RUNS, FULL_RSS_RECORDS)
    )
    runs = args.runs or runs
    return Plan(
        records=args.records or records,
        runs=runs,
        rss_records=rss,
        large_rss_runs=min(runs, LARGE_RSS_RUNS),
        quick=args.quick,
    )


def start_simulators(plan: Plan) -> dict:
    """One simulator per (records, latency) the cases need, all started up front."""
    wanted = {
        "main": (plan.records, 0),
        "latency": (plan.records, LATENCY_MS),
        "rss_small": (plan.rss_records[0], 0),
        "rss_large": (plan.rss_records[1], 0),
    }
    simulators = {}
    try:
        for key, (records, latency) in wanted.items():
            simulators[key] = Simulator(records, latency).start()
    except BaseException:
        stop_simulators(simulators)
        raise
    return simulators


def stop_simulators(simulators: dict) -> None:
    for simulator in simulators.values():
        simulator.stop()


def prepare_floor_inputs(simulators: dict, workdir: Path) -> dict:
    """Pre-fetch each size's records once, for the floor connector to read."""
    inputs = {}
    for key in ("main", "rss_small", "rss_large"):
        path = workdir / f"pages-{key}.jsonl"
        count = fetch_pages(simulators[key].url, path)
        if count != simulators[key].records:
            raise BenchmarkError(
                f"pre-fetched {count} records, expected {simulators[key].records}"
            )
        inputs[key] = path
    return inputs


def build_cases(plan: Plan, sims: dict, inputs: dict) -> tuple[list[Case], Case]:
    """The cases in round order, and the incremental case that follows `ours`."""
    n, runs = plan.records, plan.runs
    small, large = plan.rss_records
    cases = [
        Case(
            "floor",
            "SDK-core floor: same rows from a file, no HTTP",
            "floor",
            n,
            None,
            inputs["main"],
            runs=runs,
        ),
        Case(
            "ours",
            "our connector",
            "ours",
            n,
            sims["main"],
            runs=runs,
            follow_with_incremental=True,
        ),
        Case("lab", "lab-style baseline", "lab", n, sims["main"], runs=runs),
        Case(
            "ours_latency",
            f"our connector, {LATENCY_MS} ms API latency",
            "ours",
            n,
            sims["latency"],
            runs=runs,
        ),
        Case(
            "lab_latency",
            f"lab-style baseline, {LATENCY_MS} ms API latency",
            "lab",
            n,
            sims["latency"],
            runs=runs,
        ),
    ]
    for interval in SWEEP_INTERVALS:
        cases.append(
            Case(
                f"ours_ckpt_{interval}",
                f"our connector, checkpoint every {interval:,} rows",
                "ours",
                n,
                sims["main"],
                checkpoint_interval=interval,
                runs=runs,
            )
        )
    cases += [
        Case(
            f"rss_ours_{small}",
            f"memory: our connector at {small:,} rows",
            "ours",
            small,
            sims["rss_small"],
            runs=runs,
        ),
        Case(
            f"rss_floor_{small}",
            f"memory: core floor at {small:,} rows",
            "floor",
            small,
            None,
            inputs["rss_small"],
            runs=runs,
        ),
        Case(
            f"rss_ours_{large}",
            f"memory: our connector at {large:,} rows",
            "ours",
            large,
            sims["rss_large"],
            runs=plan.large_rss_runs,
        ),
        Case(
            f"rss_floor_{large}",
            f"memory: core floor at {large:,} rows",
            "floor",
            large,
            None,
            inputs["rss_large"],
            runs=plan.large_rss_runs,
        ),
    ]
    incremental = Case(
        "incremental_no_change",
        "our connector, incremental sync, no changes",
        "ours",
        n,
        sims["main"],
        runs=runs,
    )
    return cases, incremental


# ---------------------------------------------------------------------------------------
# Summaries


def medians(results: list[dict]) -> dict:
    """Median of every numeric field over a case's runs."""
    keys = [key for key, value in results[0].items() if isinstance(value, int | float)]
    summary = {}
    for key in keys:
        values = [run[key] for run in results if isinstance(run.get(key), int | float)]
        summary[key] = round(statistics.median(values), 3) if values else None
    return summary


def ratio(numerator, denominator) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 3)


def paired_ratio(summary: dict, numerator: str, denominator: str) -> float | None:
    """Median over rounds of the per-round sync-time ratio: runs of the same round ran
    minutes apart, so this cancels slow drifts in machine load that medians do not."""
    pairs = zip(summary[numerator]["runs"], summary[denominator]["runs"], strict=False)
    ratios = [ratio(top["sync_s"], bottom["sync_s"]) for top, bottom in pairs]
    return round(statistics.median(ratios), 3) if ratios else None


def compute_ratios(summary: dict, plan: Plan, code_cpu_s: float) -> dict:
    """The issue's ratios plus a few that explain them."""

    def sync(name):
        return summary[name]["median"]["sync_s"]

    def wall(name):
        return summary[name]["median"]["wall_s"]

    def rss(name):
        return summary[name]["median"]["peak_rss_mib"]

    def cpu(name):
        return summary[name]["median"].get("cpu_s")

    small, large = plan.rss_records
    ratios = {
        "ours_vs_floor_sync": ratio(sync("ours"), sync("floor")),
        "ours_vs_floor_wall": ratio(wall("ours"), wall("floor")),
        "ours_vs_floor_cpu": ratio(cpu("ours"), cpu("floor")),
        "ours_vs_floor_sync_paired": paired_ratio(summary, "ours", "floor"),
        "lab_vs_ours_latency_sync": ratio(sync("lab_latency"), sync("ours_latency")),
        "lab_vs_ours_latency_wall": ratio(wall("lab_latency"), wall("ours_latency")),
        "lab_vs_ours_sync": ratio(sync("lab"), sync("ours")),
        "ours_latency_vs_ours_sync": ratio(sync("ours_latency"), sync("ours")),
        "rss_ours_large_vs_small": ratio(rss(f"rss_ours_{large}"), rss(f"rss_ours_{small}")),
        "rss_floor_large_vs_small": ratio(rss(f"rss_floor_{large}"), rss(f"rss_floor_{small}")),
        "rss_ours_vs_floor_small": ratio(rss(f"rss_ours_{small}"), rss(f"rss_floor_{small}")),
        "rss_ours_vs_floor_large": ratio(rss(f"rss_ours_{large}"), rss(f"rss_floor_{large}")),
        "incremental_requests": summary["incremental_no_change"]["median"]["requests"],
        "ours_code_cpu_vs_floor_cpu": ratio(code_cpu_s, cpu("floor")),
    }
    for interval in SWEEP_INTERVALS:
        ratios[f"ckpt_{interval}_vs_ckpt_100_sync"] = ratio(
            sync(f"ours_ckpt_{interval}"), sync("ours")
        )
    return ratios


def evaluate_targets(ratios: dict) -> list[dict]:
    """Each target with its measured value and whether it is met."""
    evaluated = []
    for name, key, comparison, limit in TARGETS:
        value = ratios.get(key)
        met = None
        if value is not None:
            met = value <= limit if comparison == "<=" else value >= limit
        evaluated.append(
            {
                "target": name,
                "key": key,
                "comparison": comparison,
                "limit": limit,
                "value": value,
                "met": met,
            }
        )
    return evaluated


def print_summary(summary: dict, ratios: dict, targets: list[dict]) -> None:
    header = (
        f"{'case':<24} {'runs':>4} {'wall s':>8} {'sync s':>8} {'cpu s':>7} {'rows/s':>8} "
        f"{'RSS MiB':>8} {'SDK MB':>7} {'ckpts':>6} {'reqs':>6} {'sim cpu':>7}"
    )
    print("\nMedians\n" + header + "\n" + "-" * len(header))
    for name, entry in summary.items():
        m = entry["median"]
        print(
            f"{name:<24} {len(entry['runs']):>4} {fmt(m.get('wall_s'), '.2f'):>8} "
            f"{fmt(m.get('sync_s'), '.2f'):>8} "
            f"{fmt(m.get('cpu_s'), '.2f'):>7} "
            f"{fmt(m.get('rows_per_s'), '.0f'):>8} {fmt(m.get('peak_rss_mib'), '.0f'):>8} "
            f"{fmt(m.get('sdk_peak_mb'), '.0f'):>7} {fmt(m.get('checkpoints'), '.0f'):>6} "
            f"{fmt(m.get('requests'), '.0f'):>6} {fmt(m.get('simulator_cpu_s'), '.2f'):>7}"
        )
    print("\nRatios")
    for key, value in ratios.items():
        print(f"  {key:<34} {value}")
    print("\nTargets")
    for target in targets:
        verdict = {True: "MET", False: "NOT MET", None: "n/a"}[target["met"]]
        print(
            f"  {target['target']:<42} {target['value']} {target['comparison']} "
            f"{target['limit']}: {verdict}"
        )


def fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


# ---------------------------------------------------------------------------------------
# Machine and results file


def machine_info() -> dict:
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "sdk_version": package_version("fivetran_connector_sdk"),
        "sdk_core_version": package_version("fivetran_connector_sdk_core"),
        "duckdb_version": package_version("duckdb"),
        "connector_sha256": hashlib.sha256(OUR_CONNECTOR.read_bytes()).hexdigest(),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def machine_load() -> dict:
    """Load averages and `uptime` text: other jobs on the same cores skew timings."""
    try:
        text = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    except OSError:
        text = ""
    return {"loadavg": [round(value, 2) for value in os.getloadavg()], "uptime": text.strip()}


def write_results(path: Path, results: dict) -> None:
    """Write atomically, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=2) + "\n")
    temporary.replace(path)


def method_notes(plan: Plan) -> list[str]:
    return [
        "Runs are interleaved round-robin across cases; medians over runs.",
        "sync_s is the SDK's own 'SYNC SUCCEEDED - total elapsed' (schema + update + "
        "checkpoints; excludes CLI start-up); wall_s is the whole `fivetran debug` process. "
        "Ratio targets use sync_s. *_paired ratios are medians of per-round ratios.",
        "peak_rss_mib is GNU time's 'Maximum resident set size' of the `fivetran debug` "
        "process (connector, SDK core and DuckDB run in that one process; its pipreqs child "
        "is smaller and is not summed).",
        "sdk_peak_mb / sdk_avg_mb are the SDK's own 'connector process memory usage' line: "
        "RSS growth above the RSS when its tracker started, sampled once a second, so it "
        "excludes the interpreter and imports and can miss short peaks.",
        "The floor connector reads pre-fetched pages (one JSON list per line) from a file in "
        "its project folder and imports a copy of connector.py as hed_connector for schema() "
        "and to_row(); reading and parsing the file is inside its sync time.",
        f"The {plan.rss_records[1]:,}-record memory cases run {plan.large_rss_runs} time(s) "
        "(about 3 minutes each); their checkpoint interval is the default 100.",
        "requests counts GET /hed_data served by the simulator during the run, from its "
        "--verbose log; simulator_cpu_s is the CPU it used meanwhile (it shares the cores).",
        "cpu_s is user + system CPU of the `fivetran debug` process tree (GNU time), CLI "
        "start-up included: less sensitive than wall time to other jobs on the machine.",
        "CLI runs use devkit.sdk_cli.offline_env: own HOME, DO_NOT_TRACK=1, pipreqs --use-local.",
        "ours_code_cpu_vs_floor_cpu: CPU seconds of our connector's own code for one full "
        "sync (HTTP, JSON, prefetch thread, record checks; SDK operations stubbed out by "
        "bench/code_cost.py, once per round) over the floor's CPU seconds.",
    ]


# ---------------------------------------------------------------------------------------
# Main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"small CI smoke run; writes {QUICK_OUTPUT.relative_to(REPO_ROOT)} (gitignored), "
        f"never {DEFAULT_OUTPUT.relative_to(REPO_ROOT)}",
    )
    parser.add_argument("--runs", type=int, default=0, help="runs per case (default 3; quick 1)")
    parser.add_argument("--records", type=int, default=0, help="records for cases 1-4 and 6")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"results JSON path (default {DEFAULT_OUTPUT.relative_to(REPO_ROOT)}; with "
        f"--quick {QUICK_OUTPUT.relative_to(REPO_ROOT)})",
    )
    args = parser.parse_args(argv)
    args.output = choose_output(args.quick, args.output)
    if args.quick and args.output.resolve() == DEFAULT_OUTPUT.resolve():
        parser.error(f"--quick must not overwrite the full results in {DEFAULT_OUTPUT}")
    return args


def choose_output(quick: bool, output: Path | None) -> Path:
    """Where the results go: the path given, else the committed file only for a full run."""
    if output is not None:
        return output
    return QUICK_OUTPUT if quick else DEFAULT_OUTPUT


def measure_code_cost(connector_path: Path, url: str) -> float:
    """CPU seconds our connector's own code spends on one full sync (SDK stubbed out)."""
    completed = subprocess.run(
        [sys.executable, str(CODE_COST_SCRIPT), str(connector_path), url, API_KEY],
        capture_output=True,
        text=True,
        timeout=SYNC_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0:
        raise BenchmarkError(f"code_cost.py failed: {completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])["cpu_s"]


def run_benchmark(plan: Plan, workdir: Path) -> tuple[dict, list[float]]:
    """Start the simulators, run every round; the per-case summary and our code's CPU s."""
    env = offline_env(workdir)
    shutil.copy(OUR_CONNECTOR, workdir / OUR_SNAPSHOT)
    simulators = start_simulators(plan)
    code_cost = []
    try:
        inputs = prepare_floor_inputs(simulators, workdir)
        cases, incremental = build_cases(plan, simulators, inputs)
        for round_index in range(plan.runs):
            print(f"Round {round_index + 1} of {plan.runs}", flush=True)
            run_round(cases, incremental, round_index, workdir, env)
            code_cost.append(measure_code_cost(workdir / OUR_SNAPSHOT, simulators["main"].url))
            print(
                f"  round {round_index + 1} our code only (SDK stubbed) cpu {code_cost[-1]:.2f} s",
                flush=True,
            )
    finally:
        stop_simulators(simulators)
    ordered = [*cases[:2], incremental, *cases[2:]]
    summary = {
        case.name: {**case.settings(), "runs": case.results, "median": medians(case.results)}
        for case in ordered
    }
    return summary, code_cost


def check_prerequisites() -> None:
    if not Path(TIME_BINARY).exists():
        raise BenchmarkError(f"{TIME_BINARY} (GNU time) is needed to measure peak RSS")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    started_at = datetime.now(timezone.utc)
    started = time.monotonic()
    results = {
        "mode": "quick" if plan.quick else "full",
        "started_at": started_at.isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_at_start": machine_load(),
        "settings": {
            "records": plan.records,
            "runs": plan.runs,
            "rss_records": list(plan.rss_records),
            "large_rss_runs": plan.large_rss_runs,
            "page_size": PAGE_SIZE,
            "checkpoint_interval": DEFAULT_CHECKPOINT_INTERVAL,
            "latency_ms": LATENCY_MS,
            "seed": SEED,
        },
        "notes": method_notes(plan),
    }
    print(f"Benchmark ({results['mode']}): {plan}\nLoad: {results['load_at_start']['uptime']}")
    try:
        check_prerequisites()
        with tempfile.TemporaryDirectory(prefix="hed-bench-") as workdir:
            summary, code_cost = run_benchmark(plan, Path(workdir))
    except (BenchmarkError, subprocess.TimeoutExpired, requests.RequestException) as error:
        print(f"Benchmark failed: {error}", file=sys.stderr)
        return 1
    code_cpu_s = statistics.median(code_cost)
    ratios = compute_ratios(summary, plan, code_cpu_s)
    targets = evaluate_targets(ratios)
    results.update(
        {
            "cases": summary,
            "our_code_only": {"cpu_s_runs": code_cost, "cpu_s_median": code_cpu_s},
            "ratios": ratios,
            "targets": targets,
            "load_at_end": machine_load(),
            "duration_s": round(time.monotonic() - started, 1),
        }
    )
    print_summary(summary, ratios, targets)
    print(f"\nLoad at end: {results['load_at_end']['uptime']}")
    write_results(args.output, results)
    print(f"Results written to {args.output} ({results['duration_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
