# shellcheck shell=bash
# The repository's virtualenv, shared by run_tests.sh, debug_and_reset.sh and
# student_success.sh (sourced).
#
# ensure_requirements VENV FILE creates VENV when missing and installs FILE into it, again
# only when FILE, or a file it includes with -r, changed since: each FILE keeps its own
# hash stamp inside VENV, so the scripts can each install just what they need (the
# quickstart never waits for the test tools) without undoing one another.
# Needs only Python 3.10+ with pip and venv. Messages go to stderr; non-zero on failure.

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

# requirements_sha256 PYTHON FILE: one hash over FILE and every file it includes with -r.
requirements_sha256() {
  "$1" - "$2" <<'PY'
import hashlib
import sys
from pathlib import Path

digest = hashlib.sha256()
pending, seen = [Path(sys.argv[1]).resolve()], set()
while pending:
    path = pending.pop()
    if path in seen:
        continue
    seen.add(path)
    text = path.read_bytes()
    digest.update(text)
    for line in text.decode("utf-8").splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) == 2 and words[0] in ("-r", "--requirement"):
            pending.append((path.parent / words[1]).resolve())
print(digest.hexdigest())
PY
}

# stamp_name VENV FILE: where FILE's hash is kept inside VENV: one stamp per file, named
# after its path relative to the folder holding VENV (the repository).
stamp_name() {
  local relative="${2#"${1%/*}/"}"
  echo ".stamp-${relative//\//-}.sha256"
}

ensure_requirements() {
  local venv="$1" requirements="$2" base wanted stamp
  base="$(find_base_python)" || return 1
  wanted="$(requirements_sha256 "$base" "$requirements")" || return 1
  stamp="$venv/$(stamp_name "$venv" "$requirements")"
  if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    return 0
  fi
  if [[ ! -x "$venv/bin/python" ]]; then
    echo "Creating $venv (once)" >&2
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
  echo "$wanted" >"$stamp"
}
