#!/usr/bin/env bash
# A/B of reflex binaries on the embedded default, interleaved, so that
# variants measured minutes apart on a shared machine can be compared:
#
#   scripts/bench-ab.sh /tmp/reflex-before ./bin/reflex
#
# Each run starts a fresh server (its own data dir, random localhost ports,
# so it does not collide with :3009), runs `reflex loadgen --rate 0` for
# $DUR (default 20s) with the last binary's load generator, prints its
# result and the intake envelope metrics, and stops the server by its PID.
# RUNS (default 2) rounds; extra arguments after -- go to loadgen. With
# WARM set (a duration), each run first posts load for WARM, unmeasured,
# so that the measured part starts from a warm state (rule throttles
# already spent, as on a server that has been up for a while). A
# variant may carry loadgen flags of its own after an @, so that one binary
# is compared with itself under two loads:
#
#   scripts/bench-ab.sh ./bin/reflex './bin/reflex@--rules 1000'
set -u
bins=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do bins+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
[ ${#bins[@]} -gt 0 ] || { echo "usage: $0 BINARY... [-- loadgen flags]" >&2; exit 2; }
lg=${bins[-1]%%@*}
TOKEN=bench-admin-token
DUR=${DUR:-20s}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
run() {
  local variant=$1 i=$2
  shift 2
  local bin=${variant%%@*} own=()
  [ "$bin" != "$variant" ] && read -r -a own <<<"${variant#*@}"
  local dir=$work/data port=$((24000 + RANDOM % 2000)) aport=$((26000 + RANDOM % 2000))
  rm -rf "$dir"
  REFLEX_ADMIN_TOKEN=$TOKEN "$bin" server --data-dir "$dir" --log-level warn \
    --events-addr 127.0.0.1:$port --autonomous-addr 127.0.0.1:$aport >"$work/server.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 300); do curl -fsS 127.0.0.1:$port/readyz >/dev/null 2>&1 && break; sleep 0.1; done
  if [ -n "${WARM:-}" ]; then
    "$lg" loadgen --url http://127.0.0.1:$port --token $TOKEN --quiet --rate 0 --duration "$WARM" --drain 300s "$@" "${own[@]}" >/dev/null 2>&1
  fi
  echo "### $variant run $i ($(date -u +%T), load $(cut -d' ' -f1 /proc/loadavg))"
  "$lg" loadgen --url http://127.0.0.1:$port --token $TOKEN --quiet --rate 0 --duration "$DUR" --drain 120s "$@" "${own[@]}" 2>&1 | tail -12
  curl -fsS 127.0.0.1:$port/metrics | grep -E '^reflex_intake_envelope_events_(sum|count)|^reflex_intake_envelopes_total|^reflex_store_batch_size_(sum|count)' || true
  kill -TERM $pid; wait $pid
}
for i in $(seq 1 "${RUNS:-2}"); do
  for b in "${bins[@]}"; do run "$b" "$i" "$@"; done
done
