"""What every phase shares: the run's secret and scratch folder, the CLI runs, the watchers.

Every sync is a real `fivetran debug` subprocess (through devkit.sdk_cli: offline, own HOME)
against an in-process simulator on loopback. Every command's output is kept, so the secret
scan can look for the API key in all of them at the end.
"""

import argparse
import hashlib
import importlib.util
import random
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.soak.settings import (
    CHECKPOINT_INTERVAL,
    CLI_TIMEOUT_S,
    DATA_PATH,
    PAGE_SIZE,
    POLL_S,
    SECRET_PREFIX,
    Profile,
)
from devkit.sdk_cli import (
    fivetran_executable,
    make_project,
    offline_env,
    operation_counts,
    run_debug,
)
from hed_simulator import HedSimulator

# The connector's summary line and its per-retry warning (contract: stable substrings).
RETRY_SUMMARY = re.compile(r"Sync complete: .*?([\d,]+) retries")
RETRY_WARNING = re.compile(r"HED API request failed \(.*?\); retry \d+")
# Simulator request-log faults after which the client got no whole page body.
BODY_FAULTS = ("reset", "truncate")


@dataclass
class Run:
    """One CLI run: exit code, combined output, wall time."""

    returncode: int
    output: str
    elapsed: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def upserts(self) -> int:
        return operation_counts(self.output).get("Upserts", 0)

    @property
    def retries(self) -> int:
        """From the connector's summary line, else its retry warnings (failed runs)."""
        match = RETRY_SUMMARY.search(self.output)
        if match:
            return int(match.group(1).replace(",", ""))
        return len(RETRY_WARNING.findall(self.output))


class Soak:
    """Shared run context: the secret, the scratch folder, the CLI env, every output."""

    def __init__(self, args: argparse.Namespace, profile: Profile, work: Path):
        self.args = args
        self.profile = profile
        self.work = work
        self.secret = SECRET_PREFIX + secrets.token_hex(8)
        self.env = offline_env(work / "cli")
        self.rng = random.Random(args.seed)
        self.fault_seeds: list = []  # drawn by the entry point, printed in the header
        self.outputs: list[tuple[str, str]] = []  # (label, text) of every command run
        # One copy for every project: the repository's file may be edited during a long run.
        self.connector_source = work / "connector.py"
        shutil.copy(args.connector, self.connector_source)
        self.connector_digest = file_digest(self.connector_source)
        # Its constants (timeouts, retry caps) come from the very file under test.
        self.connector = load_module(self.connector_source, "soak_connector_under_test")

    def simulator(self, records: int, **options) -> HedSimulator:
        return HedSimulator(records=records, seed=self.args.seed, api_key=self.secret, **options)

    def configuration(self, sim: HedSimulator, **overrides) -> dict:
        configuration = {
            "api_key": self.secret,
            "base_url": sim.url,
            "page_size": str(PAGE_SIZE),
            "checkpoint_interval": str(CHECKPOINT_INTERVAL),
        }
        configuration.update(overrides)
        return {key: value for key, value in configuration.items() if value is not None}

    def project(self, name: str, configuration: dict) -> Path:
        folder = self.work / "projects" / re.sub(r"[^\w.-]+", "-", name).strip("-")
        return make_project(folder, configuration, self.connector_source)

    def debug(self, project: Path, env: dict | None = None) -> Run:
        started = time.monotonic()
        result = run_debug(project, env or self.env, timeout=CLI_TIMEOUT_S)
        self.outputs.append((f"debug {project.name}", result.stdout))
        return Run(result.returncode, result.stdout, time.monotonic() - started)

    def start_debug(self, project: Path, env: dict | None = None) -> tuple[subprocess.Popen, Path]:
        """`fivetran debug` in its own process group, so a kill takes all of it; its output
        goes to a log file beside the project, which the caller may watch."""
        log_path = project.parent / f"{project.name}.log"
        command = [fivetran_executable(), "debug", str(project), "--configuration"]
        command.append(str(project / "configuration.json"))
        with open(log_path, "wb") as log_file:
            process = subprocess.Popen(
                command,
                cwd=project,
                env=env or self.env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return process, log_path

    def debug_watching(self, project: Path, env: dict, marker: str, action: Callable) -> Run:
        """A sync whose output is watched: `action` runs once `marker` appears in it."""
        process, log_path = self.start_debug(project, env)
        started = time.monotonic()
        seen = OutputTail(log_path)
        with Watcher(lambda: marker in seen.text() or process.poll() is not None, action):
            process.wait(timeout=CLI_TIMEOUT_S)
        output = log_path.read_text(errors="replace")
        self.outputs.append((f"debug {project.name}", output))
        return Run(process.returncode, output, time.monotonic() - started)

    def leaks_in_outputs(self, since: int = 0) -> int:
        return sum(self.secret in text for _, text in self.outputs[since:])


class OutputTail:
    """A growing log file's text, re-read only when it grew (it is polled often)."""

    def __init__(self, path: Path):
        self._path, self._size, self._text = path, -1, ""

    def text(self) -> str:
        size = self._path.stat().st_size if self._path.exists() else 0
        if size != self._size:
            self._size, self._text = size, self._path.read_text(errors="replace")
        return self._text


def load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def data_requests(sim: HedSimulator) -> list:
    return [info for info in sim.requests if info.path == DATA_PATH]


def served_pages(sim: HedSimulator) -> int:
    """Pages the simulator answered whole (a reset or truncated 200 is not served)."""
    return sum(
        1
        for info in data_requests(sim)
        if info.status == 200 and info.fault not in (*BODY_FAULTS, "queued")
    )


def wait_until(condition: Callable[[], bool], timeout: float, stop: threading.Event) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not stop.is_set():
        if condition():
            return True
        time.sleep(POLL_S)
    return False


class Watcher:
    """Runs `action` once `condition` holds, in a thread, so faults land mid-sync."""

    def __init__(self, condition: Callable[[], bool], action: Callable[[], None]):
        self.fired = False
        self._stop = threading.Event()
        self._condition, self._action = condition, action
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        if wait_until(self._condition, CLI_TIMEOUT_S, self._stop):
            self.fired = True
            self._action()

    def __enter__(self) -> "Watcher":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(CLI_TIMEOUT_S)
