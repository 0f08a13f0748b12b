#!/usr/bin/env bash
# Runs the canvas's browser tests against a real `moneyflow up`: builds the
# binary and the UI, starts the server on a free port with a fresh data
# directory, runs `npm run e2e` (playwright-core driving /usr/bin/chromium),
# and stops the server whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --locked -p moneyflow-server --bin moneyflow
(cd ui && npm run build --silent)

data_dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
token="mfa_e2e_$(date +%s)"
log="$data_dir/server.log"

MONEYFLOW_ADMIN_TOKEN=$token target/debug/moneyflow up --port "$port" --data-dir "$data_dir" --ui-dir ui/dist >"$log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$data_dir"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
  if curl -fsS "http://127.0.0.1:$port/" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$log"; echo "moneyflow up exited" >&2; exit 1; fi
  sleep 0.2
done

cd ui
MONEYFLOW_URL="http://127.0.0.1:$port" MONEYFLOW_ADMIN_TOKEN=$token E2E_SKIP_BUILD=1 npm run e2e
