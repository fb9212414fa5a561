"""The dbt project in transform/: its own venv, its profiles, and running dbt in it.

dbt-core and its adapters pin many packages (protobuf, agate, snowflake-connector-python...)
that have nothing to do with the connector, so they live in transform/.venv, never in the
repository's .venv where the SDK's pins rule. Like devkit/venv.sh, the venv is created on
first use and reinstalled only when transform/requirements.txt changed (a hash stamp is kept
inside it). Stdlib only: build_models.sh runs this before any venv with dbt exists.

Imported by devkit/build_models.py and by the tests, which build over warehouses of their
own, on Postgres, and compile for Snowflake with the same helpers.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

from devkit import REPO_ROOT
from devkit.processes import run_command

PROJECT_DIR = REPO_ROOT / "transform"
VENV_DIR = PROJECT_DIR / ".venv"
REQUIREMENTS = PROJECT_DIR / "requirements.txt"
STAMP_NAME = ".stamp-transform-requirements.txt.sha256"
# Beside the venv, not in it (clear=True would delete it): two builds or two test workers
# starting at once install one at a time, and the second finds the venv current.
LOCK_NAME = ".venv.lock"
PROFILE_NAME = "hed"  # dbt_project.yml's `profile:`
# The schema dbt builds the models into on DuckDB: the file's default one, beside tester.
LOCAL_TARGET_SCHEMA = "main"
# pip installing dbt and three adapters from scratch takes about two minutes on 2 cores;
# this only stops one that hangs.
INSTALL_TIMEOUT_S = 1200
# dbt's own lookups that need the internet, and its colours in captured output: off.
DBT_ENV = {
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    "DBT_VERSION_CHECK": "false",
    "DBT_USE_COLORS": "false",
    "DBT_PRINTER_WIDTH": "100",
}


class SetupError(Exception):
    """transform/.venv could not be made; the message says what failed."""


def venv_python(venv_dir: Path = VENV_DIR) -> Path:
    return venv_dir / "bin" / "python"


def dbt_executable(venv_dir: Path = VENV_DIR) -> Path:
    return venv_dir / "bin" / "dbt"


def requirements_sha256(requirements: Path = REQUIREMENTS) -> str:
    """The hash the stamp holds: the file has no -r includes, so its bytes are enough."""
    return hashlib.sha256(requirements.read_bytes()).hexdigest()


def is_current(venv_dir: Path = VENV_DIR, requirements: Path = REQUIREMENTS) -> bool:
    """Whether the venv exists with exactly this requirements file installed."""
    stamp = venv_dir / STAMP_NAME
    return (
        dbt_executable(venv_dir).is_file()
        and stamp.is_file()
        and stamp.read_text().strip() == requirements_sha256(requirements)
    )


def ensure_venv(venv_dir: Path = VENV_DIR, requirements: Path = REQUIREMENTS) -> bool:
    """Create or update the dbt venv when needed; True when it installed something.

    Raises SetupError when venv or pip fails (pip's last lines are in the message).
    """
    if is_current(venv_dir, requirements):
        return False
    with locked(venv_dir.parent / LOCK_NAME):
        if is_current(venv_dir, requirements):  # another process installed it meanwhile
            return False
        return install_venv(venv_dir, requirements)


@contextlib.contextmanager
def locked(path: Path):
    """Hold an exclusive lock on `path` (created if needed) for the block's duration."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def install_venv(venv_dir: Path, requirements: Path) -> bool:
    """Create the venv if it is missing, then pip install `requirements` and stamp it."""
    if not venv_python(venv_dir).is_file():
        print(f"Creating {venv_dir} (once)", file=sys.stderr, flush=True)
        try:
            venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
        except (OSError, subprocess.CalledProcessError) as error:
            raise SetupError(
                f"Could not create {venv_dir} ({error}); on Debian/Ubuntu: "
                "apt-get install python3-venv"
            ) from None
    print(f"Installing {requirements.name} into {venv_dir}", file=sys.stderr, flush=True)
    install = [venv_python(venv_dir), "-m", "pip", "install", "--disable-pip-version-check"]
    try:
        result = run_command(
            [*install, "--quiet", "-r", requirements],
            REPO_ROOT,
            dict(os.environ),
            INSTALL_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        raise SetupError(
            f"Installing {requirements} into {venv_dir} took over {INSTALL_TIMEOUT_S} s and was "
            "stopped; check the network to the package index, then run it again."
        ) from None
    if result.returncode != 0:
        tail = "\n".join(result.stdout.strip().splitlines()[-15:])
        raise SetupError(f"Installing {requirements} into {venv_dir} failed:\n{tail}")
    (venv_dir / STAMP_NAME).write_text(requirements_sha256(requirements) + "\n")
    return True


def duckdb_profile(database: Path, schema: str = LOCAL_TARGET_SCHEMA) -> dict:
    """A profiles.yml target for a DuckDB file (one thread: DuckDB has one writer)."""
    return {"type": "duckdb", "path": str(database), "schema": schema, "threads": 1}


def postgres_profile(host: str, port: int, user: str, dbname: str, schema: str) -> dict:
    return {
        "type": "postgres",
        "host": host,
        "port": port,
        "user": user,
        "password": "",
        "dbname": dbname,
        "schema": schema,
        "threads": 1,
    }


def snowflake_profile(database: str, schema: str) -> dict:
    """A Snowflake target that is never connected to: for `dbt compile` and `dbt parse`."""
    return {
        "type": "snowflake",
        "account": "example-account",
        "user": "HED_TRANSFORM",
        "password": "not-a-password",
        "role": "TRANSFORMER",
        "warehouse": "TRANSFORMING",
        "database": database,
        "schema": schema,
        "threads": 1,
    }


def write_profiles(folder: Path, target: dict, target_name: str = "local") -> Path:
    """profiles.yml in `folder` with one target for the `hed` profile; returns the folder.

    JSON is YAML, so no YAML library is needed in the caller's venv.
    """
    folder.mkdir(parents=True, exist_ok=True)
    profiles = {PROFILE_NAME: {"target": target_name, "outputs": {target_name: target}}}
    (folder / "profiles.yml").write_text(json.dumps(profiles, indent=2) + "\n")
    return folder


def dbt_env(extra: dict | None = None) -> dict:
    """The environment dbt runs in: ours, without its online lookups and colours."""
    env = dict(os.environ)
    env.update(DBT_ENV)
    env.update(extra or {})
    return env


def dbt_command(command: str, profiles_dir: Path, *args, work_dir: Path | None = None) -> list:
    """A dbt command line over transform/ ("build", or "source freshness"); target/ and
    logs/ go to `work_dir` when given, so builds of different warehouses never share a
    partial-parse cache."""
    line = [dbt_executable(), *command.split(), "--project-dir", PROJECT_DIR]
    line += ["--profiles-dir", profiles_dir]
    if work_dir is not None:
        line += ["--target-path", work_dir / "target", "--log-path", work_dir / "logs"]
    return [*line, *args]


def run_dbt(
    command: str,
    profiles_dir: Path,
    *args,
    work_dir: Path | None = None,
    timeout: float = 600,
    env: dict | None = None,
) -> subprocess.CompletedProcess:
    """Run one dbt command to its end; output (stderr included) in `stdout`."""
    line = dbt_command(command, profiles_dir, *args, work_dir=work_dir)
    return run_command(line, PROJECT_DIR, dbt_env(env), timeout)


def read_run_results(target_path: Path) -> list:
    """The results of the last dbt command from target/run_results.json; empty if none."""
    path = target_path / "run_results.json"
    if not path.is_file():
        return []
    return json.loads(path.read_text())["results"]
