"""debug_and_reset.sh's steps: reset the local state, run one debug sync, show what it loaded.

Steps: check the project -> confirm -> `fivetran reset` -> `fivetran debug` -> a data-quality
summary (with sample rows only from the simulator, or on request: from a real API they are
student records) -> the operation summary -> the next sync state. Any failed step stops the
run with a non-zero exit and names the step.

debug_and_reset.sh finds the Python that has the SDK and runs this file by its path, from
the caller's folder (where a --config path is relative to). The simulator of --local runs in
this process (hed_simulator.HedSimulator), so it can never outlive the run, even a killed
one. `fivetran debug` runs as a child in a session of its own, through devkit/sdk_lookups.py
with --exit-with-parent: a Ctrl-C, TERM or HUP reaches this process, which stops the sync
(TERM, then KILL after a bounded wait) and the simulator before it exits 130, 143 or 129;
a killed run's sync stops by itself within a second.
"""

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

if not __package__:
    # Run by path: sys.path[0] is devkit/; devkit, connector and hed_simulator are imported
    # from the repository instead (the caller's folder never is on sys.path).
    sys.path[0] = str(Path(__file__).resolve().parents[1])

from devkit import (
    REPO_ROOT,
    arguments,
    configuration,
    console,
    debug_report,
    processes,
    runtime_files,
    sdk_lookups,
)
from hed_simulator.simulator import DEFAULT_RECORDS, DEFAULT_SEED

SCRIPT = "./debug_and_reset.sh"
# Changes the simulator makes before a --local --incremental sync.
INCREMENTAL_NEW = 10
INCREMENTAL_UPDATED = 5
# Rows shown by --local or --show-sample: enough to see the columns' shape.
SAMPLE_ROWS = 5
# Seconds `fivetran reset` may take: it deletes files/, after at most one version check
# (~7 s when PyPI cannot be reached).
RESET_TIMEOUT_S = 120
FILES = REPO_ROOT / "files"
STATE_FILE = FILES / "state.json"
WAREHOUSE = FILES / "warehouse.db"
CRASH_REPORTS = "crash-reports"
# The launcher that runs the CLI (see devkit/sdk_lookups.py), by path.
LAUNCHER = Path(sdk_lookups.__file__).resolve()
YES = re.compile(r"[Yy]([Ee][Ss])?")
# How each lookup the SDK makes by itself is named when this run skips it.
LOOKUP_NAMES = {
    "sdk-version-check": "the SDK's version check",
    "core-version-check": "the SDK core's version check",
    "pipreqs": "pipreqs asking PyPI (requirements.txt is checked against installed packages)",
    "telemetry": "telemetry (DO_NOT_TRACK=1 for this run)",
}
VERSION_CHECKS = ("sdk-version-check", "core-version-check")

DESCRIPTION = f"""\
Deletes the local sync output (files/warehouse.db and files/state.json), runs a full
debug sync with 'fivetran debug', then shows a data-quality summary (counts and column
names only), the operation counts and the state the next sync starts from. With --local it
also shows {SAMPLE_ROWS} sample rows of the simulator's synthetic records."""
EPILOG = f"""\
Quickstart: {SCRIPT} --local --yes
On a machine without the Fivetran SDK, the first run creates .venv and installs
requirements-dev.txt into it. Lookups the SDK makes on the internet by itself (its version
checks, pipreqs asking PyPI, telemetry) are skipped for a run when they cannot succeed
from this machine; nothing in ~/.fivetran is changed for that.
Exit codes: 0 done; 1 a step failed, or the reset was declined; 2 a bad option; 130, 143
or 129 stopped by Ctrl-C, TERM or a closed terminal (the sync and simulator stop too)."""


# ---------------------------------------------------------------------------------------
# Arguments


