"""Phase "checker": each detector must catch the defect it is named after, and only it.

A figure that cannot fail proves nothing. This phase syncs a real warehouse with the
connector (an initial sync, a round of updates, an incremental sync), checks that it is
clean, then plants one defect at a time into a copy and requires that exactly the right
figure counts it: a deleted row is lost, a row set back to its earlier version is stale, a
changed field and a row no source explains are wrong. With drift (raw values and unkeyed
items) a second warehouse gets a deleted rejected item (lost) and a changed raw value and
a wrong rejection reason (wrong). `--self-test` runs only this phase.
"""

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb

from bench.soak.checker import (
    API_TIMESTAMP,
    INVALID_COLUMN,
    KEY,
    RECORDS_TABLE,
    REJECTED_TABLE,
    SCHEMA,
    Expected,
    Verdict,
    check,
    column_kind,
    expected_of,
    warehouse_path,
)
from bench.soak.harness import Soak
from bench.soak.results import Phase

SELFTEST_RECORDS = 300  # three pages: small, but every path of a real sync
UPDATED_RECORDS = 20  # records given a second version, so a stale row can be planted
# Drift for the raw-value and rejected-item plants: some of each in 300 records.
DRIFT_MODES = ("invalid-values", "unkeyed")
DRIFT_RATE = 0.1
NUDGE = 0.01  # added to one GPA: a value no version of the record ever had
PLANTED_KEY = "soak-planted-row"  # a record_id no source serves
PLANTED_RAW = {"current_gpa": "planted by the soak self-test"}
FIGURES = ("lost", "stale", "wrong")
WAL_SUFFIX = ".wal"  # DuckDB's write-ahead log beside the database file


@dataclass(frozen=True)
class Source:
    """What the plants need to know about the source behind a warehouse."""

    latest: Expected
    history: tuple  # earlier snapshots, oldest first
    updated: tuple  # record_ids with an earlier version in history


# ---------------------------------------------------------------------------------------
# Planting defects (each returns False if this warehouse offers no place for it)


def table_name(table: str) -> str:
    return f"{SCHEMA}.{table}"


def delete_row(db, source: Source) -> bool:
    key = sorted(source.latest.rows)[0]
    db.execute(f"DELETE FROM {table_name(RECORDS_TABLE)} WHERE {KEY} = ?", [key])
    return True


def restore_earlier_version(db, source: Source) -> bool:
    """Write back, field by field, the version a record had before the update round."""
    if not source.updated:
        return False
    key = source.updated[0]
    earlier = source.history[-1]
    columns = existing_columns(db, RECORDS_TABLE)
    values = {c: to_db(c, v) for c, v in earlier.rows[key].items() if c in columns and c != KEY}
    if INVALID_COLUMN in columns:
        raw = earlier.invalid.get(key)
        values[INVALID_COLUMN] = json.dumps(raw) if raw else None
    assignments = ", ".join(f"{column} = ?" for column in values)
    db.execute(
        f"UPDATE {table_name(RECORDS_TABLE)} SET {assignments} WHERE {KEY} = ?",
        [*values.values(), key],
    )
    return True


def change_field(db, source: Source) -> bool:
    """Nudge one double of a record that was not updated: matches no version of it."""
    key = next(k for k in sorted(source.latest.rows) if source.latest.rows[k].get("current_gpa"))
    db.execute(
        f"UPDATE {table_name(RECORDS_TABLE)} SET current_gpa = current_gpa + ? WHERE {KEY} = ?",
        [NUDGE, key],
    )
    return True


def add_unexplained_row(db, source: Source) -> bool:
    key = sorted(source.latest.rows)[-1]
    db.execute(
        f"INSERT INTO {table_name(RECORDS_TABLE)} SELECT * REPLACE (? AS {KEY}) "
        f"FROM {table_name(RECORDS_TABLE)} WHERE {KEY} = ?",
        [PLANTED_KEY, key],
    )
    return True


def delete_rejected_item(db, source: Source) -> bool:
    if not source.latest.rejected or REJECTED_TABLE not in existing_tables(db):
        return False
    db.execute(
        f"DELETE FROM {table_name(REJECTED_TABLE)} WHERE rejection_id = "
        f"(SELECT min(rejection_id) FROM {table_name(REJECTED_TABLE)})"
    )
    return True


def change_raw_value(db, source: Source) -> bool:
    if not source.latest.invalid or INVALID_COLUMN not in existing_columns(db, RECORDS_TABLE):
        return False
    key = sorted(source.latest.invalid)[0]
    db.execute(
        f"UPDATE {table_name(RECORDS_TABLE)} SET {INVALID_COLUMN} = ? WHERE {KEY} = ?",
        [json.dumps(PLANTED_RAW), key],
    )
    return True


def change_rejection_reason(db, source: Source) -> bool:
    if not source.latest.rejected or REJECTED_TABLE not in existing_tables(db):
        return False
    db.execute(
        f"UPDATE {table_name(REJECTED_TABLE)} SET reason = 'planted reason' WHERE rejection_id "
        f"= (SELECT min(rejection_id) FROM {table_name(REJECTED_TABLE)})"
    )
    return True


