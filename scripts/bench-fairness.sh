#!/usr/bin/env bash
# Fairness across companies, measured with `moneyflow bench` and two
# companies: company A queues a backlog on a server whose runs are held
# (`moneyflow up --hold-runs`, `bench --send-only`); the server restarts
# without the hold and starts draining it, and meanwhile company B sends a
# steady trickle (`bench --rate`, open loop). The second report's
# event→finished p50/p99 are B's runs only, measured while A's backlog
# drained; the queue depth B started against is printed before it.
#
#   scripts/bench-fairness.sh target/release/moneyflow [backlog] [rate] [seconds]
#   (defaults: a backlog of 100000 runs, B at 20 events/s for 15 s)
#   SERVER_FLAGS="--max-in-flight-runs 64" adds flags to the draining server.
set -euo pipefail
binary=$1
backlog=${2:-100000}
rate=${3:-20}
seconds=${4:-15}
port=${BENCH_PORT:-8317}
url="http://127.0.0.1:$port"
data=$(mktemp -d)
server=
stop() { [ -z "$server" ] || { kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; }; }
trap 'stop; rm -rf "$data"' EXIT

start() { # extra flags…
  MONEYFLOW_ADMIN_TOKEN=bench "$binary" up --data-dir "$data" --port "$port" --demo false "$@" \
    >>"$data.log" 2>&1 &
  server=$!
  for _ in $(seq 1 300); do
    curl -fs "$url/" >/dev/null && return 0
    sleep 0.1
  done
  cat "$data.log" >&2
  echo "the server did not come up" >&2
  exit 1
}
queue_depth() {
  curl -fs -H "Authorization: Bearer bench" "$url/metrics" |
    awk '/^moneyflow_queue_depth /{print $2}'
}

echo "== company A: $backlog events onto a held server"
start --hold-runs
"$binary" bench --url "$url" --admin-token bench -n "$backlog" -c 64 --send-only 2>/dev/null |
  grep -E "accepted|MoneyFlow bench"
stop

echo "== restart without --hold-runs ${SERVER_FLAGS:-}; company B at $rate events/s for ${seconds}s while A drains"
# shellcheck disable=SC2086 # the flags are words
started=$(date +%s.%N)
start ${SERVER_FLAGS:-}
depth=$(queue_depth)
echo "queue depth as B starts: $depth"
"$binary" bench --url "$url" --admin-token bench --rate "$rate" --duration "$seconds" 2>/dev/null
awk -v s="$started" -v e="$(date +%s.%N)" -v n="$depth" 'BEGIN {
  printf "the backlog and B drained %.1f s after the restart: %.0f runs/s\n", e - s, n / (e - s) }'
