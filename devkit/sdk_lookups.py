"""The SDK's own internet lookups, skipping those that cannot succeed from here, and the
launcher debug_and_reset.sh runs the CLI through.

By itself `fivetran debug` (and `reset`) makes lookups on the internet: the SDK's and its
core's version checks against PyPI, pipreqs asking PyPI about imports it does not find
installed, and telemetry. Offline, each one stalls or fails the run: a failed version check
costs up to ~7 s a command, pipreqs ~13.5 s of retries a debug run (SDK 3.0.0). The debug
script asks `unreachable_lookups` which of them cannot succeed from this machine, then skips
just those for one run: the version checks by running the CLI through this file's
`fivetran --skip ...`, pipreqs with the `--use-local` shim `write_pipreqs_shim` writes (the
same shim the tests' offline environment puts on PATH, devkit/sdk_cli.py), telemetry with
DO_NOT_TRACK. Nothing is written into the user's ~/.fivetran; where a lookup can succeed,
the SDK makes it exactly as it always does.

The launcher (`python devkit/sdk_lookups.py fivetran [--skip NAME]... [--exit-with-parent]
-- ARGS`) is run by its path, not with `-m`, so the repository never lands on the CLI's
sys.path: `fivetran` runs in that process and loads the connector, which must import only
what is deployed with it. `lookups` prints the names of the lookups that cannot succeed.
"""

import argparse
import importlib
import os
import shlex
import signal
import socket
import stat
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# The PyPI server pipreqs asks about an import it cannot find installed (its default).
PIPREQS_PYPI_SERVER = "https://pypi.python.org/pypi/"
# The package pipreqs asks that server about in this project (pipreqs misses it locally).
PIPREQS_PROBED_PACKAGE = "requests"
# Seconds a lookup has to answer before it counts as impossible from here: a reachable
# server answers a HEAD well within it; an unreachable one would hold the SDK 10 s a try.
PROBE_TIMEOUT_S = 3.0
HTTP_OK = 200
# How a lookup is probed: a HEAD request that must answer 200, or only a TCP connection that
# opens (for telemetry: nothing is sent to it before the SDK's notice has been shown).
PROBE_HEAD = "head"
PROBE_CONNECT = "connect"
DEFAULT_PORTS = {"http": 80, "https": 443}
# DO_NOT_TRACK values that switch the SDK's telemetry off (its own rule).
TELEMETRY_OPT_OUT_VALUES = ("1", "true")
# The callers of each version check: the SDK imports the function into every module that
# calls it, so skipping one means replacing it under its name in each of them.
VERSION_CHECK_CALLERS = {
    "sdk-version-check": (
        ("fivetran_connector_sdk_cli.connector", "check_newer_version"),
        ("fivetran_connector_sdk_cli.cli_commands", "check_newer_version"),
    ),
    "core-version-check": (("fivetran_connector_sdk_core.runner", "check_newer_version"),),
}
# The shim's name: the SDK runs the first `pipreqs` it finds on PATH.
PIPREQS_SHIM = "pipreqs"
# How often a launcher started with --exit-with-parent checks that its parent is still there.
PARENT_CHECK_INTERVAL_S = 0.5


@dataclass(frozen=True)
class Lookup:
    """An internet request the SDK makes by itself while it debugs or resets."""

    url: str
    probe: str  # PROBE_HEAD or PROBE_CONNECT


def sdk_lookups(environ: dict) -> dict:
    """The lookups `fivetran debug` and `reset` would make under `environ`, by name.

    URLs come from the installed SDK, so they follow it. Telemetry is left out when
    DO_NOT_TRACK already switches it off.
    """
    from fivetran_connector_sdk_common import constants as sdk
    from fivetran_connector_sdk_core import constants as core

    lookups = {
        "sdk-version-check": Lookup(sdk.PYPI_PACKAGE_DETAILS_URL, PROBE_HEAD),
        "core-version-check": Lookup(core.PYPI_PACKAGE_DETAILS_URL, PROBE_HEAD),
        "pipreqs": Lookup(f"{PIPREQS_PYPI_SERVER}{PIPREQS_PROBED_PACKAGE}/json", PROBE_HEAD),
    }
    opted_out = environ.get("DO_NOT_TRACK", "").strip().lower() in TELEMETRY_OPT_OUT_VALUES
    if not opted_out:
        lookups["telemetry"] = Lookup(sdk.CONNECTOR_SDK_CLI_TELEMETRY_WEBHOOK_URL, PROBE_CONNECT)
    return lookups


