#!/usr/bin/env bash
# Run the test suite in the repository's .venv, creating or updating it first if needed.
#
# .venv is (re)installed from requirements-test.txt only when it is missing or when that
# file, or one it includes, changed since the last install (a hash stamp is kept in .venv).
# Every argument goes to pytest unchanged, so `./run_tests.sh --help` shows pytest's help
# and `./run_tests.sh -k deploy -x` works as with pytest itself.
# Needs only Python 3.10+ with pip and venv.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REPO
readonly VENV="$REPO/.venv"
# shellcheck source=devkit/venv.sh
source "$REPO/devkit/venv.sh"

cd "$REPO"
ensure_requirements "$VENV" "$REPO/requirements-test.txt"
export DO_NOT_TRACK=1
# The SDK runs `pipreqs` from PATH: the venv's bin goes last so a pipreqs earlier on PATH wins.
export PATH="$PATH:$VENV/bin"
exec "$VENV/bin/python" -m pytest "$@"
