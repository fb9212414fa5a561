"""The probe, the launcher and the pipreqs shim that let debug_and_reset.sh skip SDK lookups
that cannot succeed.

devkit/sdk_lookups.py answers "can this lookup succeed from here?" for every lookup at once,
bounded in time: a HEAD request that must answer 200, or for telemetry only a TCP connection
(nothing is sent before the SDK's notice). The script then runs the real `fivetran` CLI
through the launcher with only the unreachable version checks switched off, and puts the
pipreqs `--use-local` shim first on PATH (the one shim writer: the tests' offline
environment uses it too). The probes are tried against small servers on loopback; the
launcher against the real CLI, with https refused as on an offline machine.
"""

import json
import os
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pipreqs
import pytest

from devkit import sdk_cli, sdk_lookups
from devkit.processes import run_command, supervised, wait_until_gone

REPO_ROOT = Path(__file__).resolve().parents[1]
SDK_LOOKUPS = REPO_ROOT / "devkit" / "sdk_lookups.py"
PROBE_TIMEOUT_S = 0.5
RUN_TIMEOUT_S = 120


class Answering(BaseHTTPRequestHandler):
    """Answers HEAD /ok with 200 and anything else with 404."""

    def do_HEAD(self):
        self.send_response(200 if self.path == "/ok" else 404)
        self.end_headers()

    def log_message(self, *_args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Answering)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def silent_port_listener():
    """A listening socket that never answers (a black hole), and its port."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener, listener.getsockname()[1]


@pytest.fixture
def silent_port(silent_port_listener):
    return silent_port_listener[1]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


HEAD = sdk_lookups.PROBE_HEAD
CONNECT = sdk_lookups.PROBE_CONNECT


def test_lookup_answering_200_is_reachable(server):
    lookups = {"x": sdk_lookups.Lookup(f"{server}/ok", HEAD)}
    assert sdk_lookups.unreachable_lookups(lookups, PROBE_TIMEOUT_S) == []


def test_lookup_answering_404_is_unreachable(server):
    lookups = {"x": sdk_lookups.Lookup(f"{server}/missing", HEAD)}
    assert sdk_lookups.unreachable_lookups(lookups, PROBE_TIMEOUT_S) == ["x"]


@pytest.mark.parametrize("probe", [HEAD, CONNECT])
def test_refused_lookup_is_unreachable(probe):
    lookups = {"x": sdk_lookups.Lookup(f"http://127.0.0.1:{closed_port()}/", probe)}
    assert sdk_lookups.unreachable_lookups(lookups, PROBE_TIMEOUT_S) == ["x"]


def test_connect_probe_is_reachable_and_sends_nothing(silent_port_listener):
    listener, port = silent_port_listener
    lookups = {"x": sdk_lookups.Lookup(f"http://127.0.0.1:{port}/webhook", CONNECT)}
    assert sdk_lookups.unreachable_lookups(lookups, PROBE_TIMEOUT_S) == []
    connection, _ = listener.accept()
    with connection:
        connection.settimeout(PROBE_TIMEOUT_S)
        assert connection.recv(1024) == b""  # closed by the probe without a byte sent


@pytest.mark.parametrize(("no_proxy", "unreachable"), [("", ["x"]), ("127.0.0.1", [])])
def test_connect_probe_goes_the_way_urllib_would(monkeypatch, silent_port, no_proxy, unreachable):
    # The host listens; the proxy refuses: only the route urllib takes decides.
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("no_proxy", no_proxy)
    lookups = {"x": sdk_lookups.Lookup(f"http://127.0.0.1:{silent_port}/hook", CONNECT)}
    assert sdk_lookups.unreachable_lookups(lookups, PROBE_TIMEOUT_S) == unreachable


def test_silent_lookups_are_unreachable_within_the_probe_timeout(silent_port):
    url = f"http://127.0.0.1:{silent_port}/"
    lookups = {name: sdk_lookups.Lookup(url, HEAD) for name in ("a", "b", "c")}
    started = time.monotonic()
    assert sdk_lookups.unreachable_lookups(lookups, PROBE_TIMEOUT_S) == ["a", "b", "c"]
    # All at once: three silent servers cost one timeout, not three (the bound is the point).
    assert time.monotonic() - started < 3 * PROBE_TIMEOUT_S


def test_sdk_lookups_leave_telemetry_out_when_do_not_track_is_set():
    assert "telemetry" not in sdk_lookups.sdk_lookups({"DO_NOT_TRACK": "1"})
    assert "telemetry" in sdk_lookups.sdk_lookups({})


def test_sdk_lookups_use_the_installed_sdks_urls():
    from fivetran_connector_sdk_common import constants

    lookups = sdk_lookups.sdk_lookups({})
    assert lookups["sdk-version-check"].url == constants.PYPI_PACKAGE_DETAILS_URL
    assert lookups["telemetry"].url == constants.CONNECTOR_SDK_CLI_TELEMETRY_WEBHOOK_URL


@pytest.mark.parametrize(
    ("module", "attribute"),
    [pair for callers in sdk_lookups.VERSION_CHECK_CALLERS.values() for pair in callers],
)
def test_every_version_check_caller_exists_in_the_installed_sdk(module, attribute):
    # A renamed caller would silently stop being skipped: fail here instead.
    imported = __import__(module, fromlist=[attribute])
    assert callable(getattr(imported, attribute))


@pytest.fixture
def offline_home_env(tmp_path) -> dict:
    """An empty HOME and https refused: the SDK's version checks fail as offline."""
    refused = f"http://127.0.0.1:{closed_port()}"
    env = sdk_cli.offline_env(tmp_path / "env")
    home = tmp_path / "home"
    home.mkdir()
    env.update({"HOME": str(home), "HTTPS_PROXY": refused, "https_proxy": refused})
    return env


