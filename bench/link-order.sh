#!/usr/bin/env bash
# Writes gateway/link/order.txt, the link order of the shipped binaries: the functions
# `bff-web` runs when it starts and serves one request of each kind (bench/lib.sh's
# `one_of_each`) and then REST, flat and nested GraphQL requests thirty times each, recorded
# by callgrind: those the requests ran, the most instructions first, then those only start-up
# ran, kept when the binary defines them. The build script (gateway/link/build.rs) hands the
# file to the linker, which places those functions side by side; see the README, "Resident
# memory: the code a BFF runs, side by side".
#
#   cargo build --release --locked -p bff-web -p bff-mobile -p portico-demo --bins   # the Dockerfile's build
#   cargo build --release -p portico-bench      # portico-load: the demo backends
#   bench/link-order.sh                         # then the same cargo build again: it relinks
#
# Symbol names carry a hash of each crate's build settings (features included), so the file
# fits the build it was recorded from: the Dockerfile's set, which `-p bff-web` alone also
# gives. Rerun it when the code a request runs has moved, or a workspace crate got a new
# dependency (that renames all its functions) (bench/rss.sh shows the file-backed memory
# growing back). Needs valgrind (callgrind_control) and curl. Knobs: BIN
# (portico-load), BFF (bff-web).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
start_bff_script

start_backends
write_bff_config "$work/bff.yaml"
write_queries
RUST_LOG=warn valgrind --tool=callgrind --demangle=no --callgrind-out-file="$work/cg" \
  "$bff" --config "$work/bff.yaml" >"$work/bff.out" 2>"$work/bff.err" &
bff_pid=$!
base=$(addr_of bff)
# Start-up in one file ($work/cg.1), the requests in the other ($work/cg, written at exit).
callgrind_control --dump=start-up "$bff_pid" >/dev/null 2>&1
one_of_each "$base"
# Then the paths that carry the load, enough times that their per-request cost outweighs
# what each kind's first request does once (plans compiled, caches filled).
for _ in $(seq 30); do
  curl -sS -o /dev/null "$base/v1/users/1"
  for q in flat nested; do
    curl -sS -o /dev/null -H 'content-type: application/json' --data-binary "@$work/$q.json" "$base/graphql"
  done
done
# SIGTERM: the BFF drains and exits, and callgrind writes the second file.
kill -TERM "$bff_pid"
wait "$bff_pid" || true
bff_pid=''

# self_costs FILE: "instructions name" for every function of a callgrind file (`fn=` and
# `cfn=` lines name a function the first time they use its number; "'2" marks a recursion
# level; the cost line after `calls=` is the callee's, not the caller's), in first-seen order.
self_costs() {
  awk '
    function name_of(line,   id, rest, n) {
      match(line, /^c?fn=\([0-9]+\)/)
      id = substr(line, RSTART, RLENGTH); sub(/^c?fn=/, "", id)
      rest = substr(line, RSTART + RLENGTH)
      if (rest != "") { n = substr(rest, 2); sub(/'"'"'[0-9]+$/, "", n); names[id] = n }
      n = names[id]
      if (!(n in cost)) { cost[n] = 0; order[++count] = n }
      return n
    }
    /^fn=/ { current = name_of($0); after_call = 0; next }
    /^cfn=/ { name_of($0); next }
    /^calls=/ { after_call = 1; next }
    /^[0-9+*-]/ { if (after_call) after_call = 0; else if (current != "") cost[current] += $NF; next }
    END { for (i = 1; i <= count; i++) print cost[order[i]], order[i] }' "$1"
}

# The order: what serving requests runs, hottest first (the code under load sits together),
# then what only start-up ran; each name once, and only names the binary defines.
nm --defined-only "$bff" | awk '{ print $3 }' >"$work/defined"
{ self_costs "$work/cg" | sort -s -k1,1nr; self_costs "$work/cg.1"; } |
  awk 'NR == FNR { defined[$0] = 1; next } ($2 in defined) && !seen[$2]++ { print $2 }' \
    "$work/defined" - >"$root/gateway/link/order.txt"
echo "gateway/link/order.txt: $(wc -l <"$root/gateway/link/order.txt") functions"
