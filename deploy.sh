#!/usr/bin/env bash
# Deploy the connector to Fivetran with `fivetran deploy`, shipping only its runtime files.
#
# The runtime files (RUNTIME_FILES in devkit/common.sh) are copied to a temporary folder and
# deployed from there, so tests, the simulator, benchmarks and dev tools never ship and the
# SDK's dependency scan never sees their imports. Deploy fields are resolved as the SDK
# resolves them (flag, then its environment variable, then the options-file profile, then
# the SDK's default) by devkit/deploy_fields.py, which also names the fields: this script
# passes the SDK only what the user decided here (flags, answers to its prompts) and asks
# only for what nothing else gives. Everything is validated before Fivetran is called.
# Run with --help for the options.
set -euo pipefail

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
# shellcheck source=devkit/common.sh
source "$REPO/devkit/common.sh"

usage() {
  cat <<EOF
Usage: ./deploy.sh [options]

Deploys connector.py to Fivetran as a Connector SDK connection (creates it, or updates
an existing one after confirmation). Only ${RUNTIME_FILES[*]} are deployed.

Each deploy field comes from its flag, else the SDK's environment variable, else the
options-file profile, else the SDK's default, exactly as 'fivetran deploy' resolves it.
On a terminal, the script asks only for a destination, connection or key that none of
them gives; without one, a missing input is an error.

Options:
  --destination NAME     Destination (group) name; env FIVETRAN_DESTINATION_NAME
                         (prompt default: ${DEFAULT_DESTINATION}).
  --connection NAME      Connection name: a lowercase letter or _ first, then only a-z,
                         0-9 and _; env FIVETRAN_CONNECTION_NAME.
  --config PATH          Configuration file with the production HED api_key; env
                         FIVETRAN_CONFIGURATION (relative to the project folder, as the
                         SDK reads it); default configuration.json (placeholders only).
  --python-version V     Python version Fivetran runs the connector with; env
                         FIVETRAN_PYTHON_VERSION (default: the SDK's, for a new connection).
  --hybrid-deployment-agent-id ID
                         Hybrid Deployment agent; env FIVETRAN_HD_AGENT_ID.
  --proxy-id ID          Proxy Agent to route the connector's traffic through.
  --proxy-host-config-key KEY
                         Configuration key that holds the host to proxy.
  --naming STRATEGY      FIVETRAN or SOURCE (new connections only); env FIVETRAN_NAMING.
  --options-file PATH    SDK options file (TOML profiles, never an api_key); else
                         FIVETRAN_OPTIONS_FILE, ./options.toml, then
                         ~/.fivetran/connector_sdk/options.toml (Python 3.11+).
  --profile NAME         Profile of the options file (default: default).
  --account NAME         Fivetran account, shown for reference only: the API key decides
                         the account (default: ${DEFAULT_ACCOUNT}).
  --yes                  Answer yes to the SDK's prompts, e.g. to update an existing
                         connection without asking.
  --dry-run              Validate, then print each field with its source, the staged
                         files and the command; call nothing.
  -h, --help             Show this help.

The Fivetran API key (base64 of key:secret) is read from FIVETRAN_API_KEY, or asked for
without echo. It is never printed, and is passed to the SDK in its environment, not on
the command line.
EOF
}

# ---------------------------------------------------------------------------------------
# Arguments

ACCOUNT="$DEFAULT_ACCOUNT"
DESTINATION=""
CONNECTION=""
CONFIG_FLAG=""
OPTIONS_FILE=""
PASS_THROUGH=()
ASSUME_YES=false
DRY_RUN=false

while [[ $# -gt 0 ]]; do
  case "$1" in
    --account | --destination | --connection | --config | --options-file)
      need_value "$@"
      case "$1" in
        --account) ACCOUNT="$2" ;;
        --destination) DESTINATION="$2" ;;
        --connection) CONNECTION="$2" ;;
        --config) CONFIG_FLAG="$2" ;;
        --options-file) OPTIONS_FILE="$(absolute_path "$2" "$PWD")" ;;
      esac
      shift
      ;;
    --python-version | --hybrid-deployment-agent-id | --proxy-id | --proxy-host-config-key | \
      --naming | --profile)
      need_value "$@"
      PASS_THROUGH+=("$1" "$2")
      shift
      ;;
    --yes) ASSUME_YES=true ;;
    --dry-run) DRY_RUN=true ;;
    -h | --help)
      usage
      exit 0
      ;;
    *) reject_option "$1" ;;
  esac
  shift
done

# ---------------------------------------------------------------------------------------
# Tools: a Python with the SDK and its fivetran CLI (the repository's .venv first)

