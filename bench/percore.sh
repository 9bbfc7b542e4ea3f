#!/usr/bin/env bash
# One runtime per core against one multi-threaded runtime: the BFF's `runtime.mode` measured.
#
#   cargo build --release -p portico-bench
#   bench/percore.sh                          # PATHS="rest graphql-flat graphql-nested"
#
# Two BFFs over the same demo backends, each one process (`portico-load bff`, the code of
# `bff-web --config FILE`): "multi" with `runtime: { mode: multi_thread }` (one tokio worker per
# core, work stealing, shared backend connections) and "per-core" with `runtime: { mode:
# per_core }` (one single-threaded runtime per core, each with its own SO_REUSEPORT listener
# and its own backend connections). The same wrk -t2 -cC load against each, alternating
# rounds; prints throughput, the BFF's CPU time per request (utime + stime from
# /proc/PID/stat) and its resident memory after the load. Knobs: BIN, CONNECTIONS (32),
# DURATION (8), ROUNDS (3), WARMUP (2), PATHS, KEEP_WORK=1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/target/release/portico-load}
connections=${CONNECTIONS:-32}
duration=${DURATION:-8}
rounds=${ROUNDS:-3}
warmup=${WARMUP:-2}
paths=${PATHS:-rest graphql-flat graphql-nested}
cores=$(nproc)
[ -x "$bin" ] || { echo "no $bin: cargo build --release -p portico-bench" >&2; exit 1; }
command -v wrk >/dev/null || { echo "needs wrk (bench/peers/setup.sh installs it)" >&2; exit 1; }

work=$(mktemp -d)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
cleanup() {
  stop_all
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

start_backends
write_bff_config "$work/multi.yaml" "runtime: { mode: multi_thread }"
write_bff_config "$work/percore.yaml" "runtime: { mode: per_core }"
start multi bff --config "$work/multi.yaml"
multi_pid=$pid
multi=$(addr_of multi)
start percore bff --config "$work/percore.yaml"
percore_pid=$pid
percore=$(addr_of percore)
write_queries
declare -A target lua
target[rest]=/v1/users/1; lua[rest]=
target[graphql-flat]=/graphql; lua[graphql-flat]=$work/flat.lua
target[graphql-nested]=/graphql; lua[graphql-nested]=$work/nested.lua

# The same answer from both shapes.
for p in $paths; do
  [ -n "${target[$p]:-}" ] || { echo "unknown path $p" >&2; exit 2; }
  for base in "$multi" "$percore"; do
    if [ -n "${lua[$p]}" ]; then
      curl -sS -H 'content-type: application/json' --data-binary "@${lua[$p]%.lua}.json" "$base${target[$p]}"
    else
      curl -sS "$base${target[$p]}"
    fi | jq -S -c . >"$work/answer.$p.$(echo "$base" | tr -c '0-9\n' _)"
  done
  if [ "$(cat "$work"/answer."$p".* | sort -u | wc -l)" != 1 ] || grep -q '"errors"' "$work"/answer."$p".*; then
    echo "$p: the BFFs answer differently (or with errors)" >&2; head -c 400 "$work"/answer."$p".* >&2; exit 1
  fi
done

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
hz=$(getconf CLK_TCK)

# wrk_to SECONDS PATH BASE THREADS CONNECTIONS OUT
wrk_to() {
  wrk -t"$4" -c"$5" -d"${1}s" ${lua[$2]:+-s "${lua[$2]}"} "$3${target[$2]}" >"$6"
}
# requests and seconds of a wrk output
wrk_n() { awk '/requests in/ { print $1 }' "$1"; }
wrk_s() { awk '/requests in/ { sub(/s,$/, "", $4); print $4 }' "$1"; }
check_wrk() {
  if grep -q 'Non-2xx\|Socket errors' "$1"; then echo "wrk saw failures:" >&2; cat "$1" >&2; exit 1; fi
}

declare -A reqs secs cpu
# measure PATH multi|percore [SECONDS]: one round (added to the totals unless a warm-up).
measure() {
  local p=$1 who=$2 d=${3:-$duration} t0 t1 n s pid base
  if [ "$who" = multi ]; then pid=$multi_pid base=$multi; else pid=$percore_pid base=$percore; fi
  t0=$(ticks "$pid")
  wrk_to "$d" "$p" "$base" 2 "$connections" "$work/wrk.out"
  t1=$(ticks "$pid")
  [ -z "${3:-}" ] || return 0
  check_wrk "$work/wrk.out"
  n=$(wrk_n "$work/wrk.out") s=$(wrk_s "$work/wrk.out")
  reqs[$p.$who]=$(( ${reqs[$p.$who]:-0} + n ))
  secs[$p.$who]=$(awk -v a="${secs[$p.$who]:-0}" -v b="$s" 'BEGIN { print a + b }')
  cpu[$p.$who]=$(( ${cpu[$p.$who]:-0} + t1 - t0 ))
  awk -v p="$p" -v w="$who" -v n="$n" -v s="$s" -v c=$((t1 - t0)) -v hz="$hz" 'BEGIN {
    printf "  %s %s: %.0f req/s, %.1f µs CPU/req\n", p, w, n / s, c / hz / n * 1e6 }' >&2
}

started=$(date -u +%Y-%m-%dT%H:%MZ)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for p in $paths; do
  echo "$p:" >&2
  measure "$p" multi "$warmup"
  measure "$p" percore "$warmup"
  for r in $(seq "$rounds"); do
    if [ $((r % 2)) -eq 1 ]; then measure "$p" multi; measure "$p" percore
    else measure "$p" percore; measure "$p" multi; fi
  done
done
multi_rss=$(rss_kb "$multi_pid")
percore_rss=$(rss_kb "$percore_pid")

echo
echo "$cores cores, $started, load average before $load_before; $rounds alternating rounds of" \
  "${duration}s, wrk -t2 -c$connections against each BFF"
echo
echo "| path | multi-threaded req/s | per-core req/s | ratio | CPU µs/req multi | per-core | ratio |"
echo "|---|--:|--:|--:|--:|--:|--:|"
for p in $paths; do
  awk -v p="$p" -v hz="$hz" \
    -v n1="${reqs[$p.multi]}" -v s1="${secs[$p.multi]}" -v c1="${cpu[$p.multi]}" \
    -v n2="${reqs[$p.percore]}" -v s2="${secs[$p.percore]}" -v c2="${cpu[$p.percore]}" 'BEGIN {
      r1 = n1 / s1; r2 = n2 / s2; u1 = c1 / hz / n1 * 1e6; u2 = c2 / hz / n2 * 1e6
      printf "| %s | %.0f | %.0f | %.2fx | %.1f | %.1f | %.2fx |\n", p, r1, r2, r2 / r1, u1, u2, u2 / u1 }'
done
echo
echo "Resident memory after the load: multi-threaded $((multi_rss / 1024)) MB, per-core $((percore_rss / 1024)) MB."
