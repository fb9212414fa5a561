#!/usr/bin/env bash
# Reset the connector's local state, run one debug sync, and show what it loaded.
#
# Steps: check the project -> confirm -> `fivetran reset` -> `fivetran debug` -> a
# data-quality summary (with sample rows only from the simulator, or on request: from a real
# API they are student records) -> the operation summary -> the next sync state.
# Run with --help for the options. Any failed step stops the script with a non-zero exit.
set -Eeuo pipefail

# Seed for --local: every simulator started with the same seed accepts the others' cursors,
# so an --incremental run can resume from the state a previous --local run saved.
readonly DEFAULT_SEED=42
# Changes the simulator makes before a --local --incremental sync.
readonly INCREMENTAL_NEW=10
readonly INCREMENTAL_UPDATED=5
# Seconds to wait for the simulator to print its URL.
readonly SIMULATOR_START_TIMEOUT_S=20
# Rows shown by --local or --show-sample: enough to see the columns' shape.
readonly SAMPLE_ROWS=5

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REPO
readonly VENV="$REPO/.venv"
# shellcheck source=devkit/common.sh
source "$REPO/devkit/common.sh"
# shellcheck source=devkit/venv.sh
source "$REPO/devkit/venv.sh"

usage() {
  cat <<EOF
Usage: ./debug_and_reset.sh [options]

Deletes the local sync output (files/warehouse.db and files/state.json), runs a full
debug sync with 'fivetran debug', then shows a data-quality summary (counts and column
names only), the operation counts and the state the next sync starts from. With --local it
also shows ${SAMPLE_ROWS} sample rows of the simulator's synthetic records.

Options:
  --local          Sync from the local HED simulator (started and stopped by this script)
                   with its demo key; configuration.json is not read or changed.
  --incremental    Keep the saved state and run a second, incremental sync (no reset, no
                   prompt). With --local the simulator first makes ${INCREMENTAL_NEW} new and
                   ${INCREMENTAL_UPDATED} updated records, so only those are synced.
  --config PATH    Configuration file to use; else FIVETRAN_CONFIGURATION (relative to
                   the project folder, as the SDK reads it); else configuration.json.
                   With --local, only its settings are used (not api_key or base_url).
  --seed N         Simulator seed for --local (default: ${DEFAULT_SEED}). Use the same seed
                   for a --local run and the --local --incremental run after it.
  --records N      Records the simulator starts with for --local (default: 600).
  --show-sample    Also show ${SAMPLE_ROWS} sample rows when syncing from a real API. They are
                   real student records (FERPA): use it only where they may be shown, never
                   in a shared terminal, log or CI output.
  -y, --yes        Do not ask before deleting the local state.
  -h, --help       Show this help.

Quickstart: ./debug_and_reset.sh --local --yes
On a machine without the Fivetran SDK, the first run creates .venv and installs
requirements-dev.txt into it. Lookups the SDK makes on the internet by itself (its version
checks, pipreqs asking PyPI, telemetry) are skipped for a run when they cannot succeed
from this machine; nothing in ~/.fivetran is changed for that.
EOF
}

# ---------------------------------------------------------------------------------------
# Output (ok, note, err, die and the colours come from devkit/common.sh)

CURRENT_STEP=""

# step NUMBER TITLE: print a header; a failure from here on names this step.
step() {
  CURRENT_STEP="$1 ($2)"
  printf '\n%s== Step %s: %s ==%s\n' "$BOLD" "$1" "$2" "$RESET"
}

# ---------------------------------------------------------------------------------------
# The Python half of this script (configuration checks, reports) lives in
# devkit/debug_report.py; run with the interpreter that has the SDK and DuckDB.
helper() {
  "$PY" -m devkit.debug_report "$@"
}

# ---------------------------------------------------------------------------------------
# Tools: the repository's .venv, else an active virtualenv, else fivetran on PATH with a
# Python that has the SDK (devkit/common.sh), else a new .venv.

PY=""
FT=""

bootstrap_venv() {
  note "The Fivetran SDK is not installed: creating .venv from requirements-dev.txt."
  ensure_requirements "$VENV" "$REPO/requirements-dev.txt" || die "Could not set up .venv."
  ok "Created .venv"
}

find_tools() {
  find_sdk_tools "$VENV" && return 0
  bootstrap_venv
  use_venv "$VENV"
}

# ---------------------------------------------------------------------------------------
# The SDK's own internet lookups: those that cannot succeed from here are skipped for this
# run only (never by writing into ~/.fivetran); where they can, the SDK runs as it always
# does. devkit/sdk_lookups.py probes them all at once, in a few seconds at most.

