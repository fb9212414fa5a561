"""Core-floor connector: the least work a sync of the HED records can do under the SDK.

The benchmark measures our connector against this. It loads the same records our
connector gets from the API, but from a local file instead of over HTTP, and does only
the per-record work the SDK itself needs: the same declared schema and the same row
conversion (`schema()` and `to_row()` come from a copy of the repository's connector.py
placed beside this file as `hed_connector.py`), and a checkpoint at the same cadence
(every `checkpoint_interval` rows, at page boundaries). So its time is the SDK core's
time; whatever our connector takes beyond it is ours.

Input: `pages_file` (default `pages.jsonl`, beside this file), one API page per line as
the JSON list of its records, pre-fetched from the simulator by the benchmark. Reading
and parsing it is counted in the sync time, as parsing responses is for our connector.
"""

from pathlib import Path

import hed_connector as hed
from fivetran_connector_sdk import Connector
from fivetran_connector_sdk import Operations as op

DEFAULT_PAGES_FILE = "pages.jsonl"
# The cursor our connector checkpoints is ~104 characters: keep the state the same size.
FAKE_CURSOR_PREFIX = "floor-cursor-"
FAKE_CURSOR_WIDTH = 104


def schema(configuration: dict):
    """Exactly our connector's declared schema."""
    return hed.schema(configuration)


def fake_cursor(page_number: int) -> str:
    """A state value as large as a real cursor, distinct per page."""
    return f"{FAKE_CURSOR_PREFIX}{page_number}".ljust(FAKE_CURSOR_WIDTH, "x")


def pages_path(configuration: dict) -> Path:
    """The input file, relative to the project folder holding this connector."""
    return Path(__file__).resolve().parent / configuration.get("pages_file", DEFAULT_PAGES_FILE)


def update(configuration: dict, state: dict):
    """Upsert every pre-fetched record; checkpoint every `checkpoint_interval` rows."""
    interval = int(configuration.get("checkpoint_interval", hed.DEFAULT_CHECKPOINT_INTERVAL))
    since_checkpoint = 0
    page_number = 0
    with pages_path(configuration).open(encoding="utf-8") as pages:
        for line in pages:
            records = hed.decode_json(line.encode("utf-8"))  # parsed as ours parses a page
            for record in records:
                op.upsert(hed.TABLE, hed.to_row(record))
            page_number += 1
            since_checkpoint += len(records)
            if since_checkpoint >= interval:
                op.checkpoint({"next_cursor": fake_cursor(page_number)})
                since_checkpoint = 0
    op.checkpoint({"next_cursor": fake_cursor(page_number)})  # as ours: always at the end


connector = Connector(update=update, schema=schema)