def run_launcher(project: Path, env: dict, *skip: str):
    skips = [part for name in skip for part in ("--skip", name)]
    command = [sys.executable, SDK_LOOKUPS, "fivetran", *skips, "--", "debug", project]
    return run_command(command, project, env, RUN_TIMEOUT_S)


def test_launcher_runs_the_cli_without_the_skipped_version_checks(
    tmp_path, offline_home_env, simulator
):
    config = {"api_key": "hed-demo-key", "base_url": simulator.url}
    project = sdk_cli.make_project(tmp_path / "project", config)
    result = run_launcher(project, offline_home_env, "sdk-version-check", "core-version-check")
    assert result.returncode == 0, result.stdout
    assert "unable to check for a newer version" not in result.stdout
    assert "SYNC SUCCEEDED" in result.stdout
    # The core stamps its check even when PyPI cannot be reached; a skipped one leaves none.
    settings = Path(offline_home_env["HOME"]) / sdk_cli.CORE_SETTINGS_FILE
    if settings.exists():
        assert sdk_cli.CORE_VERSION_CHECK_FIELD not in json.loads(settings.read_text())


def test_launcher_passes_the_clis_exit_code_through(tmp_path, offline_home_env):
    project = sdk_cli.make_project(tmp_path / "project", {"page_size": "500"})
    result = run_launcher(project, offline_home_env, "sdk-version-check")
    assert result.returncode == 1
    assert "SYNC FAILED" in result.stdout


def test_launcher_hides_the_repository_from_the_connector(tmp_path, offline_home_env):
    # The connector must import only what is deployed with it, never devkit/ or the repo.
    hidden = [str(REPO_ROOT), str(REPO_ROOT / "devkit")]
    project = tmp_path / "project"
    project.mkdir()
    (project / "configuration.json").write_text("{}")
    (project / "requirements.txt").write_text("")
    (project / "connector.py").write_text(
        "import os, sys\n"
        "from fivetran_connector_sdk import Connector\n"
        "def schema(configuration):\n"
        "    return []\n"
        "def update(configuration, state):\n"
        "    found = {os.path.abspath(entry or '.') for entry in sys.path}\n"
        f"    assert not found & set({hidden!r}), sys.path\n"
        "connector = Connector(update=update, schema=schema)\n"
    )
    # Both version checks skipped: offline they would only add their ~7 s of retries.
    result = run_launcher(project, offline_home_env, "sdk-version-check", "core-version-check")
    assert result.returncode == 0, result.stdout
    assert "SYNC SUCCEEDED" in result.stdout


# ---------------------------------------------------------------------------------------
# The pipreqs shim: one writer for the tests' offline environment and debug_and_reset.sh


def test_pipreqs_shim_runs_an_interpreter_whose_path_needs_quoting(tmp_path, monkeypatch):
    # A stand-in interpreter in a folder named with a space, quotes and a `$`: it prints how
    # it was called, one part a line.
    odd = tmp_path / 'it\'s "odd" $HOME'
    odd.mkdir()
    python = odd / "fake python"
    python.write_text('#!/bin/sh\nprintf "%s\\n" "$0" "$@"\n')
    python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(python))
    shim_dir = sdk_lookups.write_pipreqs_shim(tmp_path / "shim")
    result = run_command(
        [shim_dir / "pipreqs", "--print", "a folder"], tmp_path, None, RUN_TIMEOUT_S
    )
    called = [str(python), "-m", "pipreqs.pipreqs", "--use-local", "--print", "a folder"]
    assert result.stdout.splitlines() == called


def test_pipreqs_shim_runs_this_interpreters_pipreqs(tmp_path):
    shim_dir = sdk_lookups.write_pipreqs_shim(tmp_path / "shim")
    command = [shim_dir / "pipreqs", "--version"]
    result = run_command(command, tmp_path, None, RUN_TIMEOUT_S, merge_stderr=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == pipreqs.__version__


def test_offline_environment_puts_the_same_shim_first_on_path(tmp_path):
    env = sdk_cli.offline_env(tmp_path / "env")
    written = sdk_lookups.write_pipreqs_shim(tmp_path / "reference")
    first = Path(env["PATH"].split(os.pathsep)[0])
    assert (first / "pipreqs").read_text() == (written / "pipreqs").read_text()


# ---------------------------------------------------------------------------------------
# --exit-with-parent: a sync the debug script started never outlives it


def test_launcher_with_exit_with_parent_stops_when_its_parent_is_killed(tmp_path, silent_port):
    # A parent starts the launcher, prints its PID, then waits; killing the parent must end
    # the launcher. Its sync would run far longer by itself: the API never answers (each
    # attempt waits for its read timeout, then retries).
    config = {"api_key": "k", "base_url": f"http://127.0.0.1:{silent_port}"}
    project = sdk_cli.make_project(tmp_path / "project", config)
    launcher = [sys.executable, SDK_LOOKUPS, "fivetran", "--exit-with-parent", "--", "debug"]
    parent_code = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen({[*map(str, launcher), str(project)]!r})\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    env = sdk_cli.offline_env(tmp_path / "env")
    command = [sys.executable, "-c", parent_code]
    with supervised(command, project, env, own_session=True, text=True) as parent:
        launcher_pid = int(parent.stdout.readline())
        time.sleep(PROBE_TIMEOUT_S)  # the sync is under way
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=RUN_TIMEOUT_S)
        assert wait_until_gone(launcher_pid, seconds=10)
