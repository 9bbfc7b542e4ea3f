#!/usr/bin/env bash
# The peer comparison benchmark: Portico next to grpc-gateway (REST) and Tailcall (GraphQL),
# all three in front of the SAME demo gRPC backends, measured with the same wrk load.
#
#   cargo build --release -p portico-bench     # target/release/portico-load
#   bench/peers/compare.sh                     # installs the peers first (bench/peers/setup.sh)
#
# What it does: runs setup.sh (idempotent; SKIP_SETUP=1 skips it), starts the demo backends
# once (`portico-load backend`), Portico's BFF on them (`portico-load bff`, the same code as
# `bff-web --config FILE`, access log off, RUST_LOG=warn), grpc-gateway 1.6.4 and Tailcall
# 1.6.14 (log level warn) on the same backends; checks that each answers every query once with
# the same JSON as Portico (jq -S; it stops on a difference unless ALLOW_MISMATCH=1); then for
# each path runs wrk against Portico and the peer in alternating rounds, and prints a markdown
# table: throughput, the gateway's CPU time per request (utime + stime of the gateway
# process from /proc/PID/stat over each round, divided by the round's requests), ratios
# Portico / peer, and the median of the rounds' p50 latencies (wrk --latency; with
# CONNECTIONS=1 THREADS=1, one request at a time). A second table gives the backends' CPU
# per request behind each gateway.
#
# Paths (PATHS, space-separated; default all four):
#   rest                      GET /v1/users/1                      Portico vs grpc-gateway
#   graphql-flat              user(id) with 13 fields              Portico vs Tailcall
#   graphql-nested            user -> orders -> items -> product   Portico vs Tailcall
#   graphql-nested-unbatched  the same, Portico's product link without its batch call
# Tailcall cannot batch OrderItem.product (see bench/peers/tailcall/schema.graphql): it calls
# GetProduct once per item (6 calls), where Portico makes one BatchGetProducts call;
# graphql-nested-unbatched runs a second Portico whose link calls GetProduct per item too.
#
# Knobs (environment): BIN (portico-load; default target/release/portico-load of this
# checkout), BFF (a BFF binary to measure instead of `portico-load bff`, run as `BFF --config
# FILE`: `BFF=target/release/bff-web` measures the shipped build, laid out by
# gateway/link/order.txt, which portico-load's build is not; WORKERS does not apply), BIN_WAIT (seconds to wait for BIN to appear, polled every 30 s; default 0),
# CONNECTIONS (32), THREADS (wrk threads, 2), DURATION (seconds per round, 8), ROUNDS (3),
# WARMUP (seconds, unmeasured, per gateway and path, 2), WORKERS (Portico's tokio workers, or
# cores with per_core; default one per core, as Tailcall's and Go's defaults), RUNTIME
# (Portico's `runtime.mode`: multi_thread or per_core; default: the config's default), PEERS_CACHE (setup.sh's cache,
# default $HOME/.cache/portico-peers), TAILCALL_PORT (the first port tried, 18090; Tailcall
# takes no port 0), ALLOW_MISMATCH=1 (measure even when the answers differ), KEEP_WORK=1 (keep
# the temporary folder: configs, logs).
#
# Everything runs on this machine and competes for its cores: wrk, the gateway and the
# backends. Each round also reports the share of the CPU other processes took (a build running
# beside it shows there). Read the ratios with the CPU per request, which moves less.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/bench/peers
cache=${PEERS_CACHE:-$HOME/.cache/portico-peers}
bin=${BIN:-$root/target/release/portico-load}
connections=${CONNECTIONS:-32}
threads=${THREADS:-2}
duration=${DURATION:-8}
rounds=${ROUNDS:-3}
warmup=${WARMUP:-2}
paths=${PATHS:-rest graphql-flat graphql-nested graphql-nested-unbatched}

# --- the Portico binary (built by the developer, never here) --------------------------------
waited=0
while [ ! -x "$bin" ]; do
  if [ "$waited" -ge "${BIN_WAIT:-0}" ]; then
    echo "no $bin: build it with 'cargo build --release -p portico-bench' (or set BIN=)" >&2
    exit 1
  fi
  echo "waiting for $bin ..." >&2
  sleep 30
  waited=$((waited + 30))
done

# --- the peers ----------------------------------------------------------------------------
if [ -z "${SKIP_SETUP:-}" ]; then
  "$here/setup.sh" >/dev/null
