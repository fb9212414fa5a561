"""Lab-style HED connector: the benchmark's baseline, rebuilt from the seed lab's README.

It does what the original lab connector does, on purpose and nothing more: a minimal
schema (table and primary key, no column types), one request at a time, a checkpoint
after every page, no retries, and the generator style (`yield op.upsert(...)`). The
benchmark compares our connector with it; it is not meant to be used.
"""

import json

import requests
from fivetran_connector_sdk import Connector
from fivetran_connector_sdk import Logging as log
from fivetran_connector_sdk import Operations as op

TABLE = "hed_records"
DEFAULT_BASE_URL = "https://sdk-demo-api-dot-internal-sales.uc.r.appspot.com"
DEFAULT_PAGE_SIZE = 100
# The lab used one plain timeout and no retry policy.
TIMEOUT_S = 30


def schema(configuration: dict):
    """Minimal schema with ONLY the table name and primary key, as in the lab."""
    return [{"table": TABLE, "primary_key": ["record_id"]}]


def make_session(configuration: dict) -> requests.Session:
    """An authenticated session, the lab's step 2."""
    session = requests.Session()
    session.headers.update({"x-api-key": configuration["api_key"]})
    return session


def fetch_page(session: requests.Session, base_url: str, cursor, page_size: int) -> dict:
    """One GET /hed_data; any failure ends the sync (the lab had no retries)."""
    params = {"page_size": page_size}
    if cursor:
        params["cursor"] = cursor
    response = session.get(f"{base_url}/hed_data", params=params, timeout=TIMEOUT_S)
    response.raise_for_status()
    return response.json()


def update(configuration: dict, state: dict):
    """Fetch pages sequentially; upsert every record; checkpoint after every page."""
    base_url = configuration.get("base_url", DEFAULT_BASE_URL).rstrip("/")
    page_size = int(configuration.get("page_size", DEFAULT_PAGE_SIZE))
    session = make_session(configuration)
    cursor = (state or {}).get("next_cursor")
    log.info("Starting incremental sync" if cursor else "Starting initial sync")
    total = 0
    try:
        while True:
            body = fetch_page(session, base_url, cursor, page_size)
            records = body.get("hed_records", [])
            for record in records:
                yield op.upsert(TABLE, record)
            total += len(records)
            cursor = body.get("next_cursor") or cursor
            has_more = body.get("has_more", False)
            yield op.checkpoint({"next_cursor": cursor})
            log.info(f"Checkpoint at {total} records, cursor: {cursor}")
            log.info(f"Processed batch: {len(records)} records, has_more: {has_more}")
            if not has_more:
                break
    except requests.RequestException as error:
        log.error(f"API request failed: {error}")
        raise
    log.info(f"Final checkpoint: {total} total records, cursor: {cursor}")
    yield op.checkpoint({"next_cursor": cursor})


connector = Connector(update=update, schema=schema)

if __name__ == "__main__":
    with open("configuration.json", encoding="utf-8") as config_file:
        connector.debug(configuration=json.load(config_file))
