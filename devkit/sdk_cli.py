"""The Fivetran SDK CLI as this repository's tests, benchmarks and scripts run it.

Tests and benchmarks (`offline_env`, `run_debug`, ...): our machines and CI reach no
internet but the package registries, and SDK steps then stall every command (measured in
../shared/notes/sdk-3.0-facts.md): the version checks (~7 s, skipped when a fresh timestamp
exists under $HOME) and pipreqs looking `requests` up online (~13.5 s of retries, avoided by
`pipreqs --use-local`). Each run here gets its own HOME holding those timestamps, and a
`pipreqs` shim first on PATH that adds `--use-local`.

debug_and_reset.sh (commands `lookups` and `fivetran`): finds which of the SDK's own
internet lookups cannot succeed from this machine, so that one run skips just those,
without writing anything into the user's ~/.fivetran. Where they can succeed, the SDK runs
exactly as it always does.

deploy.sh (command `deploy-fields`): resolves the deploy fields the way `fivetran deploy`
does (fivetran_connector_sdk_cli/resolution.py: flag -> environment variable -> options-file
profile -> SDK default), finding and reading the options file with the SDK's own functions,
so the script can say where each field comes from and ask only for what nothing gives.

The scripts run this file by its path, not with `-m`, so the repository never lands on the
CLI's sys.path (the connector must import only what is deployed with it).
"""

import argparse
import importlib
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Files a connector project needs to run under `fivetran debug`.
PROJECT_FILES = ("connector.py", "requirements.txt")
# Where the SDK looks for the time of its last PyPI version check.
VERSION_CHECK_FILE = Path(".fivetran") / "connector_sdk" / "_last_version_check"
# Where the SDK core keeps its settings, the time of its own version check among them.
CORE_SETTINGS_FILE = Path(".fivetran") / "connector_sdk_core" / "_config.json"
CORE_VERSION_CHECK_FIELD = "lastVersionCheck"
# `fivetran debug` prints its operation summary as "Upserts | 600" rows.
OPERATION_ROW = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*\|\s*(\d+)\s*$", re.MULTILINE)

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

# `fivetran deploy`'s fields in the order its resolver logs them, with their flag and
# environment variable (None where the SDK has none); package_id has no flag in deploy.sh.
DEPLOY_FIELDS = (
    ("destination", "--destination", "FIVETRAN_DESTINATION_NAME"),
    ("connection", "--connection", "FIVETRAN_CONNECTION_NAME"),
    ("python_version", "--python-version", "FIVETRAN_PYTHON_VERSION"),
    ("hybrid_deployment_agent_id", "--hybrid-deployment-agent-id", "FIVETRAN_HD_AGENT_ID"),
    ("proxy_id", "--proxy-id", None),
    ("proxy_host_config_key", "--proxy-host-config-key", None),
    ("package_id", None, None),
    ("naming", "--naming", "FIVETRAN_NAMING"),
)
# The SDK's words for where a field came from (resolution.py), and our notes on its defaults.
SDK_DEFAULT_SOURCE = "SDK built-in default"
NEW_CONNECTIONS_ONLY = "new connections only"
DEFAULT_AGENT_NOTE = f"the SDK looks up the destination's default agent_id; {NEW_CONNECTIONS_ONLY}"
NAMING_SUFFIX = "_NAMING"
# How deploy.sh learns where the options file is: these tell it apart from ~/.fivetran's.
OPTIONS_FILE_ENV = "FIVETRAN_OPTIONS_FILE"
OPTIONS_FILENAME = "options.toml"
DEFAULT_PROFILE = "default"
# Splits the parts of a line for deploy.sh: not whitespace, so `read` keeps empty parts.
FIELD_SEPARATOR = "\x1f"


# ---------------------------------------------------------------------------------------
# Tests and benchmarks


def venv_bin() -> Path:
    """The folder holding the running interpreter's `fivetran` and `pipreqs`."""
    return Path(sys.executable).parent


def fivetran_executable() -> str:
    """The `fivetran` CLI beside this interpreter, else the one on PATH."""
    beside = venv_bin() / "fivetran"
    return str(beside) if beside.exists() else (shutil.which("fivetran") or "fivetran")


def write_pipreqs_shim(folder: Path) -> Path:
    """A `pipreqs` that never goes online; returns the folder to put first on PATH."""
    folder.mkdir(parents=True, exist_ok=True)
    shim = folder / "pipreqs"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m pipreqs.pipreqs --use-local "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return folder


def write_version_check_stamps(home: Path) -> None:
    """Tell the SDK and its core that they checked PyPI just now, so neither asks again."""
    now = int(time.time())
    stamp = home / VERSION_CHECK_FILE
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(str(now))
    settings = home / CORE_SETTINGS_FILE
    settings.parent.mkdir(parents=True, exist_ok=True)
    settings.write_text(json.dumps({CORE_VERSION_CHECK_FIELD: now}))


