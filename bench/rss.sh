#!/usr/bin/env bash
# The shipped BFF's resident memory: right after start, and after one request of each kind.
#
#   cargo build --release -p bff-web          # on its own: built with portico-bench in one
#   cargo build --release -p portico-bench    # command it would miss its link order (see
#                                             # gateway/link/build.rs)
#   bench/rss.sh                       # RUNTIME=multi_thread for one multi-threaded runtime
#
# Starts the demo backends (`portico-load backend`) and `bff-web --config` on them (the config
# of the load scripts, access log off), reads VmRSS, RssAnon (heap, stacks) and RssFile (the
# binary's code and data pages touched so far: file-backed, shared, reclaimable) from
# /proc/PID/status once the BFF answers, then sends one request of each kind (REST, GraphQL
# flat and nested twice each (the second runs on the compiled plan), an SSE query, a gRPC-web
# call, the OpenAPI document, the SDL, the portal, a 404) and reads them again. Knobs: BIN
# (portico-load), BFF (bff-web), RUNTIME, KEEP_WORK=1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/lib.sh
. "$root/bench/lib.sh"
start_bff_script

start_backends
write_bff_config "$work/bff.yaml" "${RUNTIME:+runtime: { mode: $RUNTIME \}}"
write_queries
RUST_LOG=warn "$bff" --config "$work/bff.yaml" >"$work/bff.out" 2>"$work/bff.err" &
bff_pid=$!
base=$(addr_of bff)
curl -sfS -o /dev/null "$base/healthz" || curl -sS -o /dev/null "$base/v1/users/1"

# memory LABEL: one line of the BFF's resident memory, in MB.
memory() {
  awk -v label="$1" '
    /^VmRSS:/ { rss = $2 } /^RssAnon:/ { anon = $2 } /^RssFile:/ { file = $2 }
    END { printf "%-34s RSS %5.1f MB  (anonymous %4.1f MB, file-backed %4.1f MB)\n",
          label, rss / 1024, anon / 1024, file / 1024 }' "/proc/$bff_pid/status"
}

memory "after start"
one_of_each "$base"
memory "after one request of each kind"
