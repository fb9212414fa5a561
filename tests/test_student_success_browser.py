"""StudentSuccess in a real browser: ./student_success.sh serves it, headless Chromium reads it.

What a person sees is checked, not the app's state: the KPI numbers as rendered text against
values this test computes with its own DuckDB query, the six chart titles each over a drawn
chart, the worklist rows and the data-quality figures. The browser is Debian's Chromium
(.ci/run installs it), driven by Playwright for Python, which never downloads a browser.
"""

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import duckdb
import pytest
from playwright.sync_api import Page, sync_playwright
from test_student_success import (
    CHART_TITLES,
    RECORDS,
    SEED,
    expected_kpis,
    latest_at_risk_students,
    sync_warehouse,
)
from test_transform import build_models

from hed_simulator import HedSimulator

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "student_success.sh"
CHROMIUM = "/usr/bin/chromium"
# Flags that keep Chromium quiet on a machine with no network but loopback.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1400, "height": 1900}
# The first run of the script may install the app's requirements into .venv.
SERVER_START_TIMEOUT_S = 300
SERVER_STOP_TIMEOUT_S = 20
PAGE_TIMEOUT_MS = 60_000  # the page renders in seconds; this only stops a hung one
WORKLIST_COLUMNS = 9


def require_chromium() -> None:
    """Debian's Chromium; CI installs it, so there its absence is a failure."""
    if Path(CHROMIUM).exists():
        return
    message = f"{CHROMIUM} is missing: apt-get install -y chromium"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(database: Path, log: Path) -> tuple:
    """./student_success.sh on a free port; returns (process, url) once it answers."""
    port = free_port()
    with log.open("w") as output:
        process = subprocess.Popen(
            [str(SCRIPT), "--port", str(port), "--db", str(database)],
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.read() == b"ok":
                    return process, url
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"the app did not start:\n{log.read_text()[-3000:]}")


def stop_server(process: subprocess.Popen) -> int:
    """SIGTERM, as a service manager would; the exit code the script ended with."""
    process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=SERVER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Path:
    """A default simulator sync, as ./debug_and_reset.sh --local --yes makes it."""
    require_chromium()
    workdir = tmp_path_factory.mktemp("student-success-browser")
    with HedSimulator(records=RECORDS, seed=SEED) as sim:
        return sync_warehouse(sim, workdir)


@pytest.fixture(scope="module")
def server(database, tmp_path_factory):
    process, url = start_server(database, tmp_path_factory.mktemp("server") / "server.log")
    yield {"url": url, "process": process}
    if process.poll() is None:
        stop_server(process)


@pytest.fixture(scope="module")
def built_database(database, dbt_venv, tmp_path_factory) -> Path:
    """A copy of the synced warehouse with the dbt models built by ./build_models.sh."""
    workdir = tmp_path_factory.mktemp("student-success-marts")
    built = workdir / "warehouse.db"
    shutil.copy(database, built)
    result = build_models(built, workdir)
    assert result.returncode == 0, result.stdout[-4000:]
    return built


@pytest.fixture(scope="module")
def browser():
    require_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser, server, tmp_path_factory) -> Page:
    """The page once every chart has drawn; a screenshot is kept beside the test's files."""
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(PAGE_TIMEOUT_MS)
    page.goto(server["url"])
    for title in CHART_TITLES:
        data_marks(page, title).first.wait_for()
    page.screenshot(path=tmp_path_factory.mktemp("screenshot") / "student-success.png")
    yield page
    page.close()


def data_marks(page: Page, title: str):
    """The drawn marks (bars, boxes, points, arcs, lines) of the chart titled `title`."""
    chart = page.locator(f'[data-testid="stVegaLiteChart"][aria-label="{title}"]')
    return chart.locator("g.role-mark:not(.mark-rule) > path")


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def visible_metrics(page: Page) -> dict:
    """Label -> (value, delta) of the tiles a person sees, as the text they read."""
    tiles = {}
    for tile in page.locator('[data-testid="stMetric"]:visible').all():
        label = tile.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        value = tile.locator('[data-testid="stMetricValue"]').inner_text().strip()
        delta = tile.locator('[data-testid="stMetricDelta"]')
        tiles[label] = (value, delta.inner_text().strip() if delta.count() else "")
    return tiles


def test_kpi_tiles_show_the_values_duckdb_computes(page, database):
    with duckdb.connect(str(database), read_only=True) as con:
        averages = con.execute(
            "SELECT avg(current_gpa), avg(course_completion_rate), avg(engagement_score), "
            "count(*) FILTER (WHERE at_risk_flag) / count(at_risk_flag) FROM tester.hed_records"
        ).fetchone()
    open_tab(page, "Metrics")
    expected = expected_kpis(*averages)
    shown = visible_metrics(page)
    assert {label: shown.get(label) for label in expected} == expected