def answers(lookup: Lookup, timeout: float) -> bool:
    """Whether `lookup` can succeed from here."""
    if lookup.probe == PROBE_CONNECT:
        return connects(lookup.url, timeout)
    return answers_head(lookup.url, timeout)


def answers_head(url: str, timeout: float) -> bool:
    """A HEAD request answered 200, sent with the SDK's own HTTP client (requests), so with
    the same proxies and certificates as the lookup itself."""
    import requests

    try:
        response = requests.head(url, timeout=timeout, allow_redirects=True)
    except (requests.RequestException, OSError):
        return False
    return response.status_code == HTTP_OK


def connects(url: str, timeout: float) -> bool:
    """A TCP connection opens to the URL's host, or to the proxy urllib would send it through
    (the telemetry sender uses urllib); nothing is sent over it."""
    parts = urllib.parse.urlsplit(url)
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname or ""):
        parts = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme, DEFAULT_PORTS["https"])
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except (OSError, ValueError):
        return False


def unreachable_lookups(lookups: dict, timeout: float = PROBE_TIMEOUT_S) -> list:
    """Names of the lookups that cannot succeed from here, all probed at once.

    One that has not answered by the deadline counts as unreachable. Each probe runs in a
    daemon thread because a name lookup (DNS) has no timeout of its own and must not hold
    up the caller or its exit.
    """
    results: dict = {}

    def probe(name: str, lookup: Lookup) -> None:
        results[name] = answers(lookup, timeout)

    threads = [
        threading.Thread(target=probe, args=(name, lookup), daemon=True)
        for name, lookup in lookups.items()
    ]
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return sorted(name for name in lookups if not results.get(name, False))


def write_pipreqs_shim(folder: Path) -> Path:
    """A `pipreqs` that never goes online; returns the folder to put first on PATH.

    It runs this interpreter's pipreqs with `--use-local`, so requirements.txt is checked
    against the installed packages instead of PyPI. The interpreter's path is quoted for the
    shell: a folder with spaces or quotes in its name still runs.
    """
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / PIPREQS_SHIM
    python = shlex.quote(sys.executable)
    shim.write_text(f'#!/bin/sh\nexec {python} -m pipreqs.pipreqs --use-local "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def skipped_check(*_args, **_kwargs) -> None:
    """Stands in for a version check that cannot reach PyPI from here: it says nothing."""


def skip_version_checks(names: list) -> None:
    """Replace the named version checks in every module that calls them (this process only)."""
    import fivetran_connector_sdk  # noqa: F401 - wires the CLI modules up, as `fivetran` does

    for name in names:
        for module_name, attribute in VERSION_CHECK_CALLERS[name]:
            module = importlib.import_module(module_name)
            if hasattr(module, attribute):
                setattr(module, attribute, skipped_check)


def exit_with_parent() -> None:
    """End this process with a TERM (what the debug script sends a sync it stops) once the
    process that started it is gone, even killed: a sync it started in a session of its own
    is then never left running, and never left writing to files/ after it."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_INTERVAL_S)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def run_fivetran(args: list, skip: list) -> int:
    """Run the `fivetran` CLI in this process with `args`, the version checks in `skip` off."""
    script_dir = str(Path(__file__).resolve().parent)
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != script_dir]
    skip_version_checks(skip)
    from fivetran_connector_sdk_cli.fivetran_shim import main as fivetran_main

    sys.argv = ["fivetran", *args]
    return fivetran_main()


def parse_arguments(argv: list) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="sdk_lookups.py", description="The SDK's own lookups, and the CLI without them."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("lookups", help="print the SDK lookups that cannot succeed from here")
    fivetran = commands.add_parser("fivetran", help="run the CLI with some version checks off")
    fivetran.add_argument("--skip", action="append", default=[], choices=VERSION_CHECK_CALLERS)
    fivetran.add_argument(
        "--exit-with-parent", action="store_true", help="stop when the caller is gone"
    )
    fivetran.add_argument("args", nargs=argparse.REMAINDER, help="-- then the CLI's arguments")
    return parser.parse_args(argv)


def main(argv: list | None = None) -> int:
    options = parse_arguments(sys.argv[1:] if argv is None else argv)
    if options.command == "lookups":
        for name in unreachable_lookups(sdk_lookups(dict(os.environ))):
            print(name)
        return 0
    if options.exit_with_parent:
        exit_with_parent()
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    return run_fivetran(args, options.skip)


if __name__ == "__main__":
    sys.exit(main())
