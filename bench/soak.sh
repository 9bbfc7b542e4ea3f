#!/usr/bin/env bash
# The soak run (not a CI test): a BFF under a fixed-rate mixed load (REST, nested and flat
# GraphQL, server streaming, POSTs) for 30 minutes, reloaded every minute, its catalog backend
# restarted every 3 minutes, sampled every 10 s (RSS, open fds, tokio tasks, connections,
# p50/p99). See `portico-load soak --help`; the README's "Soak" section has the last figures.
#
#   bench/soak.sh                         # 30 minutes at 300 req/s
#   LENGTH=5m RATE=500 bench/soak.sh      # shorter, harder
#   BIN=/path/to/portico-load bench/soak.sh
set -euo pipefail
cd "$(dirname "$0")/.."
LENGTH=${LENGTH:-30m}
RATE=${RATE:-300}
if [ -z "${BIN:-}" ]; then
  cargo build --release -p portico-bench >&2
  BIN=target/release/portico-load
fi
out=${OUT:-target/soak-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$(dirname "$out")"
echo "== soak: $LENGTH at $RATE req/s on $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); table in $out.md, samples in $out.csv" >&2
"$BIN" soak --length "$LENGTH" --rate "$RATE" --csv "$out.csv" "$@" | tee "$out.md"