# (name, plant, the one figure that must count it)
ROW_PLANTS = (
    ("deleted row", delete_row, "lost"),
    ("row set back to its earlier version", restore_earlier_version, "stale"),
    ("changed field", change_field, "wrong"),
    ("row no source explains", add_unexplained_row, "wrong"),
)
DRIFT_PLANTS = (
    ("deleted rejected item", delete_rejected_item, "lost"),
    ("changed raw value", change_raw_value, "wrong"),
    ("wrong rejection reason", change_rejection_reason, "wrong"),
)


def existing_tables(db) -> set:
    query = "SELECT table_name FROM information_schema.tables WHERE table_schema = ?"
    return {name for (name,) in db.execute(query, [SCHEMA]).fetchall()}


def existing_columns(db, table: str) -> set:
    query = "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND "
    query += "table_name = ?"
    return {name for (name,) in db.execute(query, [SCHEMA, table]).fetchall()}


def to_db(column: str, value):
    """A standard-form source value as its warehouse column takes it."""
    if value is None:
        return None
    kind = column_kind(column)
    if kind == "timestamp":
        return datetime.strptime(value, API_TIMESTAMP)
    if kind == "money":
        return Decimal(str(value))
    return value


def plant(database: Path, scratch: Path, name: str, planter: Callable, source: Source):
    """Check a copy of `database` with one defect planted; None if it has no place for it."""
    copy = scratch / f"{name.replace(' ', '-')}.db"
    shutil.copy(database, copy)
    journal = database.with_name(database.name + WAL_SUFFIX)
    if journal.exists():  # changes DuckDB has not folded into the file yet
        shutil.copy(journal, copy.with_name(copy.name + WAL_SUFFIX))
    with duckdb.connect(str(copy)) as db:
        planted = planter(db, source)
    if not planted:
        return None
    return check(copy, source.latest, source.history)


def expect_only(verdict: Verdict, figure: str) -> bool:
    """The planted defect counted once, by its own figure, and by no other."""
    counts = {name: getattr(verdict, name) for name in FIGURES}
    return counts == {name: int(name == figure) for name in FIGURES}


def plant_all(phase: Phase, database: Path, source: Source, plants: tuple) -> None:
    scratch = database.parent / "planted"
    scratch.mkdir(exist_ok=True)
    for name, planter, figure in plants:
        verdict = plant(database, scratch, name, planter, source)
        if verdict is None:
            phase.details.append(f"planted {name}: no place for it in this warehouse (skipped)")
            continue
        phase.cases += 1
        caught = expect_only(verdict, figure)
        phase.check(caught, f"planted {name}: expected {figure} 1 only, got {verdict.summary()}")
        counts = ", ".join(f"{name} {getattr(verdict, name)}" for name in FIGURES)
        verdict_word = "caught" if caught else "MISSED"
        phase.details.append(f"planted {name} -> {counts}: {verdict_word} by {figure}")


# ---------------------------------------------------------------------------------------
# The phase


def sync_with_updates(soak: Soak, phase: Phase) -> tuple[Path, Source]:
    with soak.simulator(SELFTEST_RECORDS) as sim:
        project = soak.project("checker updates", soak.configuration(sim))
        first = soak.debug(project)
        before = expected_of(sim)
        updated = sim.add_changes(updated=UPDATED_RECORDS)["updated"]
        second = soak.debug(project)
        latest = expected_of(sim)
        phase.requests += len(sim.requests)
    for run in (first, second):
        phase.check(run.ok, f"checker sync exited {run.returncode}")
    return project, Source(latest, (before,), tuple(sorted(updated)))


def sync_with_drift(soak: Soak, phase: Phase) -> tuple[Path, Source]:
    """A drifted source: some values raw, some items unkeyed."""
    with soak.simulator(SELFTEST_RECORDS) as sim:
        sim.set_drift(modes=DRIFT_MODES, rate=DRIFT_RATE, seed=soak.args.seed)
        project = soak.project("checker drift", soak.configuration(sim))
        run = soak.debug(project)
        latest = expected_of(sim)
        phase.requests += len(sim.requests)
    phase.check(run.ok, f"checker drift sync exited {run.returncode}")
    return project, Source(latest, (), ())


def check_clean(phase: Phase, project: Path, source: Source, label: str) -> None:
    verdict = check(project, source.latest, source.history)
    phase.add(verdict)
    phase.cases += 1
    phase.details.append(f"{label} as synced: {verdict.summary()}")


def run_checker_selftest(soak: Soak, phase: Phase) -> None:
    project, source = sync_with_updates(soak, phase)
    check_clean(phase, project, source, "warehouse after an update round")
    plant_all(phase, warehouse_path(project), source, ROW_PLANTS)
    project, source = sync_with_drift(soak, phase)
    check_clean(phase, project, source, "drifted warehouse")
    plant_all(phase, warehouse_path(project), source, DRIFT_PLANTS)
