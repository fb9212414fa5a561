"""Upgrading from the lab connector, end to end through the real `fivetran debug`.

The lab connector (bench/lab_connector) saves `{"next_cursor": ...}` and writes untyped
columns. Ours, run over the same files/, must continue from that cursor, say once how to
re-sync so the columns get their types, and mark the state it saves as its own.
"""

import json
from pathlib import Path

import pytest

from devkit.sdk_cli import REPO_ROOT, make_project, offline_env, operation_counts, run_debug
from hed_simulator import DEMO_API_KEY, HedSimulator

LAB_CONNECTOR = REPO_ROOT / "bench" / "lab_connector" / "connector.py"
OUR_CONNECTOR = REPO_ROOT / "connector.py"
RECORDS = 200  # enough for several lab checkpoints; small so both runs take seconds
NEW, UPDATED = 10, 5  # changes made between the lab's sync and ours
CLI_TIMEOUT_S = 300  # a run takes seconds; this only stops a hung one
WARNING_MARK = "has a cursor but no state_version"


def read_state(project: Path) -> dict:
    return json.loads((project / "files" / "state.json").read_text())


@pytest.fixture(scope="module")
def upgrade(tmp_path_factory):
    """The lab connector syncs a project; then ours syncs the same project's files/."""
    workdir = tmp_path_factory.mktemp("upgrade")
    with HedSimulator(records=RECORDS, seed=17) as sim:
        configuration = {"api_key": DEMO_API_KEY, "base_url": sim.url, "page_size": "50"}
        project = make_project(workdir / "project", configuration, LAB_CONNECTOR)
        env = offline_env(workdir)
        lab = run_debug(project, env, CLI_TIMEOUT_S)
        lab_state = read_state(project)
        changes = sim.add_changes(new=NEW, updated=UPDATED)
        make_project(project, configuration, OUR_CONNECTOR)  # files/ stays as the lab left it
        ours = run_debug(project, env, CLI_TIMEOUT_S)
        yield {
            "lab": lab,
            "lab_state": lab_state,
            "ours": ours,
            "changes": changes,
            "project": project,
        }


def test_the_lab_connector_leaves_a_cursor_without_a_state_version(upgrade):
    assert upgrade["lab"].returncode == 0, upgrade["lab"].stdout[-3000:]
    assert list(upgrade["lab_state"]) == ["next_cursor"]


def test_our_sync_over_the_lab_files_warns_once_and_succeeds(upgrade):
    output = upgrade["ours"].stdout
    assert upgrade["ours"].returncode == 0, output[-3000:]
    assert "SYNC SUCCEEDED" in output
    assert output.count(WARNING_MARK) == 1
    warning = next(line for line in output.splitlines() if WARNING_MARK in line)
    assert "Re-sync all historical data" in warning
    assert "./debug_and_reset.sh --local --yes or fivetran reset" in warning


def test_our_sync_continues_from_the_lab_cursor(upgrade):
    assert operation_counts(upgrade["ours"].stdout)["Upserts"] == NEW + UPDATED


def test_our_sync_saves_a_state_marked_as_ours(upgrade):
    state = read_state(upgrade["project"])
    assert state["state_version"] == 2
    assert state["next_cursor"] != upgrade["lab_state"]["next_cursor"]


def test_the_warning_never_shows_the_key_or_the_cursor(upgrade):
    warning = next(line for line in upgrade["ours"].stdout.splitlines() if WARNING_MARK in line)
    assert DEMO_API_KEY not in warning
    assert upgrade["lab_state"]["next_cursor"] not in warning