if ! find_sdk_tools "$REPO/.venv"; then
  if [[ -n "$FT" ]]; then
    die "Found $FT, but no Python with the Fivetran SDK to run it (tried its own and python3)."
  fi
  die "The fivetran CLI was not found. Install it with:
  python3 -m venv .venv && .venv/bin/pip install -r requirements-dev.txt
(or run ./run_tests.sh once, which does the same), then rerun ./deploy.sh."
fi

# ---------------------------------------------------------------------------------------
# Checks that need no input

for file in "${RUNTIME_FILES[@]}"; do
  [[ -f "$REPO/$file" ]] || die "Runtime file $file is missing from $REPO."
done

resolve_configuration "$CONFIG_FLAG"
[[ -f "$CONFIG" ]] ||
  die "No configuration file at $CONFIG ($(describe_configuration_source); use --config PATH)."
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
        "  it with --config PATH or FIVETRAN_CONFIGURATION. configuration.json in the\n"
        "  repository holds placeholders only."
    )
PY
ok "Configuration: $CONFIG ($(describe_configuration_source))"

STAGE_ROOT="$(mktemp -d "${TMPDIR:-/tmp}/hed-deploy.XXXXXX")"
cleanup() {
  rm -rf "$STAGE_ROOT"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------------------
# Deploy fields: flag -> environment variable -> options-file profile -> SDK default

# Filled in by resolve_fields: FIELDS (the deploy fields, in the order the SDK logs them),
# and VALUE_, SOURCE_, FLAG_ and ENV_ of each field (those used by name are set here).
FIELDS=()
VALUE_connection="" VALUE_package_id="" OPTIONS_PATH="" OPTIONS_FOUND_BY="" PROFILE=""

# resolve_fields: sets FIELDS, and VALUE_<field>, SOURCE_<field>, FLAG_<field> and
# ENV_<field> for each of them, and OPTIONS_PATH, OPTIONS_FOUND_BY and PROFILE, with the
# SDK's own options-file code. devkit/deploy_fields.py is the one list of the fields.
resolve_fields() {
  local fields_file="$STAGE_ROOT/fields" args=() field value source flag env_var
  [[ -z "$DESTINATION" ]] || args+=(--destination "$DESTINATION")
  [[ -z "$CONNECTION" ]] || args+=(--connection "$CONNECTION")
  [[ -z "$OPTIONS_FILE" ]] || args+=(--options-file "$OPTIONS_FILE")
  # The SDK's messages (a profile it refuses, say) are diagnostics: they go to stderr.
  "$PY" "$REPO/devkit/deploy_fields.py" --output "$fields_file" \
    ${PASS_THROUGH[@]+"${PASS_THROUGH[@]}"} "${args[@]}" >&2 || exit 1
  # Parts are split by the ASCII unit separator: not whitespace, so empty parts are kept.
  while IFS=$'\x1f' read -r field value source flag env_var; do
    case "$field" in
      @options_file)
        OPTIONS_PATH="$value"
        OPTIONS_FOUND_BY="$source"
        ;;
      @profile) PROFILE="$value" ;;
      *)
        FIELDS+=("$field")
        printf -v "VALUE_$field" '%s' "$value"
        printf -v "SOURCE_$field" '%s' "$source"
        printf -v "FLAG_$field" '%s' "$flag"
        printf -v "ENV_$field" '%s' "$env_var"
        ;;
    esac
  done <"$fields_file"
  ((${#FIELDS[@]})) || die "devkit/deploy_fields.py resolved no deploy field."
}

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

# ask_if_unresolved FIELD "Question" DEFAULT: a prompt for a required field that no flag,
# variable or profile gives; the answer reaches the SDK as the field's flag.
ask_if_unresolved() {
  local field="$1" question="$2" default="$3" value_var="VALUE_$1" flag_var="FLAG_$1"
  local env_var="ENV_$1"
  [[ -z "${!value_var}" ]] || return 0
  ask "$value_var" "$question" "$default" \
    "pass ${!flag_var} NAME or set ${!env_var}, or set $field in the options profile [$PROFILE]"
  printf -v "SOURCE_$field" '%s' "prompt"
}

resolve_fields
ask_if_unresolved destination "Fivetran destination name" "$DEFAULT_DESTINATION"
ask_if_unresolved connection "Connection name (e.g. hed_new_custom_connector)" ""
if [[ ! "$VALUE_connection" =~ $CONNECTION_NAME_PATTERN ]]; then
  die "Connection name '$VALUE_connection' is not allowed by Fivetran: it must start with a
  lowercase letter or _, then use only lowercase letters, digits and _ (e.g. hed_new_custom_connector)."
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
# What the CLI gets: only what was decided here; the SDK resolves the rest itself

# options_file_for_cli: the CLI runs in the staging folder, where neither ./options.toml
# nor a relative path would be found, so every file but the SDK's home default goes to it
# by absolute path (and --options-file always, even where this Python cannot read it).
options_file_for_cli() {
  if [[ -n "$OPTIONS_PATH" && "$OPTIONS_FOUND_BY" != home ]]; then
    echo "$OPTIONS_PATH"
  else
    echo "$OPTIONS_FILE"
  fi
}

# pass_if_decided_here FIELD: FIELD's flag and value go to the CLI when they were decided
# here (its flag or a prompt); a variable or profile the SDK reads and logs itself.
pass_if_decided_here() {
  local value_var="VALUE_$1" source_var="SOURCE_$1" flag_var="FLAG_$1"
  if [[ "${!source_var}" == "${!flag_var}" || "${!source_var}" == prompt ]]; then
    DEPLOY_ARGS+=("${!flag_var}" "${!value_var}")
  fi
}

build_deploy_args() {
  DEPLOY_ARGS=(deploy "$STAGE")
  pass_if_decided_here destination
  pass_if_decided_here connection
  DEPLOY_ARGS+=(--configuration "$CONFIG" ${PASS_THROUGH[@]+"${PASS_THROUGH[@]}"})
  local options_file
  options_file="$(options_file_for_cli)"
  [[ -z "$options_file" ]] || DEPLOY_ARGS+=(--options-file "$options_file")
  if [[ "$ASSUME_YES" == true ]]; then
    DEPLOY_ARGS+=(--yes)
  elif [[ "$INTERACTIVE" != true ]]; then
    # No one to answer the SDK's prompts: take their defaults (an existing connection is then
    # left unchanged and the SDK exits non-zero). Pass --yes to update it.
    DEPLOY_ARGS+=(--non-interactive)
  fi
}

# describe_source SOURCE: the SDK's wording ("provided via X", "using SDK built-in default").
describe_source() {
  case "$1" in
    "SDK built-in default"*) echo "using $1" ;;
    prompt) echo "provided via prompt" ;;
    *) echo "provided via $1" ;;
  esac
}