def offline_env(workdir: Path, extra: dict | None = None) -> dict:
    """Environment for one CLI run: own HOME, no telemetry, no online lookups.

    Args:
        workdir: a scratch folder owned by the caller (HOME and the shim go there).
        extra: variables to add or override.
    """
    home = workdir / "home"
    write_version_check_stamps(home)
    shim_dir = write_pipreqs_shim(workdir / "shim-bin")
    env = dict(os.environ)
    env.update(
        {
            "HOME": str(home),
            "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
            "NO_COLOR": "1",
            "PATH": os.pathsep.join([str(shim_dir), str(venv_bin()), env.get("PATH", "")]),
        }
    )
    env.update(extra or {})
    return env


def make_project(folder: Path, configuration: dict, connector_source: Path | None = None) -> Path:
    """A runnable project folder: connector.py, requirements.txt, configuration.json.

    Args:
        folder: created if missing.
        configuration: written as configuration.json (values must be strings).
        connector_source: the connector file to copy; the repository's by default.
    """
    folder.mkdir(parents=True, exist_ok=True)
    source = connector_source or REPO_ROOT / "connector.py"
    shutil.copy(source, folder / "connector.py")
    shutil.copy(REPO_ROOT / "requirements.txt", folder / "requirements.txt")
    (folder / "configuration.json").write_text(json.dumps(configuration))
    return folder


def run_command(
    command: list, cwd: Path, env: dict, timeout: float
) -> subprocess.CompletedProcess:
    """Run a command with no input; stdout and stderr captured together, as text."""
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_debug(
    project: Path, env: dict, timeout: float = 600, extra_args: tuple = ()
) -> subprocess.CompletedProcess:
    """`fivetran debug` on `project` with its own configuration.json."""
    command = [fivetran_executable(), "debug", project, "--configuration"]
    return run_command(
        [*command, project / "configuration.json", *extra_args], project, env, timeout
    )


def operation_counts(output: str) -> dict:
    """The `Operation | Counts` table of a debug run, e.g. {"Upserts": 600, ...}."""
    return {name.strip(): int(count) for name, count in OPERATION_ROW.findall(output)}


# ---------------------------------------------------------------------------------------
# debug_and_reset.sh: the SDK's own lookups, and skipping those that cannot succeed


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


def run_fivetran(args: list, skip: list) -> int:
    """Run the `fivetran` CLI in this process with `args`, the version checks in `skip` off."""
    script_dir = str(Path(__file__).resolve().parent)
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != script_dir]
    skip_version_checks(skip)
    from fivetran_connector_sdk_cli.fivetran_shim import main as fivetran_main

    sys.argv = ["fivetran", *args]
    return fivetran_main()


# ---------------------------------------------------------------------------------------
# deploy.sh: the deploy fields, resolved as `fivetran deploy` resolves them


@dataclass(frozen=True)
class OptionsFile:
    """The options file the SDK would read, and how it found it."""

    path: str | None  # absolute; None when there is none
    # --options-file, FIVETRAN_OPTIONS_FILE, ./options.toml or "home" (~/.fivetran's); else
    # "none", or "unsupported" (the SDK reads options files on Python 3.11 and newer only)
    found_by: str


def find_options_file(flag_value: str | None) -> OptionsFile:
    """The options file `fivetran deploy` would read if started here, by its own lookup.

    Exits as the SDK does (with its message) when a file named by flag or variable is missing.
    """
    try:
        from fivetran_connector_sdk_cli import options_file
    except ImportError:  # an SDK from before options files
        return OptionsFile(None, "unsupported")
    if not options_file.is_options_file_supported():
        return OptionsFile(None, "unsupported")
    found = options_file.find_options_file(argparse.Namespace(options_file=flag_value))
    if not found:
        return OptionsFile(None, "none")
    return OptionsFile(os.path.abspath(found), options_file_origin(flag_value, found))


def options_file_origin(flag_value: str | None, found: str) -> str:
    """Which step of the SDK's lookup found the file (it tries them in this order)."""
    if flag_value:
        return "--options-file"
    if os.environ.get(OPTIONS_FILE_ENV):
        return OPTIONS_FILE_ENV
    if os.path.abspath(found) == os.path.abspath(OPTIONS_FILENAME):
        return f"./{OPTIONS_FILENAME}"
    return "home"


def select_profile(found: OptionsFile, profile_name: str | None) -> dict:
    """The profile's fields, validated by the SDK (which exits with its message on an
    api_key, an unknown field, a bad value, or a named profile that does not exist)."""
    if found.found_by == "unsupported":
        return {}
    from fivetran_connector_sdk_cli import options_file

    if found.path is None:
        if profile_name and profile_name != DEFAULT_PROFILE:
            options_file.select_profile({}, profile_name)
        return {}
    data = options_file.load_options_file(found.path)
    profile, _applied = options_file.select_profile(data, profile_name, None, found.path)
    return profile


def flag_or_env(flags: dict, flag: str | None, env_var: str | None) -> tuple:
    """(value, source) from the flag, else its environment variable, as the SDK reads them."""
    value = flags.get(flag) if flag else None
    if value and value.strip():
        return value, flag
    value = os.environ.get(env_var) if env_var else None
    return (value, env_var) if value and value.strip() else (None, None)


