#!/usr/bin/env bash
# Starts a fresh `moneyflow up` from the given binary, runs that binary's
# `moneyflow bench` against it, and prints, measured from outside the server
# (so that any two builds compare the same way): the bench's own report, the
# server's user + system CPU time per finished run (from /proc/<pid>/stat)
# and the data directory's size per finished run (du after the bench).
#
#   scripts/bench-server.sh target/release/moneyflow [bench options…]
#   (default bench options: -n 20000 -c 64)
#   SERVER_FLAGS="--max-in-flight-runs 512" adds flags to the server.
set -euo pipefail
binary=$1; shift
options=("$@")
[ ${#options[@]} -gt 0 ] || options=(-n 20000 -c 64)
port=${BENCH_PORT:-8316}
data=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$data"' EXIT

# shellcheck disable=SC2086 # the flags are words
MONEYFLOW_ADMIN_TOKEN=bench "$binary" up --data-dir "$data" --port "$port" --demo false ${SERVER_FLAGS:-} \
  >"$data.log" 2>&1 &
server=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.1
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
before=$(cpu_ticks)
report=$("$binary" bench --url "http://127.0.0.1:$port" --admin-token bench "${options[@]}" 2>/dev/null)
after=$(cpu_ticks)
echo "$report"
runs=$(sed -n 's/^ *finished runs  *\([0-9]*\) .*/\1/p' <<<"$report" | head -1)
[ -n "$runs" ] && [ "$runs" -gt 0 ] || { echo "no finished runs in the report" >&2; exit 1; }
bytes=$(du -sb "$data" | cut -f1)
awk -v t="$((after - before))" -v hz="$(getconf CLK_TCK)" -v runs="$runs" -v bytes="$bytes" 'BEGIN {
  printf "outside the server: %d runs, CPU %.0f µs/run, data directory %.2f KiB/run\n",
    runs, t / hz / runs * 1e6, bytes / runs / 1024 }'
