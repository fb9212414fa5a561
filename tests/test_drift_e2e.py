"""Source drift end to end: every served record lands, through the real `fivetran debug`.

For each drift mode of the simulator, a full sync of 600 records must exit 0 and land what
the simulator says it served (`HedSimulator.expected()`): typed values exact where they
convert, NULL plus the raw value in `_hed_invalid_values` where they do not, and items that
cannot be keyed whole in `hed_rejected_records`. Then the API is "fixed" (drift cleared)
and synced again: nothing arrives, because nothing had been skipped.
"""

import json

import pytest
from warehouse import query, typed, warehouse_rows

from devkit.sdk_cli import make_project, offline_env, operation_counts, run_debug
from hed_simulator import DEMO_API_KEY, HedSimulator

RECORDS = 600
# Modes served for every record; `unkeyed` at every record would leave hed_records empty,
# so it drifts a share of them.
MODE_RATES = {
    "iso-timestamps": 1.0,
    "string-numbers": 1.0,
    "string-booleans": 1.0,
    "invalid-values": 1.0,
    "no-charset": 1.0,
    "new-fields": 1.0,
    "unkeyed": 0.2,
}
NEW_FIELDS = ("retention_score", "library_visits", "campus")


@pytest.fixture(scope="module")
def sync_drifted(tmp_path_factory):
    """sync_drifted(mode): one drifted full sync, then the API fixed and an incremental
    sync; each mode runs once per module, whichever tests ask for it."""
    done = {}

    def run(mode):
        if mode not in done:
            done[mode] = run_mode(mode, tmp_path_factory.mktemp(mode))
        return done[mode]

    return run


def run_mode(mode, workdir):
    with HedSimulator(records=RECORDS, seed=31) as sim:
        sim.set_drift((mode,), rate=MODE_RATES[mode], seed=4)
        expected = sim.expected()
        project = make_project(workdir / "project", {"api_key": DEMO_API_KEY, "base_url": sim.url})
        env = offline_env(workdir)
        first = run_debug(project, env)
        landed = warehouse_rows(project)
        sim.clear_drift()
        fixed = run_debug(project, env)
    return {
        "mode": mode,
        "expected": expected,
        "project": project,
        "first": first,
        "landed": landed,
        "fixed": fixed,
    }


@pytest.fixture(params=sorted(MODE_RATES))
def drifted(request, sync_drifted):
    return sync_drifted(request.param)


def test_the_drifted_sync_succeeds(drifted):
    assert drifted["first"].returncode == 0, drifted["first"].stdout[-3000:]


def test_every_keyed_record_lands_with_exact_typed_values(drifted):
    expected = {record_id: typed(row) for record_id, row in drifted["expected"].rows.items()}
    assert drifted["landed"] == expected
    assert len(expected) + len(drifted["expected"].rejected) == RECORDS


def test_values_that_do_not_convert_are_kept_raw_in_the_same_row(drifted):
    rows = query(
        drifted["project"],
        "SELECT record_id, _hed_invalid_values FROM tester.hed_records "
        "WHERE _hed_invalid_values IS NOT NULL",
    )
    assert {record_id: json.loads(raw) for record_id, raw in rows} == drifted["expected"].invalid


def test_items_that_cannot_be_keyed_are_kept_whole(drifted):
    rows = query(drifted["project"], "SELECT raw_record FROM tester.hed_rejected_records")
    landed = sorted(
        json.dumps(json.loads(raw) if raw else None, sort_keys=True) for (raw,) in rows
    )
    served = sorted(json.dumps(item, sort_keys=True) for item in drifted["expected"].rejected)
    assert landed == served


def test_new_fields_land_at_full_precision(sync_drifted):
    drifted = sync_drifted("new-fields")
    columns = ", ".join(NEW_FIELDS)
    rows = query(drifted["project"], f"SELECT record_id, {columns} FROM tester.hed_records")
    landed = {record_id: dict(zip(NEW_FIELDS, values, strict=True)) for record_id, *values in rows}
    expected = {
        record_id: {name: row[name] for name in NEW_FIELDS}
        for record_id, row in drifted["expected"].rows.items()
    }
    assert landed == expected
    types = query(
        drifted["project"],
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = 'hed_records' AND column_name = 'retention_score'",
    )
    assert types == [("retention_score", "DOUBLE")]


def test_the_warning_gives_counts_never_values(drifted):
    output = drifted["first"].stdout
    expected = drifted["expected"]
    if expected.invalid or expected.rejected:
        assert "Data quality:" in output
    raw_texts = {
        value
        for values in expected.invalid.values()
        for value in values.values()
        if isinstance(value, str)
    }
    assert [text for text in raw_texts if text in output] == []
    assert [record_id for record_id in expected.rows if record_id in output] == []


def test_after_the_api_is_fixed_nothing_is_resent_and_every_record_was_already_there(drifted):
    """A change-log API never sends a record again: what the drifted sync left out would
    be missing for good. The incremental sync after the fix brings nothing, and the
    warehouse still holds every record the drifted API served."""
    fixed = drifted["fixed"]
    assert fixed.returncode == 0, fixed.stdout[-3000:]
    assert operation_counts(fixed.stdout)["Upserts"] == 0
    expected = {record_id: typed(row) for record_id, row in drifted["expected"].rows.items()}
    assert warehouse_rows(drifted["project"]) == expected
