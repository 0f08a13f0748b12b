#!/usr/bin/env bash
# The API contract test: schemathesis with every check (`--checks all`)
# against a real `moneyflow up` (debug build, fresh SQLite data directory),
# once with the admin token and once with the demo company's API key, each
# with a fixed seed and a time budget. Any failure fails the script: every
# status a route answers must be documented, requests the schema allows must
# be accepted, requests it forbids refused, and responses must match.
#
#   CONTRACT_SECONDS   time budget of the admin pass (default 150); the
#                      company pass gets a third of it
#   CONTRACT_SEED      schemathesis seed (default 20261201)
#
# One worker and a fixed seed make the cases a fixed sequence: a machine
# with less time (or less speed) runs a beginning of the same sequence, so
# a run with a longer budget covers what a shorter one would find.
#
# schemathesis comes from PyPI into a virtualenv under target/ (pinned).
set -euo pipefail
cd "$(dirname "$0")/.."

version=4.32.5
seconds=${CONTRACT_SECONDS:-150}
seed=${CONTRACT_SEED:-20261201}
venv=target/schemathesis-venv
report_dir=target/schemathesis-report

if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $version"; then
  echo "installing schemathesis $version into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi

cargo build --locked -p moneyflow-server --bin moneyflow

data_dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
admin_token=${MONEYFLOW_ADMIN_TOKEN:-mfa_contract_$(date +%s)}
log="$data_dir/server.log"

MONEYFLOW_ADMIN_TOKEN=$admin_token target/debug/moneyflow up --port "$port" --data-dir "$data_dir" >"$log" 2>&1 &
server=$!
cleanup() {
  kill "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$data_dir"
}
trap cleanup EXIT

base="http://127.0.0.1:$port"
for _ in $(seq 1 150); do
  if curl -fsS "$base/" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then cat "$log"; echo "moneyflow up exited" >&2; exit 1; fi
  sleep 0.2
done
company_key=$(sed -n 's/^ *Demo API key: *\(mfk_[^ ]*\).*/\1/p' "$log" | head -1)
if [ -z "$company_key" ]; then
  cat "$log"
  echo "the banner printed no demo API key" >&2
  exit 1
fi

mkdir -p "$report_dir"
# One pass; run again once when schemathesis itself failed (its exit code 2
# and up: an internal error, not a finding about the API).
pass() { # name, token, seconds
  local name=$1 token=$2 budget=$3 status
  for attempt in 1 2; do
    echo "== schemathesis, $name, ${budget}s, seed $seed (attempt $attempt)"
    status=0
    MONEYFLOW_CONTRACT_TOKEN=$token "$venv/bin/schemathesis" --config-file scripts/schemathesis.toml \
      run "$base/openapi.json" \
      --checks all --seed "$seed" --max-time "$budget" --workers 1 \
      --suppress-health-check all --no-color \
      --report junit --report-junit-path "$report_dir/$name.xml" || status=$?
    if [ "$status" -lt 2 ]; then return "$status"; fi
    echo "schemathesis exited $status (its own error); trying once more" >&2
  done
  return "$status"
}

result=0
pass admin "$admin_token" "$seconds" || result=$?
pass company "$company_key" "$((seconds / 3))" || result=$?
if [ "$result" -ne 0 ]; then
  echo "contract: schemathesis found failures (reports in $report_dir); server log:" >&2
  grep -E " (WARN|ERROR) " "$log" | tail -n 20 >&2 || true
fi
exit "$result"
