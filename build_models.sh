#!/usr/bin/env bash
# Build and test the dbt models in transform/ over the local debug warehouse.
#
# The steps live in devkit/build_models.py (run with --help for them and the options). This
# script only finds a Python 3.10+ and hands over to it; that Python creates transform/.venv
# (dbt-core and its adapters, apart from the connector's .venv) on first use and runs dbt
# from it. --help needs no install.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REPO
# shellcheck source=devkit/venv.sh
source "$REPO/devkit/venv.sh"

PY="$(find_base_python)"
# exec: Ctrl-C and TERM reach the Python process itself, which stops dbt before it exits.
# Run by path from here: a --db path is relative to this folder.
exec "$PY" "$REPO/devkit/build_models.py" "$@"
