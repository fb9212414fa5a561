"""A throwaway PostgreSQL 15 server for the dbt tests, and loading a synced warehouse into it.

Debian's postgresql package (.ci/run installs it) puts the server in POSTGRES_BIN. The server
refuses to run as root, which the tests and CI are, so as root it runs as `nobody` from a
data folder that user owns; it listens on a free loopback port only, trusts local
connections (nothing but this test can reach it) and is stopped, with everything it
started, when the block ends. The tables are copied from DuckDB through CSV and psql's
\\copy, typed as a Fivetran Postgres destination types them.
"""

import contextlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from devkit import processes

POSTGRES_BIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "postgres"
DATABASE = "hed"
LOOPBACK = "127.0.0.1"
UNPRIVILEGED_USER = "nobody"
# initdb and a first start take a few seconds on 2 cores; these only stop a hung one.
INITDB_TIMEOUT_S = 120
START_TIMEOUT_S = 60
PSQL_TIMEOUT_S = 120
READY_POLL_S = 0.2
# DuckDB type -> the Postgres type a Fivetran Postgres destination gives the column.
POSTGRES_TYPES = {
    "VARCHAR": "text",
    "JSON": "jsonb",
    "BOOLEAN": "boolean",
    "DOUBLE": "double precision",
    "BIGINT": "bigint",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "DECIMAL(18,2)": "numeric(18,2)",
}


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    database: str


def require_postgres() -> None:
    """Skip without the binaries, except where they must be there (CI, HED_REQUIRE_POSTGRES)."""
    if (POSTGRES_BIN / "postgres").exists():
        return
    message = f"PostgreSQL 15 is not installed in {POSTGRES_BIN}: apt-get install -y postgresql"
    if os.environ.get("HED_REQUIRE_POSTGRES") or os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        return probe.getsockname()[1]


def as_server_user(command: list) -> list:
    """`command` as the unprivileged user when we are root (postgres refuses root)."""
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", UNPRIVILEGED_USER, "--", *command]


def run_checked(command: list, timeout: float, cwd: Path) -> str:
    result = processes.run_command(command, cwd, dict(os.environ), timeout)
    assert result.returncode == 0, f"{command[0]} failed:\n{result.stdout[-3000:]}"
    return result.stdout


def psql(server: Server, *args: str, cwd: Path | None = None) -> str:
    """psql as the superuser over TCP (the client may run as root); stops on the first error."""
    command = [
        POSTGRES_BIN / "psql",
        "-X",
        "-v",
        "ON_ERROR_STOP=1",
        "-h",
        server.host,
        "-p",
        str(server.port),
        "-U",
        server.user,
        "-d",
        server.database,
        *args,
    ]
    return run_checked(command, PSQL_TIMEOUT_S, cwd or Path.cwd())


def wait_until_ready(server: Server, process, log: Path) -> None:
    check = [POSTGRES_BIN / "pg_isready", "-h", server.host, "-p", str(server.port), "-q"]
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"postgres exited {process.returncode}:\n{log.read_text()}")
        status = processes.run_command(check, log.parent, dict(os.environ), START_TIMEOUT_S)
        if status.returncode == 0:
            return
        time.sleep(READY_POLL_S)
    raise AssertionError(f"postgres did not become ready:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def running_server() -> Iterator[Server]:
    """A fresh cluster with an empty database `hed`, stopped and deleted at the end."""
    require_postgres()
    # Under /tmp itself, not pytest's tmp_path: nobody cannot enter root's private folders.
    folder = Path(tempfile.mkdtemp(prefix="hed-postgres."))
    try:
        data = folder / "data"
        data.mkdir()
        if os.geteuid() == 0:
            shutil.chown(folder, UNPRIVILEGED_USER)
            shutil.chown(data, UNPRIVILEGED_USER)
        initdb = [POSTGRES_BIN / "initdb", "-D", data, "-U", SUPERUSER, "--auth=trust"]
        initdb += ["--no-locale", "-E", "UTF8"]
        run_checked(as_server_user(initdb), INITDB_TIMEOUT_S, folder)
        server = Server(LOOPBACK, free_port(), SUPERUSER, DATABASE)
        start = [POSTGRES_BIN / "postgres", "-D", data, "-p", str(server.port)]
        settings = ["-c", f"listen_addresses={LOOPBACK}", "-c", f"unix_socket_directories={data}"]
        settings += ["-c", "fsync=off"]  # a throwaway cluster: durability buys nothing here
        log = folder / "postgres.log"
        with (
            log.open("wb") as output,
            processes.supervised(
                as_server_user([*start, *settings]),
                folder,
                dict(os.environ),
                stdout=output,
                own_session=True,
            ) as process,
        ):
            wait_until_ready(server, process, log)
            psql(
                Server(server.host, server.port, SUPERUSER, "postgres"),
                "-c",
                f"CREATE DATABASE {DATABASE}",
            )
            yield server
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def load_warehouse(server: Server, warehouse: Path, schema: str, workdir: Path) -> None:
    """Copy every table of `schema` in the DuckDB file into Postgres, typed as Fivetran types
    them there (timestamps stay timestamps, money stays exact, JSON is jsonb)."""
    workdir.mkdir(parents=True, exist_ok=True)
    statements = [f"CREATE SCHEMA {schema};"]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ?",
            [schema],
        ).fetchall()
        for (table,) in tables:
            columns = con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = ? AND table_name = ? ORDER BY ordinal_position",
                [schema, table],
            ).fetchall()
            csv = workdir / f"{table}.csv"
            con.execute(f"COPY {schema}.{table} TO '{csv}' (FORMAT CSV, HEADER)")
            definitions = ", ".join(f'"{name}" {POSTGRES_TYPES[kind]}' for name, kind in columns)
            statements.append(f"CREATE TABLE {schema}.{table} ({definitions});")
            statements.append(f"\\copy {schema}.{table} FROM '{csv}' WITH (FORMAT csv, HEADER)")
    script = workdir / "load.sql"
    script.write_text("\n".join(statements) + "\n")
    psql(server, "-f", str(script), cwd=workdir)


def query(server: Server, sql: str) -> list:
    """Rows of `sql` as tuples of text (psql's unaligned output), NULL as None."""
    output = psql(server, "-A", "-t", "-F", "\t", "-P", "null=\\N", "-c", sql)
    return [
        tuple(None if cell == "\\N" else cell for cell in line.split("\t"))
        for line in output.splitlines()
        if line
    ]
