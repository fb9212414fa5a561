"""Shared fixtures. Puts the repo root on sys.path so tests can import hed_simulator and
connector (pytest's rootdir-style import only adds tests/ itself)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))
# Keep the Fivetran SDK from phoning home during tests.
os.environ.setdefault("DO_NOT_TRACK", "1")

from hed_simulator import HedSimulator  # noqa: E402 - needs the sys.path entry above


@pytest.fixture
def simulator() -> Iterator[HedSimulator]:
    """A started simulator with the default 600 records, seed 42, demo key."""
    with HedSimulator(records=600, seed=42) as sim:
        yield sim


@pytest.fixture
def make_simulator() -> Iterator[Callable[..., HedSimulator]]:
    """Factory: make_simulator(**HedSimulator kwargs) -> started simulator, stopped at teardown."""
    started: list[HedSimulator] = []

    def make(**kwargs: Any) -> HedSimulator:
        sim = HedSimulator(**kwargs)
        started.append(sim)
        sim.start()
        return sim

    yield make
    for sim in started:
        sim.stop()


@pytest.fixture(scope="session")
def dbt_venv() -> Path:
    """transform/.venv with dbt and its adapters, created once per session when missing or
    out of date (minutes from scratch): every dbt test shares it."""
    from devkit import transform

    transform.ensure_venv()
    return transform.VENV_DIR
