#!/usr/bin/env bash
# Reset the connector's local state, run one debug sync, and show what it loaded.
#
# The steps live in devkit/debug_and_reset.py (run with --help for them and the options).
# This script only finds the Python that has the Fivetran SDK (the repository's .venv, an
# active virtualenv, or the one that runs `fivetran` on PATH: devkit/common.sh), creates
# .venv on a machine that has none (devkit/venv.sh), and hands over to it. --help needs no
# SDK, so it never waits for an install.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REPO
readonly VENV="$REPO/.venv"
# shellcheck source=devkit/common.sh
source "$REPO/devkit/common.sh"
# shellcheck source=devkit/venv.sh
source "$REPO/devkit/venv.sh"

if ! find_sdk_tools "$VENV"; then
  if asks_for_help "$@"; then
    PY="$(find_base_python)"
  else
    note "The Fivetran SDK is not installed: creating .venv from requirements-dev.txt."
    ensure_requirements "$VENV" "$REPO/requirements-dev.txt" || die "Could not set up .venv."
    ok "Created .venv"
    use_venv "$VENV"
  fi
fi
# exec: Ctrl-C and TERM reach the Python process itself, which stops the sync and the
# simulator before it exits. Run by path from here: a --config path is relative to this folder.
exec "$PY" "$REPO/devkit/debug_and_reset.py" "$@"