def test_all_six_charts_are_drawn_under_their_titles(page):
    open_tab(page, "Metrics")
    for title in CHART_TITLES:
        assert page.get_by_role("heading", name=title, exact=True).is_visible(), title
        assert data_marks(page, title).count() > 0, title


def test_worklist_shows_the_at_risk_students_lowest_gpa_first(page, database):
    open_tab(page, "At-risk worklist")
    grid = page.locator('[data-testid="stDataFrame"]:visible')
    # The grid draws on a canvas and mirrors every drawn cell in an accessible table (what a
    # screen reader reads), which is where its text can be read.
    assert grid.locator("canvas").first.bounding_box()["height"] > 0
    grid.locator('[role="gridcell"]').first.wait_for(state="attached")
    rows = grid.evaluate(
        "grid => [...grid.querySelectorAll('[role=row]')]"
        ".map(row => [...row.querySelectorAll('[role=gridcell]')].map(cell => cell.textContent))"
        ".filter(cells => cells.length)"
    )
    expected = latest_at_risk_students(database)
    assert [cells[0] for cells in rows] == expected
    assert all(len(cells) == WORKLIST_COLUMNS for cells in rows)
    shown = f"{len(expected)} of {len(expected)} at-risk students shown."
    assert page.get_by_text(shown).is_visible()


def test_data_quality_panel_matches_the_warehouse(page, database):
    with duckdb.connect(str(database), read_only=True) as con:
        described = con.execute("DESCRIBE tester.hed_records").fetchall()
        columns = [row[0] for row in described if not row[0].startswith("_")]
        rows = con.execute(f"SELECT {', '.join(columns)} FROM tester.hed_records").fetchall()
        low, high = con.execute(
            "SELECT min(last_updated), max(last_updated) FROM tester.hed_records"
        ).fetchone()
        rejected = con.execute("SELECT count(*) FROM tester.hed_rejected_records").fetchone()
    open_tab(page, "Data quality")
    figures = visible_metrics(page)
    assert figures["Rows"][0] == f"{len(rows):,}"
    assert figures["Distinct students"][0] == f"{len({row[1] for row in rows}):,}"
    assert figures["Invalid values"][0] == "0"
    assert figures["Rejected records"][0] == f"{rejected[0]:,}"
    table = page.locator('[data-testid="stTable"]:visible').first.evaluate(
        "table => [...table.querySelectorAll('tbody tr')]"
        ".map(row => [...row.querySelectorAll('th, td')].map(cell => cell.innerText.trim()))"
    )
    nulls = {name: sum(row[i] is None for row in rows) for i, name in enumerate(columns)}
    assert {cells[0]: int(cells[2]) for cells in table} == nulls
    assert page.get_by_text(f"{low} to {high}").is_visible()


def test_missing_warehouse_is_explained_in_the_browser_and_sigterm_stops_the_app(
    browser, tmp_path
):
    require_chromium()
    process, url = start_server(tmp_path / "files" / "warehouse.db", tmp_path / "server.log")
    try:
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.goto(url)
        message = page.get_by_text("There is no warehouse at")
        message.wait_for()
        assert "./debug_and_reset.sh --local --yes" in message.inner_text()
        page.close()
    finally:
        status = stop_server(process)
    assert status == 0


def test_without_the_marts_the_page_says_to_run_build_models(page):
    open_tab(page, "Metrics")
    note = page.get_by_text("the dbt models (main.hed__kpis, main.hed__at_risk_worklist) are not")
    assert note.is_visible()
    assert "Run ./build_models.sh to build them" in note.inner_text()


def test_kpi_tiles_show_the_values_of_the_dbt_kpi_mart(browser, built_database, tmp_path):
    with duckdb.connect(str(built_database), read_only=True) as con:
        figures = con.execute(
            "SELECT avg_gpa, avg_completion_rate, avg_engagement_score, at_risk_share "
            "FROM main.hed__kpis"
        ).fetchone()
    process, url = start_server(built_database, tmp_path / "server.log")
    try:
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(PAGE_TIMEOUT_MS)
        page.goto(url)
        for title in CHART_TITLES:
            data_marks(page, title).first.wait_for()  # the whole page has drawn
        source = page.get_by_text("KPI tiles and the at-risk worklist: from the dbt models")
        expected = expected_kpis(*(float(value) for value in figures))
        shown = visible_metrics(page)
        assert {label: shown.get(label) for label in expected} == expected
        assert "main.hed__kpis and main.hed__at_risk_worklist" in source.inner_text()
        page.close()
    finally:
        assert stop_server(process) == 0