def parse_arguments(argv: list) -> argparse.Namespace:
    parser = arguments.ArgumentParser(f"{SCRIPT} [options]", DESCRIPTION, EPILOG)
    add = parser.add_argument
    add(
        "--local",
        action="store_true",
        help="Sync from the local HED simulator (started and stopped by this script)\n"
        "with its demo key; configuration.json is not read or changed.",
    )
    add(
        "--incremental",
        action="store_true",
        help="Keep the saved state and run a second, incremental sync (no reset, no\n"
        f"prompt). With --local the simulator first makes {INCREMENTAL_NEW} new and "
        f"{INCREMENTAL_UPDATED} updated\nrecords, so only those are synced.",
    )
    add(
        "--config",
        metavar="PATH",
        type=arguments.value,
        help="Configuration file to use; else FIVETRAN_CONFIGURATION (relative to\n"
        "the project folder, as the SDK reads it); else configuration.json.\n"
        "With --local, only its settings are used (not api_key or base_url).",
    )
    add(
        "--seed",
        metavar="N",
        type=arguments.value,
        default=str(DEFAULT_SEED),
        help=f"Simulator seed for --local (default: {DEFAULT_SEED}). Use the same seed for\n"
        "a --local run and the --local --incremental run after it.",
    )
    add(
        "--records",
        metavar="N",
        type=arguments.value,
        help=f"Records the simulator starts with for --local (default: {DEFAULT_RECORDS}).",
    )
    add(
        "--show-sample",
        action="store_true",
        help=f"Also show {SAMPLE_ROWS} sample rows when syncing from a real API. They are\n"
        "real student records (FERPA): use it only where they may be shown,\n"
        "never in a shared terminal, log or CI output.",
    )
    add("-y", "--yes", action="store_true", help="Do not ask before deleting the local state.")
    options = parser.parse(argv)
    if not options.seed.isdigit():
        raise console.Failure(f"--seed must be a whole number (got '{options.seed}').")
    if options.records is not None and not options.records.isdigit():
        raise console.Failure("--records must be a whole number.")
    return options


# ---------------------------------------------------------------------------------------
# The run


@dataclass
class Run:
    """What the steps share."""

    options: argparse.Namespace
    workdir: Path  # removed at the end
    # The configuration file; None for --local with no file (the simulator's defaults).
    config_file: configuration.ConfigurationFile | None
    fivetran: list = field(default_factory=list)  # how the CLI is started
    env: dict = field(default_factory=lambda: dict(os.environ))  # the CLI's environment
    table: str = ""
    step: str = ""  # what a failure names: "4/7 (fivetran debug)"
    number: str = ""  # the current step's "4/7"

    @property
    def debug_log(self) -> Path:
        return self.workdir / "debug.log"

    def begin(self, number: str, title: str) -> None:
        """Print a step's header; a failure from here on names this step."""
        self.number = number
        self.within(title)
        print()
        console.heading(f"== Step {number}: {title} ==")

    def within(self, part: str) -> None:
        """A failure from here on names this part of the current step."""
        self.step = f"{self.number} ({part})"


def check_project(run: Run) -> None:
    if not (REPO_ROOT / "connector.py").is_file():
        raise console.Failure(f"No connector.py in {REPO_ROOT}.")
    version = importlib.metadata.version("fivetran-connector-sdk")
    console.ok(f"Using the fivetran CLI of {sys.executable} (fivetran-connector-sdk {version})")
    skip_unreachable_lookups(run)
    if run.options.local:
        check_local_settings(run)
    else:
        check_configuration_file(run.config_file)
    run.table = read_table_name()
    console.ok(f"Table (from connector.schema()): {run.table}")


def check_local_settings(run: Run) -> None:
    """--local takes only the settings of a configuration file, if there is one; the
    connector checks them with the simulator's key and URL, before the sync (step 4)."""
    config = run.config_file
    if config.path.is_file():
        console.ok(
            f"Local mode: settings from {config.path} ({config.describe()}); the "
            "simulator's URL and demo key replace base_url and api_key"
        )
    elif config.source == configuration.FROM_DEFAULT:
        run.config_file = None
        console.ok("Local mode: the simulator's demo key and URL, default settings")
    else:
        raise console.Failure(f"No configuration file at {config.path} ({config.describe()}).")


def check_configuration_file(config: configuration.ConfigurationFile) -> None:
    """Refuse, before anything is deleted, a configuration the connector would refuse."""
    if not config.path.is_file():
        raise console.Failure(
            f"No configuration file at {config.path} ({config.describe()}; "
            "use --config PATH or --local)."
        )
    configuration.check_configuration(
        configuration.read_configuration(config.path),
        config.path,
        "\n  - Fix it (values are strings), or pass --config PATH to another file, or\n"
        f"  - run against the local simulator instead: {SCRIPT} --local",
    )
    console.ok(f"Configuration: {config.path} ({config.describe()})")


def read_table_name() -> str:
    """The table connector.schema() declares first."""
    try:
        table = configuration.import_connector().schema({})[0]["table"]
    except Exception:  # any error of the user's connector.py: shown, then named
        traceback.print_exc()
        raise console.Failure(
            "Could not import connector.py to read its schema() (see the error above)."
        ) from None
    if not table:
        raise console.Failure("connector.py's schema() returned no table name.")
    return table


