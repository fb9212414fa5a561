"""The Fivetran SDK CLI as this repository's tests and benchmarks run it.

Our machines and CI reach no internet but the package registries, and offline the SDK
stalls every command on lookups of its own (measured with SDK 3.0.0 on 2 cores): its
version checks (up to ~7 s a command; skipped for 6 hours when a fresh timestamp exists
under $HOME) and pipreqs looking `requests` up on PyPI (~13.5 s of retries a debug run;
`pipreqs --use-local` makes none). Each run here gets its own HOME holding those
timestamps, and a `pipreqs` shim first on PATH that adds `--use-local` (the shim
debug_and_reset.sh uses too: devkit/sdk_lookups.py writes it).

Imported as `devkit.sdk_cli` by tests/ and bench/; commands run through devkit/processes.py.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from devkit import REPO_ROOT
from devkit.processes import run_command
from devkit.runtime_files import stage_runtime_files
from devkit.sdk_lookups import write_pipreqs_shim

__all__ = ["REPO_ROOT", "run_command"]  # imported from here by bench/ and tests/ too
# Where the SDK looks for the time of its last PyPI version check.
VERSION_CHECK_FILE = Path(".fivetran") / "connector_sdk" / "_last_version_check"
# Where the SDK core keeps its settings, the time of its own version check among them.
CORE_SETTINGS_FILE = Path(".fivetran") / "connector_sdk_core" / "_config.json"
CORE_VERSION_CHECK_FIELD = "lastVersionCheck"
# `fivetran debug` prints its operation summary as "Upserts | 600" rows.
OPERATION_ROW = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*\|\s*(\d+)\s*$", re.MULTILINE)


def venv_bin() -> Path:
    """The folder holding the running interpreter's `fivetran` and `pipreqs`."""
    return Path(sys.executable).parent


def fivetran_executable() -> str:
    """The `fivetran` CLI beside this interpreter, else the one on PATH."""
    beside = venv_bin() / "fivetran"
    return str(beside) if beside.exists() else (shutil.which("fivetran") or "fivetran")


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
    """A runnable project folder: the runtime files and configuration.json.

    Args:
        folder: created if missing.
        configuration: written as configuration.json (values must be strings).
        connector_source: the connector file to copy; the repository's by default.
    """
    stage_runtime_files(folder)
    if connector_source is not None:
        shutil.copy(connector_source, folder / "connector.py")
    (folder / "configuration.json").write_text(json.dumps(configuration))
    return folder


def run_debug(
    project: Path, env: dict, timeout: float = 600, extra_args: tuple = ()
) -> subprocess.CompletedProcess:
    """`fivetran debug` on `project` with its own configuration.json."""
    command = [fivetran_executable(), "debug", project, "--configuration"]
    return run_command(
        [*command, project / "configuration.json", *extra_args], project, env, timeout
    )


def operation_counts(output: str) -> dict:
    """The `Operation | Counts` table of a debug run, e.g. {"Upserts": 600, ...}; where the
    output holds several tables, the last one's counts win."""
    return {name.strip(): int(count) for name, count in OPERATION_ROW.findall(output)}