def resolve_field(field: str, flag: str, env_var: str, flags: dict, profile: dict, label: str):
    """(value, source) by the SDK's precedence: flag -> variable -> profile -> unresolved."""
    value, source = flag_or_env(flags, flag, env_var)
    if value:
        return value, source
    if profile.get(field):
        return str(profile[field]), f"options file, profile [{label}]"
    return None, None


def resolve_naming(flags: dict, profile: dict, label: str) -> tuple:
    """naming as the SDK resolves it for a new connection (it ignores naming on updates)."""
    from fivetran_connector_sdk_cli.connector_helper import validate_naming

    value, source = flag_or_env(flags, "--naming", "FIVETRAN_NAMING")
    if value:
        return validate_naming(value) + NAMING_SUFFIX, source
    if profile.get("naming"):
        return validate_naming(profile["naming"]) + NAMING_SUFFIX, (
            f"options file, profile [{label}]; {NEW_CONNECTIONS_ONLY}"
        )
    return "FIVETRAN" + NAMING_SUFFIX, f"{SDK_DEFAULT_SOURCE}; {NEW_CONNECTIONS_ONLY}"


def resolve_deploy_fields(flags: dict, profile: dict, label: str) -> list:
    """[(field, value or None, source or None)] for every deploy field, in the SDK's order."""
    resolved = []
    for field, flag, env_var in DEPLOY_FIELDS:
        if field == "naming":
            value, source = resolve_naming(flags, profile, label)
        else:
            value, source = resolve_field(field, flag, env_var, flags, profile, label)
        if not value and field == "python_version":
            value, source = sdk_default_python(), f"{SDK_DEFAULT_SOURCE}; {NEW_CONNECTIONS_ONLY}"
        if not value and field == "hybrid_deployment_agent_id":
            source = DEFAULT_AGENT_NOTE
        resolved.append((field, value, source))
    return resolved


def sdk_default_python() -> str:
    from fivetran_connector_sdk_common.constants import DEFAULT_PYTHON_VERSION

    return DEFAULT_PYTHON_VERSION


def write_fields(path: str, found: OptionsFile, profile_name: str, fields: list) -> None:
    """One line per item for deploy.sh, parts split by FIELD_SEPARATOR: `@options_file PATH
    FOUND_BY`, `@profile NAME`, then `FIELD VALUE SOURCE` (VALUE empty when unresolved)."""
    lines = [("@options_file", found.path or "", found.found_by), ("@profile", profile_name, "")]
    lines += [(field, value or "", source or "") for field, value, source in fields]
    for line in lines:
        if any(FIELD_SEPARATOR in part or "\n" in part or "\r" in part for part in line):
            sys.exit(f"[error] {line[0]}: a value may not hold a line break.")
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(FIELD_SEPARATOR.join(line) + "\n" for line in lines)


def deploy_fields(options: argparse.Namespace) -> int:
    """The `deploy-fields` command: resolve, then write the result for deploy.sh."""
    from fivetran_connector_sdk_common import constants

    constants.EXECUTED_VIA_CLI = True  # the SDK's messages print as `fivetran deploy` prints them
    flags = {f"--{name.replace('_', '-')}": value for name, value in vars(options).items()}
    found = find_options_file(options.options_file)
    profile_name = options.profile or DEFAULT_PROFILE
    profile = select_profile(found, options.profile)
    fields = resolve_deploy_fields(flags, profile, profile_name)
    write_fields(options.output, found, profile_name, fields)
    return 0


# ---------------------------------------------------------------------------------------
# Command line


def parse_arguments(argv: list) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="sdk_cli.py", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("lookups", help="print the SDK lookups that cannot succeed from here")
    fivetran = commands.add_parser("fivetran", help="run the CLI with some version checks off")
    fivetran.add_argument("--skip", action="append", default=[], choices=VERSION_CHECK_CALLERS)
    fivetran.add_argument("args", nargs=argparse.REMAINDER, help="-- then the CLI's arguments")
    fields = commands.add_parser("deploy-fields", help="resolve deploy fields as the SDK does")
    fields.add_argument("--output", required=True, help="file to write the fields to")
    for _field, flag, _env in DEPLOY_FIELDS:
        if flag:
            fields.add_argument(flag)
    fields.add_argument("--profile")
    fields.add_argument("--options-file")
    return parser.parse_args(argv)


def main(argv: list | None = None) -> int:
    options = parse_arguments(sys.argv[1:] if argv is None else argv)
    if options.command == "lookups":
        for name in unreachable_lookups(sdk_lookups(dict(os.environ))):
            print(name)
        return 0
    if options.command == "fivetran":
        args = options.args[1:] if options.args[:1] == ["--"] else options.args
        return run_fivetran(args, options.skip)
    return deploy_fields(options)


if __name__ == "__main__":
    sys.exit(main())
