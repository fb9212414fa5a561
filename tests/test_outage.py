"""Outages in real time, through the real `fivetran debug`: what the retry budget promises.

- A 3-minute outage in the middle of a sync, answered with 503s or with refused
  connections, is ridden out: exit 0 and every record exact.
- An API unreachable from the first request fails in under 4 minutes, naming base_url and
  saying the connection failed: whether connections are refused at once (a wrong port) or
  never answered (a firewall that drops packets: every attempt waits out the connect
  timeout).
- An API that answers every page too slowly (a byte every 2 s, so no single read times out)
  fails in under 4 minutes too, saying the response was too slow: each attempt ends at its
  deadline.

The five syncs take minutes of wall time but little CPU, so they start together when the
module starts (threads) and each test waits for its own: the module costs about 4 minutes,
not 15. Run with `-s` to see the measured durations against the bounds that docs/design.md
(Retry policy) states.
"""

import threading
import time

import pytest
from ports import BlackholedPort, closed_port
from warehouse import expected_rows, warehouse_rows

from devkit.sdk_cli import make_project, offline_env, run_debug
from hed_simulator import DEMO_API_KEY, HedSimulator

OUTAGE_S = 180  # the outage the connector promises to ride out (a typical API deploy)
UNREACHABLE_LIMIT_S = 240  # the promise for an API that is never reachable
RECORDS = 1_000
PAGE_SIZE = "100"
OUTAGE_AFTER_REQUESTS = 4  # pages served before the API goes down: mid-sync
TRICKLE_SECONDS = 2  # between the bytes of a trickled page: every read succeeds, slowly
CLI_TIMEOUT_S = 600  # only stops a hung run; the slowest takes ~3.5 minutes

pytestmark = pytest.mark.slow


class Scenario(threading.Thread):
    """One sync run in the background; `result` and `elapsed_s` once joined."""

    def __init__(self, name, workdir, prepare):
        super().__init__(name=name, daemon=True)
        self.workdir = workdir
        self.prepare = prepare  # () -> (base_url, the simulator or port to close, or None)
        self.result = None
        self.elapsed_s = None
        self.simulator = None
        self.project = None
        self.error = None

    def run(self):
        try:
            base_url, self.simulator = self.prepare()
            configuration = {"api_key": DEMO_API_KEY, "base_url": base_url, "page_size": PAGE_SIZE}
            self.project = make_project(self.workdir / "project", configuration)
            started = time.monotonic()
            self.result = run_debug(self.project, offline_env(self.workdir), CLI_TIMEOUT_S)
            self.elapsed_s = time.monotonic() - started
        except Exception as error:  # reported by the test that waits for this scenario
            self.error = error

    def finished(self):
        self.join(CLI_TIMEOUT_S + 60)
        assert self.error is None, self.error
        assert self.result is not None, f"{self.name} did not finish"
        print(f"\n{self.name}: exit {self.result.returncode} after {self.elapsed_s:.0f} s")
        return self


def outage_simulator(mode):
    def prepare():
        simulator = HedSimulator(records=RECORDS, seed=21).__enter__()
        simulator.schedule_outage(
            after_requests=OUTAGE_AFTER_REQUESTS, seconds=OUTAGE_S, mode=mode
        )
        return simulator.url, simulator

    return prepare


def unreachable():
    return f"http://127.0.0.1:{closed_port()}", None


def trickling():
    simulator = HedSimulator(records=RECORDS, seed=21).__enter__()
    simulator.set_faults(trickle_rate=1.0, trickle_seconds=TRICKLE_SECONDS)
    return simulator.url, simulator


def blackholed():
    port = BlackholedPort()
    return f"http://127.0.0.1:{port.port}", port


@pytest.fixture(scope="module")
def scenarios(tmp_path_factory):
    started = {
        name: Scenario(name, tmp_path_factory.mktemp(name), prepare)
        for name, prepare in (
            ("outage-503", outage_simulator("503")),
            ("outage-refuse", outage_simulator("refuse")),
            ("unreachable", unreachable),
            ("blackholed", blackholed),
            ("trickling", trickling),
        )
    }
    for scenario in started.values():
        scenario.start()
    yield started
    for scenario in started.values():
        scenario.join(CLI_TIMEOUT_S)
        if isinstance(scenario.simulator, HedSimulator):
            scenario.simulator.stop()
        elif scenario.simulator is not None:
            scenario.simulator.close()


@pytest.mark.parametrize("mode", ["503", "refuse"])
def test_a_three_minute_outage_mid_sync_is_ridden_out_with_every_record_exact(scenarios, mode):
    scenario = scenarios[f"outage-{mode}"].finished()
    assert scenario.result.returncode == 0, scenario.result.stdout[-3000:]
    assert scenario.elapsed_s > OUTAGE_S  # the outage really happened inside the sync
    assert "retry" in scenario.result.stdout
    expected = expected_rows(scenario.simulator.records())
    assert warehouse_rows(scenario.project) == expected
    assert len(expected) == RECORDS


@pytest.mark.parametrize("kind", ["unreachable", "blackholed", "trickling"])
def test_an_api_unreachable_from_the_start_fails_in_under_four_minutes(scenarios, kind):
    scenario = scenarios[kind].finished()
    assert scenario.result.returncode != 0
    assert scenario.elapsed_s < UNREACHABLE_LIMIT_S
    assert "SYNC FAILED" in scenario.result.stdout


@pytest.mark.parametrize(
    ("kind", "what"),
    [
        ("unreachable", "the connection failed or was dropped"),
        ("blackholed", "the connection timed out"),
    ],
)
def test_an_unreachable_api_is_named_with_base_url_and_what_failed(scenarios, kind, what):
    output = scenarios[kind].finished().result.stdout
    assert "Could not get a page from the HED API at http://127.0.0.1:" in output
    assert what in output
    assert "Check base_url" in output


def test_an_api_too_slow_to_send_a_page_is_named_with_base_url(scenarios):
    scenario = scenarios["trickling"].finished()
    assert f"The HED API at {scenario.simulator.url} was too slow" in scenario.result.stdout
    assert "(headers and body) took longer than" in scenario.result.stdout
