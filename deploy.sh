#!/usr/bin/env bash
# Deploy the connector to Fivetran with `fivetran deploy`, shipping only its runtime files.
#
# The files in RUNTIME_FILES are copied to a temporary folder and deployed from there, so
# tests, the simulator, benchmarks and dev tools never ship and the SDK's dependency scan
# never sees their imports. Everything is validated before Fivetran is called.
# Run with --help for the options.
set -euo pipefail

# What runs in production: the only files deployed. Add any new runtime module here.
RUNTIME_FILES=(connector.py requirements.txt)

readonly PLACEHOLDER_API_KEY="YOUR_HED_API_KEY"
readonly DEFAULT_ACCOUNT="MDS_SNOWFLAKE_HOL"
readonly DEFAULT_DESTINATION="NEW_SALES_ENG_HANDS_ON_LAB"
# Fivetran's rule for connection (destination schema) names, as the SDK checks it.
readonly CONNECTION_NAME_PATTERN='^[_a-z][_a-z0-9]*$'
readonly DASHBOARD_URL="https://fivetran.com/dashboard/connections"
# Name of the staged project folder (the SDK names its package after the folder).
readonly STAGE_NAME="hed_connector"

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REPO

usage() {
  cat <<EOF
Usage: ./deploy.sh [options]

Deploys connector.py to Fivetran as a Connector SDK connection (creates it, or updates
an existing one after confirmation). Only ${RUNTIME_FILES[*]} are deployed.

Options:
  --account NAME         Fivetran account name, shown for reference; the API key decides
                         the account (prompt default: ${DEFAULT_ACCOUNT}).
  --destination NAME     Destination (group) name; env FIVETRAN_DESTINATION_NAME
                         (prompt default: ${DEFAULT_DESTINATION}).
  --connection NAME      Connection name: a lowercase letter or _ first, then only a-z,
                         0-9 and _; env FIVETRAN_CONNECTION_NAME.
  --config PATH          Configuration file with the production HED api_key
                         (default: configuration.json, which holds placeholders only).
  --python-version V     Python version Fivetran runs the connector with (3.10 or newer;
                         default: the SDK's).
  --yes                  Answer yes to the SDK's prompts, e.g. to update an existing
                         connection without asking.
  --dry-run              Validate, then print the staged files and the command; call nothing.
  -h, --help             Show this help.

The Fivetran API key (base64 of key:secret) is read from FIVETRAN_API_KEY, or asked for
without echo. It is never printed, and is passed to the SDK in its environment, not on
the command line. Without a terminal, every missing input is an error, never a prompt.
EOF
}

if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then
  GREEN=$'\033[32m' RED=$'\033[31m' RESET=$'\033[0m'
else
  GREEN="" RED="" RESET=""
fi
ok() { printf '%s[ok]%s %s\n' "$GREEN" "$RESET" "$*"; }
err() { printf '%s[error]%s %s\n' "$RED" "$RESET" "$*" >&2; }
die() {
  err "$*"
  exit 1
}

# ---------------------------------------------------------------------------------------
# Arguments

ACCOUNT=""
DESTINATION=""
CONNECTION=""
CONFIG="$REPO/configuration.json"
PYTHON_VERSION=""
ASSUME_YES=false
DRY_RUN=false

need_value() {
  [[ $# -ge 2 && -n "$2" ]] || {
    err "$1 needs a value."
    usage >&2
    exit 2
  }
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --account | --destination | --connection | --config | --python-version)
      need_value "$@"
      case "$1" in
        --account) ACCOUNT="$2" ;;
        --destination) DESTINATION="$2" ;;
        --connection) CONNECTION="$2" ;;
        --config) CONFIG="$2" ;;
        --python-version) PYTHON_VERSION="$2" ;;
      esac
      shift
      ;;
    --yes) ASSUME_YES=true ;;
    --dry-run) DRY_RUN=true ;;
    -h | --help)
      usage
      exit 0
      ;;
    *)
      err "Unknown option: $1"
      usage >&2
      exit 2
      ;;
  esac
  shift
