#!/usr/bin/env bash
# Run the test suite in the repository's .venv, creating or updating it first if needed.
#
# .venv is (re)installed from requirements-dev.txt only when it is missing or when
# requirements-dev.txt changed since the last install (a hash stamp is kept inside .venv).
# Every argument goes to pytest unchanged, so `./run_tests.sh --help` shows pytest's help
# and `./run_tests.sh -k deploy -x` works as with pytest itself.
# Needs only Python 3.10+ with pip and venv.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REPO
readonly VENV="$REPO/.venv"
readonly REQUIREMENTS="$REPO/requirements-dev.txt"
# Shared with debug_and_reset.sh, which writes the same stamp when it creates .venv.
readonly STAMP="$VENV/.requirements-dev.sha256"

find_base_python() {
  local candidate
  for candidate in python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "run_tests.sh: Python 3.10 or newer is needed (python3 on PATH)." >&2
  return 1
}

file_sha256() {
  "$1" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$2"
}

ensure_venv() {
  local base wanted
  base="$(find_base_python)"
  wanted="$(file_sha256 "$base" "$REQUIREMENTS")"
  if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$wanted" ]]; then
    return 0
  fi
  if [[ ! -x "$VENV/bin/python" ]]; then
    echo "run_tests.sh: creating .venv" >&2
    "$base" -m venv "$VENV" || {
      echo "run_tests.sh: could not create .venv (Debian/Ubuntu: apt-get install python3-venv)." >&2
      return 1
    }
  fi
  echo "run_tests.sh: installing requirements-dev.txt into .venv" >&2
  "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet -r "$REQUIREMENTS"
  echo "$wanted" >"$STAMP"
}

cd "$REPO"
ensure_venv
export DO_NOT_TRACK=1
# The SDK runs `pipreqs` from PATH: the venv's bin goes last so a pipreqs earlier on PATH wins.
export PATH="$PATH:$VENV/bin"
exec "$VENV/bin/python" -m pytest "$@"
