"""debug_and_reset.sh end to end: real script, real `fivetran` CLI, real simulator process.

Each run happens in a temporary copy of the repository (no .venv there, so the script must
find `fivetran` and python on PATH), with devkit's offline environment so the CLI makes no
online lookups. Full syncs are costly (a few seconds each): the --local run and the
--incremental run after it happen once per module and several tests read their output.

The offline first run is the issue's quickstart on a machine without internet access: an
empty HOME, no DO_NOT_TRACK, and every https request sent to a closed loopback port (a
proxy that refuses), so each lookup the SDK makes by itself fails at once, as offline.

Against a real API (here a simulator the script did not start, so it cannot know the data
are synthetic) sample rows are student records: shown only with --show-sample.
"""

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import pytest

from devkit.processes import is_running, run_command, supervised
from devkit.sdk_cli import (
    CORE_SETTINGS_FILE,
    CORE_VERSION_CHECK_FIELD,
    VERSION_CHECK_FILE,
    offline_env,
    operation_counts,
    venv_bin,
)
from devkit.terminal import run_on_terminal
from hed_simulator import DEMO_API_KEY, HedSimulator

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = "debug_and_reset.sh"
# deploy.sh comes along so the files debug stages can be compared with those it ships.
COPIED = (
    "connector.py",
    "configuration.json",
    "requirements.txt",
    "requirements-dev.txt",
    "pyproject.toml",
    SCRIPT,
    "deploy.sh",
)
RUN_TIMEOUT_S = 180
RECORD_ROW = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\s", re.M)
SIMULATOR_URL = re.compile(r"Simulator running at (http://\S+) ")
# The script's sample: rows shown by --local, or by --show-sample against a real API.
SAMPLE_ROWS = 5
# Records of the API that stands in for a real one (a full sync of them takes seconds).
API_RECORDS = 50
# Records for a long sync: about 60 s at the ~850 records/s measured here, yet well within
# RUN_TIMEOUT_S (the simulator makes records as it serves them: no cost to start with).
LONG_SYNC_RECORDS = 50_000
# Seconds within which the script must exit after a TERM: it stops fivetran debug at once
# and gives the simulator up to 5 s, far less than the ~60 s the long sync would still run.
TERM_EXIT_BOUND_S = 10
# Seconds a stopped simulator's port may take to close (it closes as the script exits).
SIMULATOR_GONE_S = 5


