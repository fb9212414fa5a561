# shellcheck shell=bash
# Helpers shared by the repository's shell scripts (sourced, never run on its own).
#
# Output: ok, note (stdout), err and die (stderr); each stream is coloured only when it is a
# terminal and NO_COLOR is unset (BOLD is for headers on stdout), as devkit/console.py does
# for the scripts' Python. Arguments: need_value, reject_option (both call the script's own
# usage function), asks_for_help. Paths: absolute_path. Tools: find_sdk_tools.

# Before the first command, so for the whole file: the variables set here (colours, PY, FT)
# are used by the scripts that source it.
# shellcheck disable=SC2034

# wants_colour FD: whether output on file descriptor FD is coloured.
wants_colour() {
  [[ -t "$1" && -z "${NO_COLOR:-}" ]]
}

if wants_colour 1; then
  BOLD=$'\033[1m' GREEN=$'\033[32m' YELLOW=$'\033[33m' RESET=$'\033[0m'
else
  BOLD="" GREEN="" YELLOW="" RESET=""
fi
if wants_colour 2; then
  ERROR_RED=$'\033[31m' ERROR_RESET=$'\033[0m'
else
  ERROR_RED="" ERROR_RESET=""
fi

ok() { printf '%s[ok]%s %s\n' "$GREEN" "$RESET" "$*"; }
note() { printf '%s[note]%s %s\n' "$YELLOW" "$RESET" "$*"; }
err() { printf '%s[error]%s %s\n' "$ERROR_RED" "$ERROR_RESET" "$*" >&2; }
die() {
  err "$*"
  exit 1
}

# need_value "$@": exit 2 unless the option in $1 has a non-empty value in $2.
need_value() {
  [[ $# -ge 2 && -n "$2" ]] || {
    err "$1 needs a value."
    usage >&2
    exit 2
  }
}

# reject_option OPTION: exit 2 for an option the script does not know.
reject_option() {
  err "Unknown option: $1"
  usage >&2
  exit 2
}

# asks_for_help ARGUMENTS...: whether the arguments ask for the help (-h or --help).
asks_for_help() {
  local argument
  for argument in "$@"; do
    [[ "$argument" != -h && "$argument" != --help ]] || return 0
  done
  return 1
}

# absolute_path PATH BASE: PATH with a leading ~ expanded, made absolute against BASE.
absolute_path() {
  local path="$1" base="$2"
  case "$path" in
    \~ | \~/*) path="$HOME${path:1}" ;;
  esac
  if [[ "$path" == /* ]]; then
    printf '%s\n' "$path"
  else
    printf '%s\n' "$base/$path"
  fi
}

# ---------------------------------------------------------------------------------------
# Tools: a Python that has the SDK (and so DuckDB and pipreqs), and its fivetran CLI.

# Whether a Python has the packages that run the SDK's CLI and read its warehouse: found,
# not imported (importing them costs a third of a second, on every run of every script).
readonly SDK_INSTALLED_CHECK='
import importlib.util, sys
sys.exit(not all(importlib.util.find_spec(name) for name in ("fivetran_connector_sdk", "duckdb")))'

has_sdk() {
  "$1" -c "$SDK_INSTALLED_CHECK" >/dev/null 2>&1
}

# use_venv FOLDER: PY and FT from a virtualenv. Its bin is appended to PATH (the SDK runs
# `pipreqs` from PATH), never prepended, so a pipreqs placed earlier on PATH still wins.
use_venv() {
  PY="$1/bin/python"
  FT="$1/bin/fivetran"
  PATH="$PATH:$1/bin"
  export PATH
}

# interpreter_of SCRIPT: the absolute interpreter on a console script's #! line, if any.
interpreter_of() {
  local first=""
  IFS= read -r first <"$1" 2>/dev/null || true
  [[ "$first" =~ ^\#\!(/[^[:space:]]+)[[:space:]]*$ ]] || return 1
  [[ -x "${BASH_REMATCH[1]}" ]] || return 1
  printf '%s\n' "${BASH_REMATCH[1]}"
}

# find_sdk_tools VENV: sets PY and FT from VENV, else the active virtualenv, else `fivetran`
# on PATH with the Python that runs it (else python3) when that Python has the SDK.
# Returns 1 when none qualifies (FT is still set when `fivetran` is on PATH).
find_sdk_tools() {
  local venv="$1" cli candidate
  PY=""
  FT=""
  if [[ -x "$venv/bin/fivetran" && -x "$venv/bin/python" ]]; then
    use_venv "$venv"
    return 0
  fi
  if [[ -n "${VIRTUAL_ENV:-}" && -x "$VIRTUAL_ENV/bin/fivetran" && -x "$VIRTUAL_ENV/bin/python" ]]; then
    use_venv "$VIRTUAL_ENV"
    return 0
  fi
  cli="$(command -v fivetran 2>/dev/null)" || return 1
  FT="$cli"
  for candidate in "$(interpreter_of "$cli" || true)" python3; do
    if [[ -n "$candidate" ]] && has_sdk "$candidate"; then
      PY="$candidate"
      return 0
    fi
  done
  return 1
}
