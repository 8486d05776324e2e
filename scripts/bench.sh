#!/usr/bin/env bash
# Runs the end-to-end load measurements of docs/benchmarks.md against a
# freshly built reflex: embedded defaults (SQLite + embedded NATS), then
# PostgreSQL + an external NATS (REFLEX_BENCH_DATABASE_URL,
# REFLEX_BENCH_NATS_URL). Each mode gets a fresh data dir / database /
# stream. Output: one block per scenario on standard output.
set -euo pipefail
cd "$(dirname "$0")/.."
PGURL=${REFLEX_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
NATSURL=${REFLEX_BENCH_NATS_URL:-nats://127.0.0.1:4222}
MODES=${MODES:-"embedded postgres"}
TOKEN=bench-admin-token
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

make build >/dev/null

start_server() {
  local mode=$1
  local args=(server --data-dir "$work/data-$mode" --log-level warn)
  if [ "$mode" = postgres ]; then
    psql "$PGURL" -qc "DROP DATABASE IF EXISTS reflex_bench WITH (FORCE)" -c "CREATE DATABASE reflex_bench"
    local db=${PGURL/\/test?/\/reflex_bench?}
    args+=(--database-url "$db" --nats-url "$NATSURL" --nats-stream "REFLEX_BENCH_$$" --nats-subject-prefix "reflex.bench.$$")
  fi
  REFLEX_ADMIN_TOKEN=$TOKEN ./bin/reflex "${args[@]}" >"$work/server-$mode.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 100); do
    curl -fsS localhost:3009/readyz >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  cat "$work/server-$mode.log"; return 1
}

stop_server() {
  kill -TERM "$server_pid"; wait "$server_pid" || true
}

lg() { ./bin/reflex loadgen --token "$TOKEN" --quiet "$@"; }

for mode in $MODES; do
  start_server "$mode"
  echo "### $mode: sustained 20,000 events/s for 60 s (batches of 100)"
  lg --rate 20000 --duration 60s --drain 120s
  echo "### $mode: 5,000 events/s for 60 s"
  lg --rate 5000 --duration 60s --drain 60s
  for i in 1 2 3; do
    echo "### $mode: critical events at 100/s while a backlog of 200,000 low events is worked off (run $i)"
    lg --backlog 200000 --rate 100 --duration 120s --drain 60s
  done
  echo "### $mode: as fast as accepted for 60 s"
  lg --rate 0 --duration 60s --drain 180s
  stop_server
done
