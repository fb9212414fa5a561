"""CPU time of our connector's own code for one full sync, with the SDK's work taken out.

The benchmark's ours/floor ratio mixes our code with everything that shares the machine
(the local simulator, a second thread, two noisy cores). This isolates our part: it runs
the connector's real sync (HTTP, JSON, prefetch thread, record checks, row shaping)
against a running simulator, with Operations replaced by no-ops, and prints the CPU
seconds the process spent, as one JSON line. The benchmark runs it in a fresh process.

    python bench/code_cost.py CONNECTOR_PY BASE_URL API_KEY
"""

import importlib.util
import json
import sys
import time


class NoOperations:
    """Takes what the connector emits and does nothing: the SDK's cost is excluded."""

    def upsert(self, table, data):
        pass

    def checkpoint(self, state):
        pass

    def warning(self, message):
        pass


def load_connector(path: str):
    spec = importlib.util.spec_from_file_location("connector_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str]) -> int:
    connector_path, base_url, api_key = argv
    connector = load_connector(connector_path)
    connector.op = NoOperations()
    connector.log.LOG_LEVEL = connector.log.Level.WARNING  # the SDK sets it when it runs one
    started = time.process_time()
    connector.sync({"api_key": api_key, "base_url": base_url}, {})
    print(json.dumps({"cpu_s": round(time.process_time() - started, 3)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
