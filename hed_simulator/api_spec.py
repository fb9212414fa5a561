"""The OpenAPI 3.1 document of the HED API contract, served at GET /hed_api_spec.

The document lives in hed_api_spec.json beside this module, the one place it is written;
tests/test_api_spec.py checks the simulator's real answers against it. OpenAPI 3.1 because
its schemas are plain JSON Schema 2020-12, which standard validators check as they are.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

SPEC_FILE = Path(__file__).with_name("hed_api_spec.json")


@functools.cache
def spec_bytes() -> bytes:
    """The document as served: the file's bytes, read once."""
    return SPEC_FILE.read_bytes()


def load_spec() -> dict[str, Any]:
    """A fresh parsed copy, for callers that inspect or change it."""
    return json.loads(spec_bytes())
