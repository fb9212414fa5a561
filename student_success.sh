#!/usr/bin/env bash
# Serve the StudentSuccess preview: the retention dashboard over the local debug warehouse.
#
# Creates or reuses .venv (devkit/venv.sh), installs student_success/requirements.txt into it
# on first use (again only when that file changes), then serves the app on loopback until
# Ctrl-C or SIGTERM. Dev-side only: deploy.sh never ships it. Run with --help for the options.
set -euo pipefail

# Streamlit's own default port.
readonly DEFAULT_PORT=8501
# Student records: served to this machine only.
readonly LOOPBACK=127.0.0.1
readonly MAX_PORT=65535

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly REPO
readonly VENV="$REPO/.venv"
readonly APP_REQUIREMENTS="$REPO/student_success/requirements.txt"

usage() {
  cat <<EOF
Usage: ./student_success.sh [options]

Serves StudentSuccess, the retention dashboard advisors use in Snowflake, over the local
warehouse that ./debug_and_reset.sh writes: KPI tiles, six charts, summary statistics, an
at-risk worklist, a data-quality panel and a paged explorer. Read-only; runs until Ctrl-C.
The first run installs student_success/requirements.txt (Streamlit) into .venv.

Options:
  --port N      Port on ${LOOPBACK} to serve on (default: ${DEFAULT_PORT}).
  --db PATH     DuckDB warehouse to show (default: files/warehouse.db).
  -h, --help    Show this help.

Quickstart: ./debug_and_reset.sh --local --yes && ./student_success.sh
EOF
}

# shellcheck source=devkit/common.sh
source "$REPO/devkit/common.sh"
# shellcheck source=devkit/venv.sh
source "$REPO/devkit/venv.sh"

PORT="$DEFAULT_PORT"
DB="$REPO/files/warehouse.db"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --port)
      need_value "$@"
      PORT="$2"
      shift
      ;;
    --db)
      need_value "$@"
      DB="$(absolute_path "$2" "$PWD")"
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

if [[ ! "$PORT" =~ ^[1-9][0-9]*$ ]] || ((PORT > MAX_PORT)); then
  err "--port must be a whole number from 1 to ${MAX_PORT} (got '$PORT')."
  usage >&2
  exit 2
fi

port_is_free() {
  "$VENV/bin/python" - "$LOOPBACK" "$PORT" <<'EOF' 2>/dev/null
import socket
import sys

with socket.socket() as probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    probe.bind((sys.argv[1], int(sys.argv[2])))
EOF
}

ensure_requirements "$VENV" "$REPO/requirements-dev.txt" || die "Could not set up $VENV."
# Streamlit and what it brings: on first use, then only when the file changes.
ensure_requirements "$VENV" "$APP_REQUIREMENTS" || die "Installing $APP_REQUIREMENTS failed."
port_is_free || die "Port $PORT on $LOOPBACK is in use: pass --port N with a free port."
[[ -f "$DB" ]] || note "No warehouse at $DB yet: the page says how to create one."

cd "$REPO"
export STUDENT_SUCCESS_DB="$DB"
echo "StudentSuccess preview at http://$LOOPBACK:$PORT (warehouse: $DB). Ctrl-C stops it."
# exec: Ctrl-C and SIGTERM reach Streamlit itself, which stops cleanly.
exec "$VENV/bin/python" -m streamlit run "$REPO/student_success/app.py" \
  --server.address "$LOOPBACK" \
  --server.port "$PORT" \
  --server.headless true \
  --server.fileWatcherType none \
  --browser.gatherUsageStats false \
  --client.toolbarMode minimal
