"""https: a generated CA that clients trust through REQUESTS_CA_BUNDLE, the certificate error
everyone else gets, and transient handshake resets. Real TLS on loopback."""

from __future__ import annotations

import contextlib
import selectors
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from hed_simulator import DEMO_API_KEY, HedSimulator

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 10
# Environment variables through which requests (and curl-style tools) pick a CA bundle.
CA_BUNDLE_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
OUTAGE_SECONDS = 0.5
POLL_SECONDS = 0.1
# How late recovery may be noticed on a busy two-core machine, on top of the outage itself.
RECOVERY_SLACK_SECONDS = 2


@pytest.fixture
def tls_simulator() -> Iterator[HedSimulator]:
    with HedSimulator(records=50, tls=True) as sim:
        yield sim


@pytest.fixture
def trusting(tls_simulator: HedSimulator, monkeypatch: pytest.MonkeyPatch) -> HedSimulator:
    """The simulator, with this process trusting its CA the way the connector would."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", tls_simulator.ca_file)
    return tls_simulator


@pytest.fixture
def untrusting(tls_simulator: HedSimulator, monkeypatch: pytest.MonkeyPatch) -> HedSimulator:
    """The simulator, with this process trusting only requests' default CA bundle."""
    for name in CA_BUNDLE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return tls_simulator


def get_page(url: str) -> requests.Response:
    """A fresh connection (so a fresh handshake) per call."""
    return requests.get(
        f"{url}/hed_data",
        params={"page_size": 5},
        headers={"x-api-key": DEMO_API_KEY},
        timeout=TIMEOUT,
    )


def causes(error: BaseException) -> list[BaseException]:
    """The error and everything it wraps: __cause__, __context__, urllib3's reason, args."""
    found: list[BaseException] = []
    pending: list[Any] = [error]
    while pending:
        current = pending.pop()
        if not isinstance(current, BaseException) or any(current is seen for seen in found):
            continue
        found.append(current)
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        pending += list(current.args)
    return found


def test_tls_simulator_serves_https_to_a_client_trusting_its_ca(trusting: HedSimulator) -> None:
    response = get_page(trusting.url)
    assert trusting.url.startswith("https://127.0.0.1:")
    assert response.status_code == 200
    assert len(response.json()["hed_records"]) == 5


def test_certificate_is_valid_for_localhost_too(trusting: HedSimulator) -> None:
    url = trusting.url.replace("127.0.0.1", "localhost")
    assert get_page(url).status_code == 200


def test_ca_file_is_a_pem_ca_certificate(tls_simulator: HedSimulator) -> None:
    text = Path(tls_simulator.ca_file).read_text()
    context = ssl.create_default_context(cafile=tls_simulator.ca_file)
    assert text.startswith("-----BEGIN CERTIFICATE-----")
    assert "PRIVATE KEY" not in text
    assert context.cert_store_stats()["x509_ca"] == 1


def test_client_without_the_ca_gets_a_certificate_verification_error(
    untrusting: HedSimulator,
) -> None:
    with pytest.raises(requests.exceptions.SSLError) as caught:
        get_page(untrusting.url)
    assert any(isinstance(cause, ssl.SSLCertVerificationError) for cause in causes(caught.value))


def test_tls_reset_rate_one_fails_every_handshake_with_a_transient_ssl_error(
    trusting: HedSimulator,
) -> None:
    trusting.set_faults(tls_reset_rate=1.0)
    for _ in range(3):
        with pytest.raises(requests.exceptions.SSLError) as caught:
            get_page(trusting.url)
        found = causes(caught.value)
        assert any(isinstance(cause, ssl.SSLError) for cause in found)
        assert not any(isinstance(cause, ssl.SSLCertVerificationError) for cause in found)


def test_tls_reset_rate_drops_only_a_share_of_new_connections(trusting: HedSimulator) -> None:
    trusting.set_faults(tls_reset_rate=0.5, fault_seed=4)
    outcomes = []
    for _ in range(20):
        try:
            outcomes.append(get_page(trusting.url).status_code)
        except requests.exceptions.SSLError:
            outcomes.append("reset")
    assert set(outcomes) == {200, "reset"}


def test_tls_reset_rate_spares_an_open_keep_alive_connection(trusting: HedSimulator) -> None:
    with requests.Session() as session:
        session.headers["x-api-key"] = DEMO_API_KEY
        first = session.get(f"{trusting.url}/hed_data", timeout=TIMEOUT)
        trusting.set_faults(tls_reset_rate=1.0)
        second = session.get(f"{trusting.url}/hed_data", timeout=TIMEOUT)
    assert (first.status_code, second.status_code) == (200, 200)


def test_tls_reset_rate_needs_a_tls_simulator(simulator: HedSimulator) -> None:
    with pytest.raises(ValueError, match="tls"):
        simulator.set_faults(tls_reset_rate=0.5)


def test_failed_handshakes_do_not_stop_the_server(
    untrusting: HedSimulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain_http = untrusting.url.replace("https://", "http://")
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(f"{plain_http}/hed_data", timeout=TIMEOUT)
    with pytest.raises(requests.exceptions.SSLError):
        get_page(untrusting.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", untrusting.ca_file)
    assert get_page(untrusting.url).status_code == 200


def test_stop_removes_the_generated_key_and_certificates() -> None:
    sim = HedSimulator(records=1, tls=True)
    sim.start()
    folder = Path(sim.ca_file).parent
    assert any(path.name.endswith("key.pem") for path in folder.iterdir())
    sim.stop()
    assert not folder.exists()


def test_refuse_outage_listens_again_with_tls(trusting: HedSimulator) -> None:
    trusting.schedule_outage(after_requests=0, seconds=OUTAGE_SECONDS, mode="refuse")
    time.sleep(POLL_SECONDS)  # the listener closes in the background
    with pytest.raises(requests.exceptions.ConnectionError):
        get_page(trusting.url)
    deadline = time.monotonic() + OUTAGE_SECONDS + RECOVERY_SLACK_SECONDS
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.exceptions.ConnectionError):
            assert get_page(trusting.url).status_code == 200
            return
        time.sleep(POLL_SECONDS)
    raise AssertionError("did not come back over https")


def test_cli_tls_writes_the_ca_file_and_serves_https(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca_file = tmp_path / "ca.pem"
    process = subprocess.Popen(
        [sys.executable, "-m", "hed_simulator", "--records", "5", "--tls", "--ca-file", ca_file],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(TIMEOUT), "simulator printed nothing"
        url = process.stdout.readline().strip()
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca_file))
        status = get_page(url).status_code
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=TIMEOUT)
    assert url.startswith("https://127.0.0.1:")
    assert status == 200
    assert (process.returncode, stderr) == (0, "")