fi
gw_bin=$cache/bin/portico-grpc-gateway
tc_bin=$cache/bin/tailcall
for b in "$gw_bin" "$tc_bin"; do
  [ -x "$b" ] || { echo "no $b: run bench/peers/setup.sh" >&2; exit 1; }
done
for t in wrk jq curl; do
  command -v "$t" >/dev/null || { echo "needs $t: run bench/peers/setup.sh" >&2; exit 1; }
done

work=$(mktemp -d)
tc_pid=
bff_pids=()
# Every role but Tailcall (and a BFF binary given as BFF, which stops on SIGTERM) stops when
# its stdin closes: each reads a FIFO this script holds open on a file descriptor (9 backends,
# 8 Portico, 7 Portico unbatched, 6 grpc-gateway).
cleanup() {
  exec 9>&- 8>&- 7>&- 6>&-
  if [ -n "$tc_pid" ]; then kill "$tc_pid" 2>/dev/null || true; fi
  for p in "${bff_pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Waits until FILE has a line matching PATTERN (the child printed its address).
wait_for() {
  for _ in $(seq 600); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1" >&2
  cat "$1" >&2
  exit 1
}

# --- the demo backends --------------------------------------------------------------------
mkfifo "$work/backend.in"
RUST_LOG=warn "$bin" backend <"$work/backend.in" >"$work/backend.out" 2>"$work/backend.err" &
backend_pid=$!
exec 9>"$work/backend.in"
wait_for "$work/backend.out" '^ready$'
url() { awk -v s="$1" '$1 == s { print $2 }' "$work/backend.out"; }
hostport() { url "$1" | sed 's#^http://##'; }

# --- Portico ------------------------------------------------------------------------------
# The BFF config of bench/callgrind.sh, with the access log off. The unbatched variant drops
# the `batch:` block of the OrderItem.product link (GetProduct per item, as Tailcall does).
cp "$root/descriptors/demo.binpb" "$work/"
links=$(sed -n '/GRAPHQL_LINKS_YAML: &str = r#"/,/"#;/p' "$root/demo/src/lib.rs" | sed '1d;$d')
links_unbatched=$(printf '%s\n' "$links" \
  | awk '/^ *batch:$/ { skip = 1; next } skip && /^        / { next } { skip = 0; print }')
runtime_yaml=''
[ -z "${RUNTIME:-}" ] || runtime_yaml="runtime: { mode: $RUNTIME }"
write_bff_config() {
  cat >"$1" <<YAML
listen: 127.0.0.1:0
log: { access: false }
descriptors:
  - file: demo.binpb
backends:
  users: { endpoints: [$(url users)], services: [demo.v1.UserService] }
  orders: { endpoints: [$(url orders)], services: [demo.v1.OrderService] }
  catalog: { endpoints: [$(url catalog)], services: [demo.v1.CatalogService] }
graphql:
  links:
$2
$runtime_yaml
YAML
}
# start_bff NAME CONFIG FD: starts a BFF reading the FIFO held on FD; sets bff_pid, bff_addr.
start_bff() {
  mkfifo "$work/$1.in"
  if [ -n "${BFF:-}" ]; then
    RUST_LOG=warn "$BFF" --config "$2" <"$work/$1.in" >"$work/$1.out" 2>"$work/$1.err" &
    bff_pids+=("$!")
  else
    RUST_LOG=warn "$bin" bff --config "$2" ${WORKERS:+--workers "$WORKERS"} \
      <"$work/$1.in" >"$work/$1.out" 2>"$work/$1.err" &
  fi
  bff_pid=$!
  eval "exec $3>\"\$work/\$1.in\""
  wait_for "$work/$1.out" " on http://"
  bff_addr=$(grep -o 'http://[0-9.:]*' "$work/$1.out" | head -1)
}
write_bff_config "$work/bff.yaml" "$links"
start_bff portico "$work/bff.yaml" 8
portico_pid=$bff_pid portico=$bff_addr
portico_unbatched_pid='' portico_unbatched=''
case " $paths " in
  *" graphql-nested-unbatched "*)
    write_bff_config "$work/bff-unbatched.yaml" "$links_unbatched"
    start_bff portico-unbatched "$work/bff-unbatched.yaml" 7
    portico_unbatched_pid=$bff_pid portico_unbatched=$bff_addr ;;
esac

