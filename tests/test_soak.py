"""The quick soak (bench/soak.py --quick) passes: no row lost, duplicated or wrong, no leak.

Slow (~3-4 minutes: dozens of real `fivetran debug` runs); deselect with `-m "not slow"`.
It asserts on the printed table, not only the exit code, so a soak that stopped checking
something cannot pass silently.
"""

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SOAK = REPO_ROOT / "bench" / "soak.py"
TIMEOUT_S = 15 * 60  # the quick soak takes ~3-4 minutes; this is its hard ceiling
PHASES = ("fault soak", "crash+resume", "churn", "bad input", "secret scan")
ZERO_COLUMNS = ("lost", "duplicated", "wrong", "leaks")


def parse_table(output: str) -> dict:
    """{phase: {column: value}} from the soak's `a | b | c` table."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("phase "))
    header = [cell.strip() for cell in lines[start].split("|")]
    rows = {}
    for line in lines[start + 2 :]:
        if "|" not in line:
            break
        cells = [cell.strip() for cell in line.split("|")]
        rows[cells[0]] = dict(zip(header, cells, strict=True))
    return rows


@pytest.mark.slow
def test_quick_soak_loses_duplicates_corrupts_and_leaks_nothing(tmp_path):
    figures = tmp_path / "soak.json"
    result = subprocess.run(
        [sys.executable, str(SOAK), "--quick", "--json", str(figures)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-5000:]
    rows = parse_table(result.stdout)
    assert set(PHASES) | {"TOTAL"} == set(rows), result.stdout[-5000:]
    for name, row in rows.items():
        assert {column: row[column] for column in ZERO_COLUMNS} == dict.fromkeys(
            ZERO_COLUMNS, "0"
        ), name
        assert row["result"] == "PASS", name
        assert int(row["cases"]) > 0, name
    assert int(rows["fault soak"]["faults"]) > 0
    assert int(rows["crash+resume"]["faults"]) > 0
    assert figures.exists()