done
[[ "$CONFIG" == /* ]] || CONFIG="$PWD/$CONFIG"

# ---------------------------------------------------------------------------------------
# Tools: the repository's .venv first (its bin appended to PATH, where the SDK looks for
# pipreqs), else whatever is on PATH.

if [[ -x "$REPO/.venv/bin/fivetran" ]]; then
  FT="$REPO/.venv/bin/fivetran"
  PY="$REPO/.venv/bin/python"
  export PATH="$PATH:$REPO/.venv/bin"
else
  FT="$(command -v fivetran || true)"
  PY="$(command -v python3 || command -v python || true)"
fi
[[ -n "$PY" ]] || die "Python 3 is needed to check the configuration (python3 on PATH)."
if [[ -z "$FT" ]]; then
  die "The fivetran CLI was not found. Install it with:
  python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt
(or run ./run_tests.sh once, which does the same), then rerun ./deploy.sh."
fi

# ---------------------------------------------------------------------------------------
# Checks that need no input

for file in "${RUNTIME_FILES[@]}"; do
  [[ -f "$REPO/$file" ]] || die "Runtime file $file is missing from $REPO."
done

[[ -f "$CONFIG" ]] || die "No configuration file at $CONFIG (use --config PATH)."
# The path goes through the environment so no value is ever on a command line.
HED_CONFIG="$CONFIG" HED_PLACEHOLDER="$PLACEHOLDER_API_KEY" "$PY" - <<'PY' || exit 1
import json, os, sys

path, placeholder = os.environ["HED_CONFIG"], os.environ["HED_PLACEHOLDER"]
try:
    with open(path, encoding="utf-8") as handle:
        config = json.load(handle)
except (OSError, ValueError) as error:
    sys.exit(f"[error] The configuration {path} is not readable JSON ({error}).")
if not isinstance(config, dict):
    sys.exit(f"[error] The configuration {path} must be a JSON object.")
bad = sorted(key for key, value in config.items() if not isinstance(value, str))
if bad:
    sys.exit(f"[error] In {path}, every value must be a string; not: {', '.join(bad)}.")
api_key = config.get("api_key", "").strip()
if not api_key or api_key == placeholder:
    sys.exit(
        f"[error] {path} has no real api_key (it is empty or the placeholder {placeholder}).\n"
        "  Put the production HED API key in a configuration file kept out of git and pass\n"
        "  it with --config PATH. configuration.json in the repository holds placeholders only."
    )
PY
ok "Configuration: $CONFIG"

# ---------------------------------------------------------------------------------------
# Inputs: flag, else the SDK's environment variable, else a prompt (terminal only)

INTERACTIVE=false
[[ -t 0 ]] && INTERACTIVE=true

# ask VAR "Question" DEFAULT "how to give it without a terminal"
ask() {
  local var="$1" question="$2" default="$3" hint="$4" answer=""
  if [[ "$INTERACTIVE" != true ]]; then
    die "Missing input: $hint (no terminal to ask on)."
  fi
  if [[ -n "$default" ]]; then
    read -r -p "$question [$default]: " answer || die "Missing input: $hint."
    answer="${answer:-$default}"
  else
    read -r -p "$question: " answer || die "Missing input: $hint."
  fi
  [[ -n "$answer" ]] || die "Missing input: $hint."
  printf -v "$var" '%s' "$answer"
}

if [[ -z "$ACCOUNT" ]]; then
  if [[ "$INTERACTIVE" == true ]]; then
    ask ACCOUNT "Fivetran account name" "$DEFAULT_ACCOUNT" "pass --account NAME"
  else
    ACCOUNT="$DEFAULT_ACCOUNT"
  fi
fi
DESTINATION="${DESTINATION:-${FIVETRAN_DESTINATION_NAME:-}}"
if [[ -z "$DESTINATION" ]]; then
  ask DESTINATION "Fivetran destination name" "$DEFAULT_DESTINATION" \
    "pass --destination NAME or set FIVETRAN_DESTINATION_NAME"
fi
CONNECTION="${CONNECTION:-${FIVETRAN_CONNECTION_NAME:-}}"
if [[ -z "$CONNECTION" ]]; then
  ask CONNECTION "Connection name (e.g. hed_new_custom_connector)" "" \
    "pass --connection NAME or set FIVETRAN_CONNECTION_NAME"
fi
if [[ ! "$CONNECTION" =~ $CONNECTION_NAME_PATTERN ]]; then
  die "Connection name '$CONNECTION' is not allowed by Fivetran: it must start with a lowercase
  letter or _, then use only lowercase letters, digits and _ (e.g. hed_new_custom_connector)."
fi

API_KEY="${FIVETRAN_API_KEY:-}"
if [[ -z "$API_KEY" ]]; then
  if [[ "$INTERACTIVE" != true ]]; then
    die "Missing input: set FIVETRAN_API_KEY to your base64-encoded Fivetran key:secret (no terminal to ask on)."
  fi
  read -r -s -p "Fivetran API key (base64 of key:secret, not echoed): " API_KEY ||
    die "Missing input: set FIVETRAN_API_KEY."
  echo
  [[ -n "$API_KEY" ]] || die "Missing input: set FIVETRAN_API_KEY."
fi
# Checked in Python with the key in its environment, never on a command line.
HED_KEY="$API_KEY" "$PY" -c '
import base64, binascii, os, sys
try:
    decoded = base64.b64decode(os.environ["HED_KEY"].strip(), validate=True)
except (binascii.Error, ValueError):
    decoded = b""
sys.exit(0 if b":" in decoded.strip(b":") else 1)
' || die "The Fivetran API key is not base64 of key:secret. In the Fivetran dashboard, copy the
  base64-encoded API key (or run: printf %s 'KEY:SECRET' | base64)."

# ---------------------------------------------------------------------------------------
# Stage the runtime files and deploy from there

STAGE_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/hed-deploy.XXXXXX")"
cleanup() {
  rm -rf "$STAGE_ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
readonly STAGE="$STAGE_ROOT/$STAGE_NAME"
mkdir "$STAGE"
for file in "${RUNTIME_FILES[@]}"; do
  cp "$REPO/$file" "$STAGE/$file"
done

DEPLOY_ARGS=(deploy "$STAGE" --destination "$DESTINATION" --connection "$CONNECTION"
  --configuration "$CONFIG")
[[ -z "$PYTHON_VERSION" ]] || DEPLOY_ARGS+=(--python-version "$PYTHON_VERSION")
if [[ "$ASSUME_YES" == true ]]; then
  DEPLOY_ARGS+=(--yes)
elif [[ "$INTERACTIVE" != true ]]; then
  # No one to answer the SDK's prompts: take their defaults (an existing connection is then
  # left unchanged and the SDK exits non-zero). Pass --yes to update it.
  DEPLOY_ARGS+=(--non-interactive)
fi

echo "Account:       $ACCOUNT (for reference: the API key decides the account)"
echo "Destination:   $DESTINATION"
echo "Connection:    $CONNECTION"
echo "Configuration: $CONFIG"
echo "Files:         ${RUNTIME_FILES[*]}"

if [[ "$DRY_RUN" == true ]]; then
  echo
  echo "Dry run: nothing was called. The staged folder would hold:"
  (cd "$STAGE" && find . -type f | sed 's|^\./|  |' | sort)
  printf 'and this command would run in it:\n  FIVETRAN_API_KEY=**** %q' "$FT"
  printf ' %q' "${DEPLOY_ARGS[@]}"
  echo
  exit 0
fi

readonly DEPLOY_LOG="$STAGE_ROOT/deploy.log"
echo
echo "Deploying with fivetran deploy..."
set +e
(cd "$STAGE" && FIVETRAN_API_KEY="$API_KEY" "$FT" "${DEPLOY_ARGS[@]}") 2>&1 | tee "$DEPLOY_LOG"
status=${PIPESTATUS[0]}
set -e

if ((status != 0)); then
  err "fivetran deploy failed with exit code $status (see its output above)."
  exit "$status"
fi
connection_id="$(sed -nE 's/.*[Cc]onnection [Ii][Dd]:[[:space:]]*([A-Za-z0-9_]+).*/\1/p' \
  "$DEPLOY_LOG" | tail -n 1)"
if [[ -n "$connection_id" ]]; then
  ok "Deployed connection $connection_id"
  echo "Dashboard: $DASHBOARD_URL/$connection_id/status"
else
  ok "Deployed (the SDK's output above has the connection details)"
fi