def skip_unreachable_lookups(run: Run) -> None:
    """Skip, for this run only, the SDK's own lookups that cannot succeed from here."""
    run.fivetran = [sys.executable, LAUNCHER, "fivetran", "--exit-with-parent"]
    try:
        unreachable = sdk_lookups.unreachable_lookups(sdk_lookups.sdk_lookups(run.env))
    except (ImportError, AttributeError):  # an SDK that no longer has these lookups
        console.note("Could not check which SDK lookups can succeed; the SDK makes them as usual.")
        unreachable = []
    for name in unreachable:
        if name in VERSION_CHECKS:
            run.fivetran += ["--skip", name]
        elif name == "pipreqs":
            shim = sdk_lookups.write_pipreqs_shim(run.workdir / "offline-bin")
            run.env["PATH"] = os.pathsep.join([str(shim), run.env.get("PATH", "")])
        elif name == "telemetry":
            run.env["DO_NOT_TRACK"] = "1"
    run.fivetran.append("--")
    skipped = [LOOKUP_NAMES.get(name, name) for name in unreachable]
    if skipped:
        console.note("No internet access for these SDK lookups, so this run skips them:")
        for name in skipped:
            print(f"  - {name}")


class Cancelled(Exception):  # noqa: N818 - the user's answer, not an error
    """The user answered no: nothing was deleted."""


def confirm(run: Run) -> None:
    if run.options.incremental:
        console.ok("Skipped: --incremental keeps the saved state")
        if STATE_FILE.exists():
            console.ok(f"Resuming from {STATE_FILE}")
        else:
            console.note(
                "No saved state in files/state.json: this sync starts from the beginning."
            )
        return
    if not FILES.exists():
        console.ok("Nothing to delete: files/ does not exist yet")
        return
    print(f"This resets the connector's local state by deleting {FILES}/, which holds:")
    print("  - warehouse.db: the DuckDB copy of the rows synced so far")
    print("  - state.json:   the saved cursor, so the next sync starts from the beginning")
    if run.options.yes:
        console.ok("Confirmed by --yes")
        return
    print("Do you want to continue? (Y/n) ", end="", flush=True)
    answer = sys.stdin.readline()
    if not answer:
        print()
        raise console.Failure(
            "No answer could be read (stdin is not a terminal): pass --yes to confirm."
        )
    if answer.strip() and not YES.fullmatch(answer.strip()):
        raise Cancelled


def reset(run: Run) -> None:
    if run.options.incremental:
        console.ok("Skipped: --incremental keeps the saved state")
        return
    if not FILES.exists():
        console.ok("Skipped: nothing to reset")
        return
    command = [*run.fivetran, "reset", REPO_ROOT, "--yes"]
    with processes.supervised(
        command, REPO_ROOT, run.env, stdout=None, stderr=None, own_session=True
    ) as cli:
        status = wait_for(cli, RESET_TIMEOUT_S, "fivetran reset")
    if status != 0:
        raise console.Failure(f"fivetran reset failed with exit code {status}.", status)
    if STATE_FILE.exists() or WAREHOUSE.exists():
        raise console.Failure("fivetran reset left files/ behind.")
    console.ok("Reset done")


def wait_for(process, seconds: float, name: str) -> int:
    try:
        return process.wait(seconds)
    except subprocess.TimeoutExpired:
        raise console.Failure(f"{name} did not finish within {seconds} s.") from None


def sync(run: Run) -> None:
    """The debug sync: from the configured API, or from a simulator this step starts."""
    if not run.options.local:
        run_debug(run, run.config_file.path)
        return
    from hed_simulator import DEMO_API_KEY, HedSimulator

    run.within("start the simulator")
    records = int(run.options.records or DEFAULT_RECORDS)
    seed = int(run.options.seed)
    simulator = HedSimulator(records=records, seed=seed)
    try:
        with simulator:  # started here, stopped when the block ends, however it ends
            console.ok(
                f"Simulator running at {simulator.url} (in this script's process, seed {seed})"
            )
            if run.options.incremental:
                run.within("make changes in the simulator")
                made = simulator.add_changes(new=INCREMENTAL_NEW, updated=INCREMENTAL_UPDATED)
                print(
                    f"The simulator made {len(made['new'])} new and {len(made['updated'])} "
                    "updated records."
                )
            run.within("fivetran debug")
            run_debug(run, write_local_configuration(run, DEMO_API_KEY, simulator.url))
    finally:
        if simulator.url is not None:
            print("Stopped the simulator.")


def write_local_configuration(run: Run, api_key: str, url: str) -> Path:
    """The configuration for a --local sync: the settings file's values (if any) with the
    simulator's key and URL, checked as the connector checks it, readable by this user only."""
    settings = {}
    if run.config_file is not None:
        settings = configuration.read_configuration(run.config_file.path)
    merged = settings  # anything but an object: the connector's check says what is wrong
    if isinstance(settings, dict):
        merged = {**settings, "api_key": api_key, "base_url": url}
    source = run.config_file.path if run.config_file else "the default settings"
    configuration.check_configuration(
        merged, source, "\n  Fix it (values are strings), or pass --config PATH to another file."
    )
    target = run.workdir / "configuration.json"
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(descriptor, "w", encoding="utf-8") as handle:
        json.dump(merged, handle)
    return target