def copy_repo(target: Path) -> Path:
    """The files the script needs, without .venv, files/ or caches."""
    target.mkdir(parents=True)
    for name in COPIED:
        shutil.copy2(REPO_ROOT / name, target / name)
    for package in ("hed_simulator", "devkit"):
        shutil.copytree(
            REPO_ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    return target


def run_script(
    project: Path, env: dict, *args: str, timeout: float = RUN_TIMEOUT_S, script: str = SCRIPT
) -> subprocess.CompletedProcess:
    command = ["bash", project / script, *args]
    return run_command(command, project, env, timeout, merge_stderr=False)


def section(output: str, step: str) -> str:
    """The script's output from the header of `step` (e.g. "5/7") to the next header."""
    start = output.index(f"== Step {step}")
    following = output.find("== Step", start + 1)
    return output[start : following if following != -1 else len(output)]


def simulator_url(output: str) -> str:
    match = SIMULATOR_URL.search(output)
    assert match, "the script did not report the simulator's URL"
    return match.group(1)


def stops_serving(url: str, seconds: float = SIMULATOR_GONE_S) -> bool:
    """Whether nothing accepts connections at `url` any more, within `seconds`."""
    parts = urlsplit(url)
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection((parts.hostname, parts.port), timeout=1):
                pass
        except OSError:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def processes_in(folder: Path) -> list:
    """PIDs of processes whose working directory is `folder` (leaked simulators would be)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == folder and is_running(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def write_config(path: Path, **values: str) -> Path:
    path.write_text(json.dumps(values))
    return path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("debug_and_reset")
    project = copy_repo(root / "project")
    return {"project": project, "env": offline_env(root / "env")}


@pytest.fixture(scope="module")
def full_sync(workspace) -> subprocess.CompletedProcess:
    """One `--local --yes` run, shared by the tests that read its output."""
    before = (workspace["project"] / "configuration.json").read_bytes()
    result = run_script(workspace["project"], workspace["env"], "--local", "--yes")
    result.configuration_unchanged = (
        workspace["project"] / "configuration.json"
    ).read_bytes() == before
    return result


@pytest.fixture(scope="module")
def incremental_sync(workspace, full_sync) -> subprocess.CompletedProcess:
    """A `--local --incremental` run from the state the full sync saved."""
    assert full_sync.returncode == 0, full_sync.stdout + full_sync.stderr
    return run_script(workspace["project"], workspace["env"], "--local", "--incremental")


@pytest.fixture
def project(tmp_path) -> Path:
    return copy_repo(tmp_path / "project")


@pytest.fixture
def env(tmp_path) -> dict:
    return offline_env(tmp_path / "env")


def test_local_full_sync_exits_zero(full_sync):
    assert full_sync.returncode == 0, full_sync.stdout + full_sync.stderr


def test_local_full_sync_reports_600_upserts_from_its_own_output(full_sync):
    counts = operation_counts(section(full_sync.stdout, "6/7"))
    assert counts["Upserts"] == 600
    assert set(counts) == {
        "Upserts",
        "Updates",
        "Deletes",
        "Truncates",
        "Schema changes",
        "Checkpoints",
    }


def test_local_full_sync_shows_five_sample_rows(full_sync):
    sample = section(full_sync.stdout, "5/7")
    assert f'ORDER BY "record_id" LIMIT {SAMPLE_ROWS}' in sample
    assert len(RECORD_ROW.findall(sample)) == SAMPLE_ROWS


def test_local_full_sync_shows_data_quality_summary(full_sync):
    summary = section(full_sync.stdout, "5/7")
    assert re.search(r"Rows:\s+600\b", summary)
    assert re.search(r"Distinct students:\s+\d+", summary)
    assert re.search(r"Null values:\s+none", summary)
    assert re.search(r"At risk:\s+\d+ of 600 \(\d+\.\d%\)", summary)
    assert re.search(r"last_updated range: 2\d{3}-\d\d-\d\d .* to 2\d{3}-", summary)


def test_local_full_sync_prints_next_sync_state(full_sync, workspace):
    line = re.search(r"^Next sync state: (.*)$", section(full_sync.stdout, "7/7"), re.M)
    assert line
    state = json.loads(line.group(1))
    assert state["next_cursor"]
    saved = json.loads((workspace["project"] / "files" / "state.json").read_text())
    assert state == saved


def test_local_full_sync_stops_the_simulator(full_sync, workspace):
    assert stops_serving(simulator_url(full_sync.stdout))
    assert processes_in(workspace["project"]) == []


def test_local_full_sync_never_prints_the_api_key(full_sync):
    assert DEMO_API_KEY not in full_sync.stdout + full_sync.stderr


def test_local_full_sync_leaves_configuration_json_unchanged(full_sync):
    assert full_sync.configuration_unchanged


def test_local_full_sync_ends_by_pointing_at_the_student_success_preview(full_sync):
    assert (
        full_sync.stdout.rstrip()
        .splitlines()[-1]
        .startswith("See the data as advisors will: ./student_success.sh")
    )


def test_local_full_sync_reads_table_name_from_schema(full_sync):
    assert "Table (from connector.schema()): hed_records" in full_sync.stdout


def listed_after(output: str, heading: str) -> list:
    """The indented lines right after the first line that starts with `heading`, stripped."""
    lines = output.splitlines()
    start = next(number for number, line in enumerate(lines) if line.startswith(heading))
    listed = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        listed.append(line.strip())
    return listed


def files_deploy_ships(project: Path, env: dict, folder: Path) -> list:
    """The staged files `deploy.sh --dry-run` lists (it calls nothing)."""
    config = write_config(folder / "production.json", api_key="a-real-looking-key")
    fivetran_key = base64.b64encode(b"key:secret").decode()
    deploy_env = {**without_fivetran_variables(env), "FIVETRAN_API_KEY": fivetran_key}
    names = ("--destination", "D", "--connection", "hed", "--config", str(config))
    result = run_script(project, deploy_env, *names, "--dry-run", script="deploy.sh")
    assert result.returncode == 0, result.stdout + result.stderr
    return listed_after(result.stdout, "Dry run:")


def test_debug_stages_exactly_the_files_deploy_ships(full_sync, workspace, tmp_path):
    staged = listed_after(section(full_sync.stdout, "4/7"), "Staged the runtime files")
    assert "connector.py" in staged
    assert staged == files_deploy_ships(workspace["project"], workspace["env"], tmp_path)


def test_local_incremental_shows_sample_rows(incremental_sync):
    assert len(RECORD_ROW.findall(section(incremental_sync.stdout, "5/7"))) == SAMPLE_ROWS


def test_local_incremental_syncs_only_the_changes(incremental_sync):
    assert incremental_sync.returncode == 0, incremental_sync.stdout + incremental_sync.stderr
    assert "Incremental sync from saved cursor" in incremental_sync.stdout
    assert operation_counts(section(incremental_sync.stdout, "6/7"))["Upserts"] == 15


def test_local_incremental_keeps_the_rows_of_the_full_sync(incremental_sync):
    # 600 initial records plus 10 new ones; the 5 updated ones replace their old rows.
    assert re.search(r"Rows:\s+610\b", section(incremental_sync.stdout, "5/7"))


def test_local_incremental_stops_the_simulator(incremental_sync, workspace):
    assert stops_serving(simulator_url(incremental_sync.stdout))
    assert processes_in(workspace["project"]) == []


# ---------------------------------------------------------------------------------------
# A real API: sample rows are student records (FERPA), shown only with --show-sample


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> dict:
    """An API the script did not start (so it cannot know the records are synthetic), and a
    configuration file that points at it."""
    root = tmp_path_factory.mktemp("api")
    with HedSimulator(records=API_RECORDS, seed=7) as sim:
        config = write_config(root / "api.json", api_key=DEMO_API_KEY, base_url=sim.url)
        yield {"simulator": sim, "config": config, "root": root}


def sync_from_api(api: dict, name: str, *args: str) -> subprocess.CompletedProcess:
    """A full sync from `api` in a project copy of its own."""
    project = copy_repo(api["root"] / name)
    env = offline_env(api["root"] / f"{name}-env")
    return run_script(project, env, "--config", str(api["config"]), "--yes", *args)


@pytest.fixture(scope="module")
def api_sync(api) -> subprocess.CompletedProcess:
    result = sync_from_api(api, "default")
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def api_sync_with_sample(api) -> subprocess.CompletedProcess:
    result = sync_from_api(api, "show-sample", "--show-sample")
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_sync_from_an_api_shows_no_sample_rows(api_sync):
    report = section(api_sync.stdout, "5/7")
    assert RECORD_ROW.findall(report) == []
    assert "Query:" not in report


def test_sync_from_an_api_prints_no_record_id(api_sync, api):
    output = api_sync.stdout + api_sync.stderr
    served = [record["record_id"] for record in api["simulator"].records()]
    assert len(served) == API_RECORDS
    assert [record_id for record_id in served if record_id in output] == []


def test_sync_from_an_api_says_why_rows_are_hidden_and_how_to_see_them(api_sync):
    report = section(api_sync.stdout, "5/7")
    assert "Sample rows not shown: from a real API they are student records" in report
    assert "Rerun with --show-sample" in report


def test_sync_from_an_api_still_shows_the_data_quality_counts(api_sync):
    assert re.search(rf"Rows:\s+{API_RECORDS}\b", section(api_sync.stdout, "5/7"))


def test_show_sample_prints_sample_rows_from_an_api(api_sync_with_sample):
    report = section(api_sync_with_sample.stdout, "5/7")
    assert len(RECORD_ROW.findall(report)) == SAMPLE_ROWS
    assert re.search(rf"Rows:\s+{API_RECORDS}\b", report)


def test_help_warns_that_show_sample_prints_real_student_records(project, env):
    result = run_script(project, env, "--help")
    option = result.stdout[result.stdout.index("--show-sample") :]
    assert "real student records" in option.split("\n  -")[0]


def test_wrong_api_key_fails_with_nonzero_exit(project, env, simulator, tmp_path):
    config = write_config(tmp_path / "wrong.json", api_key="not-the-key", base_url=simulator.url)
    result = run_script(project, env, "--config", str(config), "--yes")
    assert result.returncode != 0
    assert "fivetran debug failed" in result.stderr
    assert "Step 4/7 (sync with fivetran debug) failed" in result.stderr
    assert "not-the-key" not in result.stdout + result.stderr


def test_failed_local_sync_stops_the_simulator(project, env, tmp_path):
    # A page_size the connector refuses makes the sync fail after the simulator started.
    config = write_config(tmp_path / "bad.json", page_size="500")
    result = run_script(project, env, "--local", "--yes", "--config", str(config))
    assert result.returncode != 0
    assert stops_serving(simulator_url(result.stdout))
    assert processes_in(project) == []


class Stopped(NamedTuple):
    """How a script signalled mid-sync ended."""

    code: int
    output: str
    seconds: float  # from the signal to the script's exit


def drain(stream, into: list) -> threading.Thread:
    """Read `stream` into `into` in the background until its end, then close it, so that
    the writers never block on a full pipe."""

    def read() -> None:
        with contextlib.suppress(OSError, ValueError), stream:
            for line in stream:
                into.append(line)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def signal_mid_sync(project: Path, env: dict, send, read_rest: bool = True) -> Stopped:
    """Start a long --local sync, call send(process) at its first checkpoint; a Stopped.

    The output is read on all along and the script is given longer to exit than the whole
    sync takes, so a script that waits for the sync exits late rather than never.
    read_rest=False when the script dies without stopping its children: they may keep the
    output pipe open, so waiting for its end would wait for them. The script runs in a
    process group of its own, and whatever is left in it is killed at the end.
    """
    command = ["bash", project / SCRIPT, "--local", "--yes", "--records", LONG_SYNC_RECORDS]
    output = ""
    rest: list = []
    with supervised(command, project, env, own_session=True, text=True) as process:
        for line in process.stdout:
            output += line
            if "Checkpoint:" in line:
                signalled = time.monotonic()
                send(process)
                break
        else:
            pytest.fail(f"the sync ended before its first checkpoint:\n{output}")
        drainer = drain(process.stdout, rest)
        process.wait(timeout=RUN_TIMEOUT_S)
        seconds = time.monotonic() - signalled
        if read_rest:
            drainer.join(RUN_TIMEOUT_S)
    return Stopped(process.returncode, output + "".join(rest), seconds)


def test_interrupt_stops_the_sync_and_the_simulator(project, env):
    # Ctrl-C reaches the whole foreground process group.
    stopped = signal_mid_sync(project, env, lambda p: os.killpg(p.pid, signal.SIGINT))
    assert stopped.code == 130, stopped.output
    assert stops_serving(simulator_url(stopped.output))
    assert processes_in(project) == []


def test_terminate_stops_the_sync_and_the_simulator_at_once(project, env):
    # A TERM to the script alone (a CI timeout) must not wait for fivetran debug to finish.
    stopped = signal_mid_sync(project, env, lambda p: p.send_signal(signal.SIGTERM))
    assert stopped.code == 143, stopped.output
    assert stopped.seconds < TERM_EXIT_BOUND_S
    assert "SYNC SUCCEEDED" not in stopped.output
    assert stops_serving(simulator_url(stopped.output))
    assert processes_in(project) == []


def test_killed_script_leaves_no_simulator_behind(project, env):
    stopped = signal_mid_sync(
        project, env, lambda p: p.send_signal(signal.SIGKILL), read_rest=False
    )
    assert stopped.code == -signal.SIGKILL
    assert stops_serving(simulator_url(stopped.output))


def test_killed_script_leaves_no_sync_behind(project, env):
    # fivetran debug runs in a session of its own, out of reach of the kill: it stops itself.
    # (It outlives the process group signal_mid_sync kills, so what is checked is its own end.)
    def kill_and_watch(process):
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=RUN_TIMEOUT_S)
        deadline = time.monotonic() + TERM_EXIT_BOUND_S
        while processes_in(project) and time.monotonic() < deadline:
            time.sleep(0.1)
        kill_and_watch.left = processes_in(project)

    signal_mid_sync(project, env, kill_and_watch, read_rest=False)
    assert kill_and_watch.left == []


def test_files_that_is_not_a_folder_fails_the_sync_step_with_the_reason(project, env):
    (project / "files").write_text("not a folder")
    result = run_script(project, env, "--local", "--incremental")
    assert result.returncode == 1
    assert f"File exists: '{project / 'files'}'" in result.stderr
    assert "Step 4/7 (fivetran debug) failed (exit 1)." in result.stderr
    assert "Traceback" not in result.stderr


def test_placeholder_key_without_local_fails_with_instructions(project, env):
    result = run_script(project, env, "--yes")
    assert result.returncode == 1
    assert "'api_key' still holds the placeholder" in result.stderr
    assert "--local" in result.stderr
    assert not (project / "files").exists()


def test_reset_without_yes_and_without_terminal_deletes_nothing(project, env):
    (project / "files").mkdir()
    (project / "files" / "state.json").write_text('{"next_cursor": "kept"}')
    result = run_script(project, env, "--local")
    assert result.returncode == 1
    assert "pass --yes" in result.stderr
    assert (project / "files" / "state.json").exists()


def test_answering_no_at_the_prompt_deletes_nothing(project, env):
    (project / "files").mkdir()
    (project / "files" / "state.json").write_text('{"next_cursor": "kept"}')
    command = ["bash", project / SCRIPT, "--local"]
    answer = (b"Do you want to continue? (Y/n) ", b"n")
    code, screen = run_on_terminal(command, project, env, RUN_TIMEOUT_S, answer=answer)
    assert code == 1, screen
    assert "Cancelled: nothing was deleted." in screen
    assert (project / "files" / "state.json").read_text() == '{"next_cursor": "kept"}'


def test_help_exits_zero(project, env):
    result = run_script(project, env, "--help")
    assert result.returncode == 0
    assert "--local" in result.stdout
    assert "--incremental" in result.stdout


def test_help_works_before_anything_is_installed(project, tmp_path):
    # A machine with only a system Python, no SDK and no .venv yet: the help shows at once.
    system_python = shutil.which("python3", path="/usr/bin:/bin")
    if (
        system_python is None
        or run_command(
            [system_python, "-c", "import fivetran_connector_sdk"], tmp_path, None, RUN_TIMEOUT_S
        ).returncode
        == 0
    ):
        pytest.skip("needs a system python3 without the Fivetran SDK")
    bare = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "NO_COLOR": "1"}
    result = run_script(project, bare, "--help")
    assert result.returncode == 0, result.stderr
    assert "--local" in result.stdout
    assert not (project / ".venv").exists()


def test_invalid_configuration_without_local_is_refused_before_any_sync(project, env, tmp_path):
    config = write_config(tmp_path / "plain-http.json", api_key="k", base_url="http://example.edu")
    result = run_script(project, env, "--yes", "--config", str(config))
    assert result.returncode == 1
    assert "'base_url' must use https" in result.stderr
    assert not (project / "files").exists()


# ---------------------------------------------------------------------------------------
# The configuration file: --config, else FIVETRAN_CONFIGURATION, else configuration.json


def without_fivetran_variables(env: dict) -> dict:
    return {key: value for key, value in env.items() if not key.startswith("FIVETRAN_")}


def test_fivetran_configuration_is_the_file_checked(project, env, tmp_path):
    config = write_config(tmp_path / "lab.json", api_key="k", base_url="http://example.edu")
    lab = {**without_fivetran_variables(env), "FIVETRAN_CONFIGURATION": str(config)}
    result = run_script(project, lab, "--yes")
    assert result.returncode == 1
    assert f"{config}: " in result.stderr
    assert "'base_url' must use https" in result.stderr


def test_config_flag_wins_over_fivetran_configuration(project, env, tmp_path):
    config = write_config(tmp_path / "flag.json", api_key="k", base_url="http://example.edu")
    lab = {**without_fivetran_variables(env), "FIVETRAN_CONFIGURATION": "/nonexistent.json"}
    result = run_script(project, lab, "--yes", "--config", str(config))
    assert result.returncode == 1
    assert f"{config}: " in result.stderr


def test_local_run_refuses_a_missing_fivetran_configuration(project, env):
    lab = {**without_fivetran_variables(env), "FIVETRAN_CONFIGURATION": "missing.json"}
    result = run_script(project, lab, "--local", "--yes")
    assert result.returncode == 1
    assert f"No configuration file at {project / 'missing.json'}" in result.stderr
    assert "(from FIVETRAN_CONFIGURATION)" in result.stderr


def test_local_run_syncs_with_the_settings_fivetran_configuration_names(project, env, tmp_path):
    # A page_size the connector refuses: the sync fails only if this file's settings are used.
    config = write_config(tmp_path / "lab.json", page_size="500")
    lab = {**without_fivetran_variables(env), "FIVETRAN_CONFIGURATION": str(config)}
    result = run_script(project, lab, "--local", "--yes")
    assert f"settings from {config} (from FIVETRAN_CONFIGURATION)" in result.stdout
    assert "Step 4/7 (fivetran debug) failed" in result.stderr


# ---------------------------------------------------------------------------------------
# A clean offline first run


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def offline_machine(tmp_path_factory) -> dict:
    """A fresh user on a machine without internet access: empty HOME, telemetry not opted
    out, every https request refused, the SDK's tools on PATH and nothing else."""
    root = tmp_path_factory.mktemp("offline")
    home = root / "home"
    home.mkdir()
    refused = f"http://127.0.0.1:{closed_port()}"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("FIVETRAN_")
        and key.lower() not in ("do_not_track", "virtual_env", "no_proxy")
        and not key.lower().endswith("_proxy")
    }
    env.update(
        {
            "HOME": str(home),
            "NO_COLOR": "1",
            "PATH": os.pathsep.join([str(venv_bin()), "/usr/bin", "/bin"]),
            "HTTPS_PROXY": refused,
            "https_proxy": refused,
            "HTTP_PROXY": refused,
            "http_proxy": refused,
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    return {"project": copy_repo(root / "project"), "env": env, "home": home}


@pytest.fixture(scope="module")
def offline_run(offline_machine) -> subprocess.CompletedProcess:
    """The quickstart, `--local --yes`, on the offline machine."""
    return run_script(offline_machine["project"], offline_machine["env"], "--local", "--yes")


def test_offline_machine_cannot_reach_any_sdk_lookup(offline_machine):
    # The premise of the tests below: here, every lookup the SDK makes by itself fails.
    command = [sys.executable, REPO_ROOT / "devkit" / "sdk_lookups.py", "lookups"]
    result = run_command(
        command,
        offline_machine["project"],
        offline_machine["env"],
        RUN_TIMEOUT_S,
        merge_stderr=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "core-version-check",
        "pipreqs",
        "sdk-version-check",
        "telemetry",
    ]


def test_offline_quickstart_succeeds(offline_run):
    assert offline_run.returncode == 0, offline_run.stdout + offline_run.stderr
    assert operation_counts(section(offline_run.stdout, "6/7"))["Upserts"] == 600


def test_offline_quickstart_prints_no_traceback(offline_run):
    assert "Traceback" not in offline_run.stdout + offline_run.stderr


def test_offline_quickstart_prints_no_severe_line(offline_run):
    assert "SEVERE" not in offline_run.stdout + offline_run.stderr


def test_offline_quickstart_waits_on_no_lookup_retries(offline_run):
    # The SDK's version check and its pipreqs run each print this before sleeping.
    assert "retrying after" not in offline_run.stdout
    assert "unable to check for a newer version" not in offline_run.stdout


def test_offline_quickstart_shows_no_telemetry_notice(offline_run):
    assert "Telemetry Notice" not in offline_run.stdout


def test_offline_quickstart_names_the_lookups_it_skips(offline_run):
    checks = section(offline_run.stdout, "1/7")
    assert "this run skips them" in checks
    for skipped in (
        "the SDK's version check",
        "the SDK core's version check",
        "pipreqs asking PyPI",
        "telemetry",
    ):
        assert f"  - {skipped}" in checks


def test_offline_quickstart_writes_no_sdk_settings_of_its_own(offline_run, offline_machine):
    # Skipped lookups leave no trace in ~/.fivetran: no version-check stamps, no telemetry
    # preference (the core's license notice, the SDK's own, may still record itself).
    home = offline_machine["home"]
    assert not (home / VERSION_CHECK_FILE).exists()
    assert not (home / ".fivetran" / "connector_sdk" / "_config.json").exists()
    core_settings = home / CORE_SETTINGS_FILE
    if core_settings.exists():
        assert CORE_VERSION_CHECK_FIELD not in json.loads(core_settings.read_text())


@pytest.fixture(scope="module")
def offline_rerun(offline_machine, offline_run) -> subprocess.CompletedProcess:
    """The quickstart again: this time `fivetran reset` runs first, offline as well."""
    assert offline_run.returncode == 0, offline_run.stdout + offline_run.stderr
    return run_script(offline_machine["project"], offline_machine["env"], "--local", "--yes")


def test_offline_rerun_resets_and_syncs_cleanly(offline_rerun):
    output = offline_rerun.stdout + offline_rerun.stderr
    assert offline_rerun.returncode == 0, output
    assert "[ok] Reset done" in section(offline_rerun.stdout, "3/7")
    assert "Traceback" not in output
    assert "SEVERE" not in output
