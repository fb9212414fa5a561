"""The benchmark's smoke run works end to end and writes a complete results file, and it
never replaces the committed results of the last full run.

It asserts nothing about speed: CI machines are noisy and shared, so timings there mean
little. The full run (`python bench/benchmark.py`) is where the numbers come from.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench import benchmark

REPO_ROOT = Path(__file__).resolve().parents[1]
BENCHMARK = REPO_ROOT / "bench" / "benchmark.py"
# The quick run takes about a minute; ten leaves room for a loaded machine.
QUICK_TIMEOUT_S = 600
EXPECTED_CASES = (
    "floor",
    "ours",
    "incremental_no_change",
    "lab",
    "ours_latency",
    "lab_latency",
    "ours_ckpt_1000",
    "ours_ckpt_10000",
)
EXPECTED_RATIOS = (
    "ours_vs_floor_sync",
    "lab_vs_ours_latency_sync",
    "rss_ours_large_vs_small",
    "incremental_requests",
    "ours_code_cpu_vs_floor_cpu",
)


COMMITTED_RESULTS = REPO_ROOT / "bench" / "results.json"
QUICK_RESULTS = REPO_ROOT / "bench" / "results-quick.json"


def test_a_quick_run_writes_its_own_file_not_the_committed_results():
    assert benchmark.parse_args(["--quick"]).output == QUICK_RESULTS


def test_a_full_run_writes_the_committed_results():
    assert benchmark.parse_args([]).output == COMMITTED_RESULTS


def test_an_explicit_output_wins(tmp_path):
    assert benchmark.parse_args(["--quick", "--output", str(tmp_path / "q.json")]).output == (
        tmp_path / "q.json"
    )


def test_a_quick_run_refuses_to_overwrite_the_committed_results(capsys):
    with pytest.raises(SystemExit) as caught:
        benchmark.parse_args(["--quick", "--output", str(COMMITTED_RESULTS)])
    assert caught.value.code == 2
    assert "must not overwrite the full results" in capsys.readouterr().err


def test_the_quick_results_file_is_gitignored():
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(QUICK_RESULTS)], cwd=REPO_ROOT, check=False
    )
    assert ignored.returncode == 0


def test_help_says_where_a_quick_run_writes():
    completed = subprocess.run(
        [sys.executable, str(BENCHMARK), "--help"], capture_output=True, text=True, check=True
    )
    assert "bench/results-quick.json (gitignored)" in " ".join(completed.stdout.split())


def summary_of(sync_s: dict) -> dict:
    """A benchmark summary where each case ran once with the given sync seconds."""
    summary = {}
    for name, seconds in sync_s.items():
        run = {"sync_s": seconds, "wall_s": seconds + 1, "peak_rss_mib": 100 * seconds}
        run.update(cpu_s=seconds, requests=1)
        summary[name] = {"runs": [run], "median": benchmark.medians([run])}
    return summary


def quick_plan() -> benchmark.Plan:
    return benchmark.make_plan(benchmark.parse_args(["--quick"]))


def every_case(seconds: float = 1.0) -> dict:
    small, large = quick_plan().rss_records
    names = [
        *EXPECTED_CASES,
        *(f"rss_{who}_{n}" for who in ("ours", "floor") for n in (small, large)),
    ]
    return dict.fromkeys(names, seconds)


def test_every_ratio_and_target_comes_from_the_cases_a_run_measures():
    """The quick run's fast twin: the ratios and targets the results file holds."""
    ratios = benchmark.compute_ratios(summary_of(every_case()), quick_plan(), code_cpu_s=0.5)
    assert set(EXPECTED_RATIOS) <= set(ratios)
    assert ratios["ours_code_cpu_vs_floor_cpu"] == 0.5
    targets = benchmark.evaluate_targets(ratios)
    assert {target["key"] for target in targets} <= set(ratios)
    assert all(target["value"] is not None for target in targets)


def test_a_connector_slower_than_the_floor_misses_its_target():
    cases = {**every_case(), "ours": 1.5, "floor": 1.0}
    ratios = benchmark.compute_ratios(summary_of(cases), quick_plan(), code_cpu_s=0.5)
    assert ratios["ours_vs_floor_sync"] == 1.5
    met = {t["key"]: t["met"] for t in benchmark.evaluate_targets(ratios)}
    assert met["ours_vs_floor_sync"] is False
    assert met["incremental_requests"] is True


@pytest.mark.slow
def test_quick_benchmark_writes_every_case_and_ratio(tmp_path):
    output = tmp_path / "results.json"
    completed = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick", "--output", str(output)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=QUICK_TIMEOUT_S,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    results = json.loads(output.read_text())
    cases = results["cases"]
    assert set(EXPECTED_CASES) <= set(cases)
    assert any(name.startswith("rss_ours_") for name in cases)
    for name, case in cases.items():
        assert case["runs"], name
        assert case["median"]["wall_s"] > 0, name
        assert case["median"]["sync_s"] > 0, name
        assert case["median"]["peak_rss_mib"] > 0, name
    for key in EXPECTED_RATIOS:
        assert key in results["ratios"]
    assert {target["key"] for target in results["targets"]} <= set(results["ratios"])
    assert results["machine"]["cores"] >= 1
    assert "load_at_start" in results and "load_at_end" in results
