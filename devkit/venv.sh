# shellcheck shell=bash
# The development virtualenv, shared by run_tests.sh and debug_and_reset.sh (sourced).
#
# ensure_dev_venv VENV REQUIREMENTS creates VENV when missing and installs REQUIREMENTS
# into it, again only when that file changed since (a hash stamp is kept inside VENV).
# Needs only Python 3.10+ with pip and venv. Messages go to stderr; non-zero on failure.

readonly DEV_VENV_STAMP=".requirements-dev.sha256"

find_base_python() {
  local candidate
  for candidate in python3 python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
      "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "Python 3.10 or newer is needed (python3 on PATH)." >&2
  return 1
}

file_sha256() {
  "$1" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$2"
}

ensure_dev_venv() {
  local venv="$1" requirements="$2" base wanted
  base="$(find_base_python)" || return 1
  wanted="$(file_sha256 "$base" "$requirements")"
  if [[ -x "$venv/bin/python" && -f "$venv/$DEV_VENV_STAMP" &&
    "$(cat "$venv/$DEV_VENV_STAMP")" == "$wanted" ]]; then
    return 0
  fi
  if [[ ! -x "$venv/bin/python" ]]; then
    echo "Creating $venv (once; installing takes a minute or two)" >&2
    "$base" -m venv "$venv" || {
      echo "Could not create $venv (Debian/Ubuntu: apt-get install python3-venv)." >&2
      return 1
    }
  fi
  echo "Installing $(basename "$requirements") into $venv" >&2
  "$venv/bin/python" -m pip install --disable-pip-version-check --quiet -r "$requirements" || {
    echo "Installing $requirements into $venv failed." >&2
    return 1
  }
  echo "$wanted" >"$venv/$DEV_VENV_STAMP"
}
