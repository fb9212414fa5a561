#!/usr/bin/env bash
# Deploy the connector to Fivetran with `fivetran deploy`, shipping only its runtime files.
#
# The work (checks, deploy fields, prompts, staging, the CLI call) lives in devkit/deploy.py;
# run with --help for the options. This script only finds the fivetran CLI and the Python
# that has its SDK (the repository's .venv first: devkit/common.sh) and hands over to it.
# --help needs neither.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REPO
# shellcheck source=devkit/common.sh
source "$REPO/devkit/common.sh"
# shellcheck source=devkit/venv.sh
source "$REPO/devkit/venv.sh"

if ! find_sdk_tools "$REPO/.venv"; then
  if asks_for_help "$@"; then
    PY="$(find_base_python)"
  elif [[ -n "$FT" ]]; then
    die "Found $FT, but no Python with the Fivetran SDK to run it (tried its own and python3)."
  else
    die "The fivetran CLI was not found. Install it with:
  python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt
(or run ./run_tests.sh once, which does the same), then rerun ./deploy.sh."
  fi
fi
# Run by path from here: the SDK looks for ./options.toml in this folder, and --config and
# --options-file paths are relative to it. exec: Ctrl-C and TERM reach the Python process.
HED_FIVETRAN_CLI="$FT" exec "$PY" "$REPO/devkit/deploy.py" "$@"