readonly SDK_LOOKUPS="$REPO/devkit/sdk_lookups.py"
# How `fivetran` is run: the CLI itself, or devkit/sdk_lookups.py with some version checks off.
FT_CMD=()

describe_lookup() {
  case "$1" in
    sdk-version-check) echo "the SDK's version check" ;;
    core-version-check) echo "the SDK core's version check" ;;
    pipreqs) echo "pipreqs asking PyPI (requirements.txt is checked against installed packages)" ;;
    telemetry) echo "telemetry (DO_NOT_TRACK=1 for this run)" ;;
    *) echo "$1" ;;
  esac
}

# use_pipreqs_shim: a pipreqs first on PATH (the SDK runs the one it finds there) that adds
# --use-local, so the SDK's dependency check makes no lookup that cannot succeed. The shim
# is the one the tests use, written by devkit/sdk_lookups.py.
use_pipreqs_shim() {
  local shim_dir="$TMP_DIR/offline-bin"
  "$PY" "$SDK_LOOKUPS" shim "$shim_dir"
  PATH="$shim_dir:$PATH"
  export PATH
}

skip_unreachable_lookups() {
  local name skipped=() unreachable
  FT_CMD=("$FT")
  unreachable="$("$PY" "$SDK_LOOKUPS" lookups)" || {
    note "Could not check which SDK lookups can succeed; the SDK makes them as usual."
    return 0
  }
  for name in $unreachable; do
    case "$name" in
      sdk-version-check | core-version-check)
        [[ ${#FT_CMD[@]} -gt 1 ]] || FT_CMD=("$PY" "$SDK_LOOKUPS" fivetran)
        FT_CMD+=(--skip "$name")
        ;;
      pipreqs) use_pipreqs_shim ;;
      telemetry) export DO_NOT_TRACK=1 ;;
      *) continue ;;
    esac
    skipped+=("$(describe_lookup "$name")")
  done
  [[ ${#FT_CMD[@]} -eq 1 ]] || FT_CMD+=(--)
  ((${#skipped[@]})) || return 0
  note "No internet access for these SDK lookups, so this run skips them:"
  for name in "${skipped[@]}"; do
    echo "  - $name"
  done
}

# ---------------------------------------------------------------------------------------
# The local simulator and clean-up

TMP_DIR=""
SIM_PID=""
DEBUG_PID=""

# A TERM or Ctrl-C while fivetran debug runs must stop it too, not wait for it to finish.
stop_debug() {
  [[ -n "$DEBUG_PID" ]] || return 0
  pkill -TERM -P "$DEBUG_PID" 2>/dev/null || true
  kill -TERM "$DEBUG_PID" 2>/dev/null || true
  wait "$DEBUG_PID" 2>/dev/null || true
  DEBUG_PID=""
}

stop_simulator() {
  [[ -n "$SIM_PID" ]] || return 0
  if kill -0 "$SIM_PID" 2>/dev/null; then
    kill -TERM "$SIM_PID" 2>/dev/null || true
    local tries=0
    while kill -0 "$SIM_PID" 2>/dev/null && ((tries < 50)); do
      sleep 0.1
      tries=$((tries + 1))
    done
    kill -KILL "$SIM_PID" 2>/dev/null || true
  fi
  wait "$SIM_PID" 2>/dev/null || true
  echo "Stopped the simulator (PID $SIM_PID)."
  SIM_PID=""
}

on_exit() {
  local status=$?
  trap - EXIT INT TERM
  stop_debug
  stop_simulator
  [[ -z "$TMP_DIR" ]] || rm -rf "$TMP_DIR"
  if ((status != 0)) && [[ -n "$CURRENT_STEP" ]]; then
    err "Step ${CURRENT_STEP} failed (exit ${status})."
  fi
  exit "$status"
}

start_simulator() {
  local out="$TMP_DIR/simulator.out" errors="$TMP_DIR/simulator.err"
  local args=(--port 0 --seed "$SEED" --exit-with-parent)
  [[ -z "$RECORDS" ]] || args+=(--records "$RECORDS")
  "$PY" -m hed_simulator "${args[@]}" >"$out" 2>"$errors" </dev/null &
  SIM_PID=$!
  local deadline=$((SECONDS + SIMULATOR_START_TIMEOUT_S))
  while true; do
    if [[ -s "$out" ]] && [[ "$(wc -l <"$out")" -ge 1 ]]; then
      SIM_URL="$(head -n 1 "$out")"
      break
    fi
    if ! kill -0 "$SIM_PID" 2>/dev/null; then
      cat "$errors" >&2
      SIM_PID=""
      die "The simulator exited before printing its URL (see above)."
    fi
    ((SECONDS < deadline)) || die "The simulator printed no URL within ${SIMULATOR_START_TIMEOUT_S} s."
    sleep 0.1
  done
  [[ "$SIM_URL" == http://* ]] || die "The simulator printed '$SIM_URL' instead of its URL."
  ok "Simulator running at $SIM_URL (PID $SIM_PID, seed $SEED)"
}

# ---------------------------------------------------------------------------------------
# The staged project: only the runtime files deploy.sh ships (RUNTIME_FILES, from
# devkit/common.sh), so the SDK's dependency scan (pipreqs) sees no test, simulator or
# benchmark imports. files/ links back to the repository, so the warehouse and state land
# where users look; crash reports are copied back after the run.

STAGE=""

stage_project() {
  STAGE="$TMP_DIR/project"
  stage_runtime_files "$STAGE"
  mkdir -p "$REPO/files"
  ln -s "$REPO/files" "$STAGE/files"
}

collect_crash_reports() {
  [[ -d "$STAGE/crash-reports" ]] || return 0
  mkdir -p "$REPO/crash-reports"
  cp -p "$STAGE/crash-reports/"* "$REPO/crash-reports/" 2>/dev/null || true
  note "Crash report copied to $REPO/crash-reports/"
}

# ---------------------------------------------------------------------------------------
# Arguments

LOCAL=false
INCREMENTAL=false
ASSUME_YES=false
SHOW_SAMPLE=false
CONFIG_FLAG=""
SEED="$DEFAULT_SEED"
RECORDS=""
SIM_URL=""

while [[ $# -gt 0 ]]; do
  case "$1" in
    --local) LOCAL=true ;;
    --incremental) INCREMENTAL=true ;;
    -y | --yes) ASSUME_YES=true ;;
    --show-sample) SHOW_SAMPLE=true ;;
    --config)
      need_value "$@"
      CONFIG_FLAG="$2"
      shift
      ;;
    --seed)
      need_value "$@"
      SEED="$2"
      shift
      ;;
    --records)
      need_value "$@"
      RECORDS="$2"
      shift
      ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) reject_option "$1" ;;
  esac
  shift
done

[[ "$SEED" =~ ^[0-9]+$ ]] || die "--seed must be a whole number (got '$SEED')."
[[ -z "$RECORDS" || "$RECORDS" =~ ^[0-9]+$ ]] || die "--records must be a whole number."
# --config, else FIVETRAN_CONFIGURATION, else configuration.json (devkit/common.sh).
resolve_configuration "$CONFIG_FLAG"

trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

cd "$REPO"
TMP_DIR="$(mktemp -d "${TMPDIR:-/tmp}/hed-debug.XXXXXX")"
readonly STATE_FILE="$REPO/files/state.json"
readonly WAREHOUSE="$REPO/files/warehouse.db"
readonly DEBUG_LOG="$TMP_DIR/debug.log"

printf '%sHED connector: debug and reset%s\n' "$BOLD" "$RESET"

# ---------------------------------------------------------------------------------------
step "1/7" "check the project"
[[ -f "$REPO/connector.py" ]] || die "No connector.py in $REPO."
find_tools
ok "Using $FT"
skip_unreachable_lookups
if [[ "$LOCAL" == true ]]; then
  if [[ -f "$CONFIG" ]]; then
    ok "Local mode: settings from $CONFIG ($(describe_configuration_source)); the simulator's URL and demo key replace base_url and api_key"
  elif [[ "$CONFIG_SOURCE" == default ]]; then
    CONFIG=""
    ok "Local mode: the simulator's demo key and URL, default settings"
  else
    die "No configuration file at $CONFIG ($(describe_configuration_source))."
  fi
  [[ -f "$REPO/hed_simulator/__main__.py" ]] || die "--local needs hed_simulator/ in $REPO."
else
  [[ -f "$CONFIG" ]] ||
    die "No configuration file at $CONFIG ($(describe_configuration_source); use --config PATH or --local)."
  helper check-config "$CONFIG" "$0" || exit 1
  ok "Configuration: $CONFIG ($(describe_configuration_source))"
fi
TABLE="$(PYTHONDONTWRITEBYTECODE=1 helper table | tail -n 1)" ||
  die "Could not import connector.py to read its schema() (see the error above)."
[[ -n "$TABLE" ]] || die "connector.py's schema() returned no table name."
ok "Table (from connector.schema()): $TABLE"

# ---------------------------------------------------------------------------------------
step "2/7" "confirm"
if [[ "$INCREMENTAL" == true ]]; then
  ok "Skipped: --incremental keeps the saved state"
  if [[ -f "$STATE_FILE" ]]; then
    ok "Resuming from $STATE_FILE"
  else
    note "No saved state in files/state.json: this sync starts from the beginning."
  fi
elif [[ ! -e "$REPO/files" ]]; then
  ok "Nothing to delete: files/ does not exist yet"
else
  echo "This resets the connector's local state by deleting $REPO/files/, which holds:"
  echo "  - warehouse.db: the DuckDB copy of the rows synced so far"
  echo "  - state.json:   the saved cursor, so the next sync starts from the beginning"
  if [[ "$ASSUME_YES" == true ]]; then
    ok "Confirmed by --yes"
  else
    printf 'Do you want to continue? (Y/n) '
    answer=""
    if ! read -r answer; then
      echo
      die "No answer could be read (stdin is not a terminal): pass --yes to confirm."
    fi
    if [[ -n "$answer" && ! "$answer" =~ ^[Yy]([Ee][Ss])?$ ]]; then
      CURRENT_STEP=""
      echo "Cancelled: nothing was deleted."
      exit 1
    fi
  fi
fi

# ---------------------------------------------------------------------------------------
step "3/7" "reset"
if [[ "$INCREMENTAL" == true ]]; then
  ok "Skipped: --incremental keeps the saved state"
elif [[ ! -e "$REPO/files" ]]; then
  ok "Skipped: nothing to reset"
else
  "${FT_CMD[@]}" reset "$REPO" --yes </dev/null
  [[ ! -e "$STATE_FILE" && ! -e "$WAREHOUSE" ]] || die "fivetran reset left files/ behind."
  ok "Reset done"
fi

# ---------------------------------------------------------------------------------------
step "4/7" "sync with fivetran debug"
if [[ "$LOCAL" == true ]]; then
  CURRENT_STEP="4/7 (start the simulator)"
  start_simulator
  LOCAL_CONFIG="$TMP_DIR/configuration.json"
  (umask 077 && helper local-config "$CONFIG" "$LOCAL_CONFIG" "$SIM_URL")
  chmod 600 "$LOCAL_CONFIG"
  CONFIG="$LOCAL_CONFIG"
  if [[ "$INCREMENTAL" == true ]]; then
    CURRENT_STEP="4/7 (make changes in the simulator)"
    helper changes "$SIM_URL" "$INCREMENTAL_NEW" "$INCREMENTAL_UPDATED"
  fi
  CURRENT_STEP="4/7 (fivetran debug)"
fi
stage_project
echo "Staged the runtime files deploy.sh ships in $STAGE:"
list_staged_files "$STAGE"
echo "Running: fivetran debug there, writing to $REPO/files (live output below)"
echo
# In the background, so that `wait` (unlike a foreground pipeline) lets the INT/TERM traps
# run at once; the subshell exits with debug's own status, which tee must not hide.
{
  "${FT_CMD[@]}" debug "$STAGE" --configuration "$CONFIG" </dev/null 2>&1 | tee "$DEBUG_LOG"
  exit "${PIPESTATUS[0]}"
} &
DEBUG_PID=$!
debug_status=0
wait "$DEBUG_PID" || debug_status=$?
DEBUG_PID=""
echo
collect_crash_reports
((debug_status == 0)) || die "fivetran debug failed with exit code $debug_status (see its output above)."
ok "Debug sync succeeded"
stop_simulator

# ---------------------------------------------------------------------------------------
step "5/7" "sample rows and data quality"
[[ -f "$WAREHOUSE" ]] || die "The sync wrote no $WAREHOUSE."
# Sample rows are values: from a real API, student records (FERPA), never shown unasked.
if [[ "$LOCAL" == true || "$SHOW_SAMPLE" == true ]]; then
  helper sample "$WAREHOUSE" "$TABLE" "$SAMPLE_ROWS"
else
  note "Sample rows not shown: from a real API they are student records (FERPA). Rerun with --show-sample to see ${SAMPLE_ROWS}, where they may be shown."
fi
helper quality "$WAREHOUSE" "$TABLE"

# ---------------------------------------------------------------------------------------
step "6/7" "operation summary (from this run's output)"
helper summary "$DEBUG_LOG"

# ---------------------------------------------------------------------------------------
step "7/7" "next sync state"
helper state "$STATE_FILE"

CURRENT_STEP=""
echo
if [[ "$INCREMENTAL" == true ]]; then
  ok "Incremental debug sync completed."
else
  ok "Debug and reset completed."
fi
# The local flow ends where the real one does: in the StudentSuccess app.
echo "See the data as advisors will: ./student_success.sh (serves the preview on loopback)"
