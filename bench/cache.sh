#!/usr/bin/env bash
# The response cache under load: the same BFF config with and without `cache`, over the same
# demo backends, measured with wrk (throughput and latency percentiles) for a REST read and a
# nested GraphQL query. With the cache every request after the first is a hit; without it
# every request is a miss (the backend calls made each time).
#
#   cargo build --release -p portico-bench
#   bench/cache.sh                            # BACKEND_LATENCY=5ms bench/cache.sh
#
# Knobs: BIN, CONNECTIONS (32), DURATION (8), ROUNDS (3), WARMUP (2), BACKEND_LATENCY (the
# demo backends' delay per call, e.g. 5ms; default none), KEEP_WORK=1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/target/release/portico-load}
connections=${CONNECTIONS:-32}
duration=${DURATION:-8}
rounds=${ROUNDS:-3}
warmup=${WARMUP:-2}
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

start_backends ${BACKEND_LATENCY:+--latency "$BACKEND_LATENCY"}
write_bff_config "$work/miss.yaml"
write_bff_config "$work/hit.yaml" "cache:
  methods:
    demo.v1.CatalogService.GetProduct: { ttl: 1h }
    demo.v1.CatalogService.BatchGetProducts: { ttl: 1h }
    demo.v1.UserService.GetUser: { ttl: 1h }
    demo.v1.OrderService.ListOrdersByUser: { ttl: 1h }"

declare -A addr pid_of
for who in miss hit; do
  start "$who" bff --config "$work/$who.yaml"
  pid_of[$who]=$pid
  addr[$who]=$(addr_of "$who")
done

write_queries
declare -A target lua
target[rest]=/v1/products/p-1; lua[rest]=
target[graphql-nested]=/graphql; lua[graphql-nested]=$work/nested.lua
paths="rest graphql-nested"

for p in $paths; do
  for who in miss hit; do
    if [ -n "${lua[$p]}" ]; then
      curl -sS -H 'content-type: application/json' --data-binary "@$work/nested.json" "${addr[$who]}${target[$p]}"
    else
      curl -sS "${addr[$who]}${target[$p]}"
    fi | jq -S -c . >"$work/answer.$p.$who"
  done
  if ! cmp -s "$work/answer.$p.miss" "$work/answer.$p.hit" || grep -q '"errors"' "$work/answer.$p.miss"; then
    echo "$p: the two BFFs answer differently (or with errors)" >&2; exit 1
  fi
done

hz=$(getconf CLK_TCK)
# wrk's latency line value in microseconds ("1.23ms", "456.78us", "1.02s").
to_us() { awk '{ v = $1; if (v ~ /us$/) { sub(/us$/, "", v); print v } else if (v ~ /ms$/) { sub(/ms$/, "", v); print v * 1000 } else { sub(/s$/, "", v); print v * 1000000 } }' <<<"$1"; }

declare -A reqs secs cpu p50 p99
measure() {
  local p=$1 who=$2 d=${3:-$duration} out t0 t1 n s
  t0=$(ticks "${pid_of[$who]}")
  out=$(wrk -t2 -c"$connections" -d"${d}s" --latency ${lua[$p]:+-s "${lua[$p]}"} "${addr[$who]}${target[$p]}")
  t1=$(ticks "${pid_of[$who]}")
  [ -z "${3:-}" ] || return 0
  if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then echo "$p $who: wrk saw failures" >&2; echo "$out" >&2; exit 1; fi
  n=$(awk '/requests in/ { print $1 }' <<<"$out")
  s=$(awk '/requests in/ { sub(/s,$/, "", $4); print $4 }' <<<"$out")
  reqs[$p.$who]=$(( ${reqs[$p.$who]:-0} + n ))
  secs[$p.$who]=$(awk -v a="${secs[$p.$who]:-0}" -v b="$s" 'BEGIN { print a + b }')
  cpu[$p.$who]=$(( ${cpu[$p.$who]:-0} + t1 - t0 ))
  # Latency percentiles: the median of the rounds' figures is kept (last round wins ties).
  p50[$p.$who]="${p50[$p.$who]:-} $(to_us "$(awk '$1 == "50%" { print $2 }' <<<"$out")")"
  p99[$p.$who]="${p99[$p.$who]:-} $(to_us "$(awk '$1 == "99%" { print $2 }' <<<"$out")")"
  awk -v p="$p" -v w="$who" -v n="$n" -v s="$s" 'BEGIN { printf "  %s %s: %.0f req/s\n", p, w, n / s }' >&2
}
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

started=$(date -u +%Y-%m-%dT%H:%MZ)
for p in $paths; do
  echo "$p:" >&2
  measure "$p" miss "$warmup"
  measure "$p" hit "$warmup"
  for r in $(seq "$rounds"); do
    if [ $((r % 2)) -eq 1 ]; then measure "$p" miss; measure "$p" hit
    else measure "$p" hit; measure "$p" miss; fi
  done
done

echo
echo "$(nproc) cores, $started; wrk -t2 -c$connections, $rounds alternating rounds of ${duration}s;" \
  "backend latency ${BACKEND_LATENCY:-none}"
echo
echo "| path | miss req/s | hit req/s | ratio | p50 miss | p50 hit | p99 miss | p99 hit | BFF CPU µs/req miss | hit |"
echo "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
for p in $paths; do
  awk -v p="$p" -v hz="$hz" \
    -v n1="${reqs[$p.miss]}" -v s1="${secs[$p.miss]}" -v c1="${cpu[$p.miss]}" \
    -v n2="${reqs[$p.hit]}" -v s2="${secs[$p.hit]}" -v c2="${cpu[$p.hit]}" \
    -v a1="$(median "${p50[$p.miss]}")" -v a2="$(median "${p50[$p.hit]}")" \
    -v b1="$(median "${p99[$p.miss]}")" -v b2="$(median "${p99[$p.hit]}")" 'BEGIN {
      r1 = n1 / s1; r2 = n2 / s2
      printf "| %s | %.0f | %.0f | %.2fx | %.0f µs | %.0f µs | %.0f µs | %.0f µs | %.1f | %.1f |\n",
        p, r1, r2, r2 / r1, a1, a2, b1, b2, c1 / hz / n1 * 1e6, c2 / hz / n2 * 1e6 }'
done