# --- grpc-gateway ---------------------------------------------------------------------------
mkfifo "$work/gw.in"
"$gw_bin" --listen 127.0.0.1:0 --users "$(hostport users)" --orders "$(hostport orders)" \
  --catalog "$(hostport catalog)" <"$work/gw.in" >"$work/gw.out" 2>"$work/gw.err" &
gw_pid=$!
exec 6>"$work/gw.in"
wait_for "$work/gw.out" " on http://"
gateway=$(grep -o 'http://[0-9.:]*' "$work/gw.out" | head -1)

# --- Tailcall -------------------------------------------------------------------------------
# Its runtime config (server, upstream, links) is YAML; the schema is the template with the
# backends' URLs. Tailcall resolves a proto's imports against the linked file's folder, so the
# demo protos and the google/api protos they import are laid out under one folder, linked
# through all.proto, which imports the three services' files.
tc=$work/tailcall
mkdir -p "$tc/protos/demo/v1" "$tc/protos/google/api"
cp "$root"/descriptors/proto/demo/v1/*.proto "$tc/protos/demo/v1/"
cp "$root"/gateway/proto/google/api/{annotations,http,httpbody}.proto "$tc/protos/google/api/"
cat >"$tc/protos/all.proto" <<'PROTO'
syntax = "proto3";
package demo.v1;
import "demo/v1/users.proto";
import "demo/v1/orders.proto";
import "demo/v1/catalog.proto";
PROTO
sed -e "s#@USERS_URL@#$(url users)#" -e "s#@ORDERS_URL@#$(url orders)#" \
  -e "s#@CATALOG_URL@#$(url catalog)#" "$here/tailcall/schema.graphql" >"$tc/schema.graphql"
# A free port (Tailcall takes no port 0): the first from 18090 nobody answers on.
tc_port=${TAILCALL_PORT:-18090}
while (exec 3<>"/dev/tcp/127.0.0.1/$tc_port") 2>/dev/null; do tc_port=$((tc_port + 1)); done
cat >"$tc/tailcall.yaml" <<YAML
server:
  hostname: 127.0.0.1
  port: $tc_port
upstream: {}
links:
  - src: schema.graphql
  - type: Protobuf
    src: protos/all.proto
YAML
# At its default level (info) Tailcall logs every upstream call; warn logs none.
TAILCALL_TRACKER=false TAILCALL_LOG_LEVEL=warn "$tc_bin" start "$tc/tailcall.yaml" \
  >"$work/tailcall.out" 2>&1 </dev/null &
tc_pid=$!
tailcall=http://127.0.0.1:$tc_port
for i in $(seq 300); do
  curl -sf -o /dev/null -H 'content-type: application/json' --data '{"query":"{__typename}"}' \
    "$tailcall/graphql" && break
  if [ "$i" -eq 300 ] || ! kill -0 "$tc_pid" 2>/dev/null; then
    echo "Tailcall did not start:" >&2; cat "$work/tailcall.out" >&2; exit 1
  fi
  sleep 0.1
done

# --- the requests ---------------------------------------------------------------------------
declare -A query
query[flat]='{ user(id: \"1\") { id displayName email role createdAt address { street city countryCode } tags nickname loyaltyPoints verified rating } }'
query[nested]='{ user(id: \"1\") { displayName orders { id status total { currencyCode units } items { quantity product { title price { units } } } } } }'
# Per GraphQL query: the JSON body, and a wrk script POSTing it (a Lua long string: no escapes).
for q in flat nested; do
  printf '{"query":"%s"}' "${query[$q]}" >"$work/$q.json"
  cat >"$work/$q.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[$(cat "$work/$q.json")]]
LUA
done

# path -> what it sends, the Portico behind it, the peer and its name.
declare -A target_path lua portico_of peer_of peer_name peer_pid_of portico_pid_of title
target_path[rest]=/v1/users/1; lua[rest]=
target_path[graphql-flat]=/graphql; lua[graphql-flat]=$work/flat.lua
target_path[graphql-nested]=/graphql; lua[graphql-nested]=$work/nested.lua
target_path[graphql-nested-unbatched]=/graphql; lua[graphql-nested-unbatched]=$work/nested.lua
title[rest]='REST GET /v1/users/1'
title[graphql-flat]='GraphQL flat user (13 fields)'
title[graphql-nested]='GraphQL user>orders>products (Portico batched)'
title[graphql-nested-unbatched]='GraphQL user>orders>products (both unbatched)'
for p in rest graphql-flat graphql-nested graphql-nested-unbatched; do
  portico_of[$p]=$portico portico_pid_of[$p]=$portico_pid
  peer_of[$p]=$tailcall peer_pid_of[$p]=$tc_pid peer_name[$p]='Tailcall 1.6.14'
done
portico_of[graphql-nested-unbatched]=$portico_unbatched
portico_pid_of[graphql-nested-unbatched]=$portico_unbatched_pid
peer_of[rest]=$gateway peer_pid_of[rest]=$gw_pid peer_name[rest]='grpc-gateway 1.6.4'

# fetch PATH BASE: the answer of BASE to PATH, keys sorted (jq -S), one line.
fetch() {
  if [ -n "${lua[$1]}" ]; then
    curl -sS -H 'content-type: application/json' --data-binary "@${lua[$1]%.lua}.json" \
      "$2${target_path[$1]}"
  else
    curl -sS "$2${target_path[$1]}"
  fi | jq -S -c .
}

# --- the same data, once -------------------------------------------------------------------
for p in $paths; do
  [ -n "${target_path[$p]:-}" ] || { echo "unknown path $p" >&2; exit 2; }
  a=$(fetch "$p" "${portico_of[$p]}")
  b=$(fetch "$p" "${peer_of[$p]}")
  if [ "$(jq -c '.errors // empty' <<<"$a$b")" != "" ] || [ "$a" = null ]; then
    echo "$p: an error answer: Portico $a, ${peer_name[$p]} $b" >&2; exit 1
  fi
  if [ "$a" = "$b" ]; then
    echo "check $p: Portico and ${peer_name[$p]} answer the same ${#a}-byte JSON" >&2
  else
    echo "check $p: DIFFERENT answers" >&2
    diff <(jq -S . <<<"$a") <(jq -S . <<<"$b") >&2 || true
    [ -n "${ALLOW_MISMATCH:-}" ] || exit 1
  fi
done

# --- the load -------------------------------------------------------------------------------
hz=$(getconf CLK_TCK)
# CPU ticks (user + system, all threads) of a process so far. The fields after the command
# name's closing parenthesis: utime and stime are the 12th and 13th of them.
ticks() {
  local s
  s=$(<"/proc/$1/stat")
  s=${s##*) }
  awk '{ print $12 + $13 }' <<<"$s"
}
# The machine's busy ticks so far (all cores: user, nice, system, irq, softirq, steal).
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# CPU ticks of this script's finished children (wrk, run in a command substitution): the
# cutime and cstime fields of /proc/$$/stat.
client_ticks() {
  local s
  s=$(<"/proc/$$/stat")
  s=${s##*) }
  awk '{ print $14 + $15 }' <<<"$s"
}
# run_wrk SECONDS PATH BASE: wrk's output.
run_wrk() {
  wrk --latency -t"$threads" -c"$connections" -d"${1}s" ${lua[$2]:+-s "${lua[$2]}"} \
    "$3${target_path[$2]}"
}
# p50_us WRK_OUTPUT: the median latency of a wrk run (its "50%" line), in µs.
p50_us() {
  awk '$1 == "50%" { v = $2; u = v; sub(/[a-z]+$/, "", v); sub(/^[0-9.]+/, "", u)
    f = (u == "us") ? 1 : (u == "ms") ? 1000 : (u == "s") ? 1e6 : 0; print v * f }' <<<"$1"
}
# measure PATH WHO: one round; adds requests, seconds and CPU ticks to the totals of WHO.
# Also prints the share of the machine's CPU that went to none of wrk, the gateway and the
# backends (other programs, the idle gateways): more than a few percent disturbs the round.
declare -A reqs secs cpu bcpu p50s
other_max=0
measure() {
  local base pid out n s t0 t1 b0 b1 c0 c1 m0 m1 other
  if [ "$2" = portico ]; then base=${portico_of[$1]} pid=${portico_pid_of[$1]}
  else base=${peer_of[$1]} pid=${peer_pid_of[$1]}; fi
  t0=$(ticks "$pid") b0=$(ticks "$backend_pid") c0=$(client_ticks) m0=$(machine_ticks)
  out=$(run_wrk "$duration" "$1" "$base")
  t1=$(ticks "$pid") b1=$(ticks "$backend_pid") c1=$(client_ticks) m1=$(machine_ticks)
  if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then
    echo "$1 $2: wrk saw failures:" >&2; echo "$out" >&2; exit 1
  fi
  n=$(awk '/requests in/ { print $1 }' <<<"$out")
  s=$(awk '/requests in/ { sub(/s,$/, "", $4); print $4 }' <<<"$out")
  reqs[$1.$2]=$(( ${reqs[$1.$2]:-0} + n ))
  secs[$1.$2]=$(awk -v a="${secs[$1.$2]:-0}" -v b="$s" 'BEGIN { print a + b }')
  cpu[$1.$2]=$(( ${cpu[$1.$2]:-0} + t1 - t0 ))
  bcpu[$1.$2]=$(( ${bcpu[$1.$2]:-0} + b1 - b0 ))
  p50s[$1.$2]="${p50s[$1.$2]:-} $(p50_us "$out")"
  other=$(( (m1 - m0) - (t1 - t0) - (b1 - b0) - (c1 - c0) ))
  other=$(awk -v o="$other" -v s="$s" -v hz="$hz" -v cores="$(nproc)" \
    'BEGIN { o = o / (s * hz * cores) * 100; printf "%.0f", o < 0 ? 0 : o }')
  if [ "$other" -gt "$other_max" ]; then other_max=$other; fi
  awk -v p="$1" -v w="$2" -v n="$n" -v s="$s" -v c=$((t1 - t0)) -v hz="$hz" -v o="$other" 'BEGIN {
    printf "  %s %s: %.0f req/s, %.1f µs CPU/req (others: %d%% of the machine)\n", p, w, n / s,
      c / hz / n * 1e6, o }' >&2
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
started=$(date -u +%Y-%m-%dT%H:%MZ)
echo "load: wrk -t$threads -c$connections, $rounds x ${duration}s per gateway and path" \
  "(after ${warmup}s warm-up); load average before $load_before" >&2
for p in $paths; do
  echo "$p:" >&2
  run_wrk "$warmup" "$p" "${portico_of[$p]}" >/dev/null
  run_wrk "$warmup" "$p" "${peer_of[$p]}" >/dev/null
  for r in $(seq "$rounds"); do
    # Alternate which goes first, so neither always runs right after the other.
    if [ $((r % 2)) -eq 1 ]; then measure "$p" portico; measure "$p" peer
    else measure "$p" peer; measure "$p" portico; fi
  done
done

# --- the table ------------------------------------------------------------------------------
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo
echo "$(nproc) cores, load average before $load_before, after $load_after, $started;" \
  "wrk -t$threads -c$connections, $rounds alternating rounds of ${duration}s per gateway" \
  "(Portico: ${BFF:-$bin bff}, ${WORKERS:-default} workers; grpc-gateway and Tailcall: default threads);" \
  "other processes took at most ${other_max}% of the machine's CPU in a round"
echo
echo "| path | peer | Portico req/s | peer req/s | ratio | CPU µs/req Portico | peer | ratio | p50 µs Portico | peer |"
echo "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|"
# median WORDS: the median of the numbers given.
median() { tr ' ' '\n' <<<"$1" | grep . | sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
for p in $paths; do
  awk -v t="${title[$p]}" -v peer="${peer_name[$p]}" -v hz="$hz" \
    -v n1="${reqs[$p.portico]}" -v s1="${secs[$p.portico]}" -v c1="${cpu[$p.portico]}" \
    -v n2="${reqs[$p.peer]}" -v s2="${secs[$p.peer]}" -v c2="${cpu[$p.peer]}" \
    -v l1="$(median "${p50s[$p.portico]}")" -v l2="$(median "${p50s[$p.peer]}")" 'BEGIN {
      r1 = n1 / s1; r2 = n2 / s2; u1 = c1 / hz / n1 * 1e6; u2 = c2 / hz / n2 * 1e6
      printf "| %s | %s | %.0f | %.0f | %.2fx | %.1f | %.1f | %.2fx | %.0f | %.0f |\n", t, peer, r1, r2, r1 / r2, u1, u2, u1 / u2, l1, l2 }'
done
echo
echo "The demo backends' CPU per request behind each gateway (one process, all three services):"
echo
echo "| path | backends CPU µs/req behind Portico | behind the peer |"
echo "|---|--:|--:|"
for p in $paths; do
  awk -v t="${title[$p]}" -v hz="$hz" -v n1="${reqs[$p.portico]}" -v c1="${bcpu[$p.portico]}" \
    -v n2="${reqs[$p.peer]}" -v c2="${bcpu[$p.peer]}" 'BEGIN {
      printf "| %s | %.1f | %.1f |\n", t, c1 / hz / n1 * 1e6, c2 / hz / n2 * 1e6 }'
done