print_options_file() {
  local profile="profile [$PROFILE]"
  case "$OPTIONS_FOUND_BY" in
    unsupported) echo "Options file:  not read (the SDK reads options files on Python 3.11+)" ;;
    none)
      echo "Options file:  none (looked for --options-file, FIVETRAN_OPTIONS_FILE, ./options.toml"
      echo "               and ~/.fivetran/connector_sdk/options.toml; the SDK may create the last"
      echo "               once, from your existing connections: its one-time migration)"
      ;;
    home) echo "Options file:  $OPTIONS_PATH (the SDK's default location), $profile" ;;
    *) echo "Options file:  $OPTIONS_PATH (from $OPTIONS_FOUND_BY), $profile" ;;
  esac
}

print_fields() {
  local field value_var source_var
  echo "Deploy fields, as 'fivetran deploy' resolves them:"
  for field in "${FIELDS[@]}"; do
    value_var="VALUE_$field" source_var="SOURCE_$field"
    if [[ -n "${!value_var}" ]]; then
      printf '  %s = %s (%s)\n' "$field" "${!value_var}" "$(describe_source "${!source_var}")"
    elif [[ -n "${!source_var}" ]]; then
      printf '  %s: %s\n' "$field" "${!source_var}"
    fi
  done
  if [[ "$CONFIG_SOURCE" == default ]]; then
    printf '  configuration = %s (the default, configuration.json)\n' "$CONFIG"
  else
    printf '  configuration = %s (provided via %s)\n' "$CONFIG" "$CONFIG_SOURCE"
  fi
  if [[ -n "$VALUE_package_id" ]]; then
    note "package_id is set: the SDK deploys that existing package, not the staged files."
  fi
}

# The SDK's environment variables this deploy relies on (each field's own, when it won).
environment_sources() {
  local field source_var names=()
  for field in "${FIELDS[@]}"; do
    source_var="SOURCE_$field"
    [[ "${!source_var}" != FIVETRAN_* ]] || names+=("${!source_var}")
  done
  echo "FIVETRAN_API_KEY${names[*]+ ${names[*]}}"
}

readonly STAGE="$STAGE_ROOT/$STAGE_NAME"
stage_runtime_files "$STAGE"
build_deploy_args

echo "Account:       $ACCOUNT (for reference: the API key decides the account)"
print_options_file
print_fields
echo "Files:         ${RUNTIME_FILES[*]}"

if [[ "$DRY_RUN" == true ]]; then
  echo
  echo "Dry run: nothing was called. The staged folder would hold:"
  list_staged_files "$STAGE"
  printf 'and this command would run in it:\n  FIVETRAN_API_KEY=**** %q' "$FT"
  printf ' %q' "${DEPLOY_ARGS[@]}"
  echo
  echo "with these from the environment: $(environment_sources)"
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