def run_debug(run: Run, config: Path) -> None:
    stage = stage_project(run)
    print(f"Running: fivetran debug there, writing to {FILES} (live output below)")
    print()
    command = [*run.fivetran, "debug", stage, "--configuration", config]
    with (
        open(run.debug_log, "wb") as log,
        processes.supervised(command, REPO_ROOT, run.env, own_session=True) as cli,
    ):
        status = processes.stream_output(cli, log)
    print()
    collect_crash_reports(stage)
    if status != 0:
        raise console.Failure(
            f"fivetran debug failed with exit code {status} (see its output above)."
        )
    console.ok("Debug sync succeeded")


def stage_project(run: Run) -> Path:
    """Only the runtime files deploy.sh ships, so the SDK's dependency scan (pipreqs) sees no
    test, simulator or benchmark imports; files/ links back to the repository, so the
    warehouse and state land where users look."""
    stage = runtime_files.stage_runtime_files(run.workdir / "project")
    FILES.mkdir(exist_ok=True)
    (stage / "files").symlink_to(FILES, target_is_directory=True)
    print(f"Staged the runtime files deploy.sh ships in {stage}:")
    for name in runtime_files.staged_files(stage):
        print(f"  {name}")
    return stage


def collect_crash_reports(stage: Path) -> None:
    """Copy the crash reports the SDK wrote in the staged folder back to the repository."""
    reports = stage / CRASH_REPORTS
    if not reports.is_dir():
        return
    target = REPO_ROOT / CRASH_REPORTS
    target.mkdir(exist_ok=True)
    for report in reports.iterdir():
        if report.is_file():
            shutil.copy2(report, target / report.name)
    console.note(f"Crash report copied to {target}/")


def show_quality(run: Run) -> None:
    if not WAREHOUSE.exists():
        raise console.Failure(f"The sync wrote no {WAREHOUSE}.")
    # Sample rows are values: from a real API, student records (FERPA), never shown unasked.
    if run.options.local or run.options.show_sample:
        debug_report.sample(str(WAREHOUSE), run.table, SAMPLE_ROWS)
    else:
        console.note(
            "Sample rows not shown: from a real API they are student records (FERPA). Rerun "
            f"with --show-sample to see {SAMPLE_ROWS}, where they may be shown."
        )
    debug_report.quality(str(WAREHOUSE), run.table)


def show_operations(run: Run) -> None:
    debug_report.summary(run.debug_log)


def show_state(_run: Run) -> None:
    debug_report.state(STATE_FILE)


# The steps in order, each a title and what it does; their numbers follow from the order.
STEPS = (
    ("check the project", check_project),
    ("confirm", confirm),
    ("reset", reset),
    ("sync with fivetran debug", sync),
    ("sample rows and data quality", show_quality),
    ("operation summary (from this run's output)", show_operations),
    ("next sync state", show_state),
)


def run_steps(run: Run) -> None:
    for number, (title, action) in enumerate(STEPS, start=1):
        run.begin(f"{number}/{len(STEPS)}", title)
        action(run)
    run.step = ""
    print()
    if run.options.incremental:
        console.ok("Incremental debug sync completed.")
    else:
        console.ok("Debug and reset completed.")
    # The local flow ends where the real one does: the models, then the StudentSuccess app.
    print("Build the dbt models over it: ./build_models.sh (the preview then reads them)")
    print("See the data as advisors will: ./student_success.sh (serves the preview on loopback)")


def main(argv: list | None = None) -> int:
    sys.stdout.reconfigure(line_buffering=True)  # in order with the children's output
    try:
        options = parse_arguments(sys.argv[1:] if argv is None else argv)
    except console.Failure as failure:
        console.err(failure.message)
        return failure.exit_code
    run = None
    try:
        with processes.stop_on_signals(), tempfile.TemporaryDirectory(prefix="hed-debug.") as tmp:
            config = configuration.resolve_configuration(options.config)
            run = Run(options, Path(tmp), config)
            console.heading("HED connector: debug and reset")
            run_steps(run)
        return 0
    except Cancelled:
        print("Cancelled: nothing was deleted.")
        return 1
    except console.Failure as failure:
        console.err(failure.message)
        return report_failed_step(run, failure.exit_code)
    except processes.Stopped as stopped:
        return report_failed_step(run, stopped.exit_code)
    except OSError as error:  # a file or folder the step needs cannot be made or read
        console.err(str(error))
        return report_failed_step(run, 1)


def report_failed_step(run: Run | None, exit_code: int) -> int:
    if run is not None and run.step:
        console.err(f"Step {run.step} failed (exit {exit_code}).")
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
