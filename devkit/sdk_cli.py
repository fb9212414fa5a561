"""Run the Fivetran SDK CLI from tests and benchmarks: offline, fast and isolated.

Our machines and CI reach no internet but the package registries, and two SDK steps
then stall every command (measured in ../shared/notes/sdk-3.0-facts.md): the version
check (~7 s, skipped when a fresh timestamp file exists under $HOME) and pipreqs
looking `requests` up online (~13.5 s of retries, avoided by `pipreqs --use-local`).
Each run here gets its own HOME holding that timestamp, and a `pipreqs` shim first on
PATH that adds `--use-local`. Nothing here changes what a user's own run does.
"""

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Files a connector project needs to run under `fivetran debug`.
PROJECT_FILES = ("connector.py", "requirements.txt")
# Where the SDK looks for the time of its last PyPI version check.
VERSION_CHECK_FILE = Path(".fivetran") / "connector_sdk" / "_last_version_check"
# `fivetran debug` prints its operation summary as "Upserts | 600" rows.
OPERATION_ROW = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*\|\s*(\d+)\s*$", re.MULTILINE)


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


def offline_env(workdir: Path, extra: dict | None = None) -> dict:
    """Environment for one CLI run: own HOME, no telemetry, no online lookups.

    Args:
        workdir: a scratch folder owned by the caller (HOME and the shim go there).
        extra: variables to add or override.
    """
    home = workdir / "home"
    stamp = home / VERSION_CHECK_FILE
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(str(int(time.time())))
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
