#!/usr/bin/env bash
# Instructions per request of the BFF, counted by callgrind: repeatable where wall-clock
# figures on a shared 2-core machine are not (valgrind counts the BFF's own instructions,
# whatever else runs). Starts the demo backends and the BFF (one tokio worker, under
# valgrind) from the load benchmark's binary, sends N identical requests on one keep-alive
# connection with curl, and prints (Ir with N requests - Ir with none) / N.
#
#   cargo build --release -p portico-bench
#   bench/callgrind.sh graphql-nested 300     # or: rest, rest-jwt, rest-tls-jwt, rest-limit, graphql-flat
#   BIN=/tmp/portico-load-before bench/callgrind.sh rest 300   # compare two builds
#   BFF_LOG=info [BFF_LOG_FORMAT=json] bench/callgrind.sh rest 300   # with the access log (RUST_LOG of the BFF; default warn)
#
# Needs valgrind and curl. Counts vary by about 0.1% between runs (how many times futures are
# polled depends on timing); a difference under 1% is noise.
set -euo pipefail

kind=${1:?usage: callgrind.sh rest|rest-jwt|rest-tls-jwt|rest-limit|graphql-flat|graphql-nested [N]}
n=${2:-300}
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN:-$root/target/release/portico-load}
work=$(mktemp -d)
trap 'exec 8>&- 9>&-; wait; rm -rf "$work"' EXIT

auth= tls= limits=
case $kind in
  rest) method=GET; path=/v1/users/1; body= ;;
  # The same call with an ES256 bearer token verified (against a JWKS file) on every request,
  # its identity forwarded to the backend: the cost of the identify and authorize stages.
  rest-jwt) method=GET; path=/v1/users/1; body=
    token=$("$bin" jwt-fixture --out "$work/jwks.json")
    auth="Authorization: Bearer $token" ;;
  # And over TLS (HTTP/1.1 keep-alive; the handshake is paid once, as by a real client).
  rest-tls-jwt) method=GET; path=/v1/users/1; body=
    token=$("$bin" jwt-fixture --out "$work/jwks.json" --certs "$work/certs")
    auth="Authorization: Bearer $token"; tls=1 ;;
  # The same call under two in-process rate limits (per client address, and a method rule):
  # the cost of the limit stage, its decisions and the RateLimit headers.
  rest-limit) method=GET; path=/v1/users/1; body=; limits=1 ;;
  graphql-flat) method=POST; path=/graphql
    body='{"query":"{ user(id: \"1\") { id displayName email role createdAt address { street city countryCode } tags nickname loyaltyPoints verified rating } }"}' ;;
  graphql-nested) method=POST; path=/graphql
    body='{"query":"{ user(id: \"1\") { displayName orders { id status total { currencyCode units } items { quantity product { title price { units } } } } } }"}' ;;
  *) echo "unknown kind $kind (rest, rest-jwt, rest-tls-jwt, rest-limit, graphql-flat, graphql-nested)" >&2; exit 2 ;;
esac

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

# Ir of one BFF run serving $1 requests. The roles stop when their stdin closes: each reads
# a FIFO this script holds open on a file descriptor, and closes to stop it.
run() {
  local count=$1 out=$work/bff-$1.out
  mkfifo "$work/bff-$count.in"
  RUST_LOG=${BFF_LOG:-warn} valgrind --tool=callgrind --callgrind-out-file="$work/cg.$count" \
    "$bin" bff --config "$work/bff.yaml" --workers 1 <"$work/bff-$count.in" >"$out" \
    2>"$work/vg.$count" &
  local pid=$!
  exec 8>"$work/bff-$count.in"
  wait_for "$out" " on https\?://"
  local addr
  addr=$(grep -o 'https\?://[0-9.:]*' "$out" | head -1)
  if [ "$count" -gt 0 ]; then
    local urls=()
    for _ in $(seq "$count"); do urls+=("$addr$path"); done
    if [ "$method" = POST ]; then
      curl -sf -H 'content-type: application/json' --data-binary "$body" "${urls[@]}" >/dev/null
    else
      curl -sf ${tls:+--cacert "$work/certs/ca.pem" --http1.1} ${auth:+-H "$auth"} "${urls[@]}" >/dev/null
    fi
  fi
  exec 8>&-
  wait "$pid"
  grep -o 'Collected : [0-9]*' "$work/vg.$count" | grep -o '[0-9]*$'
}

mkfifo "$work/backend.in"
RUST_LOG=warn "$bin" backend <"$work/backend.in" >"$work/backend.out" 2>/dev/null &
exec 9>"$work/backend.in"
wait_for "$work/backend.out" '^ready$'
url() { awk -v s="$1" '$1 == s { print $2 }' "$work/backend.out"; }
cp "$root/descriptors/demo.binpb" "$work/"
links=$(sed -n '/GRAPHQL_LINKS_YAML: &str = r#"/,/"#;/p' "$root/demo/src/lib.rs" | sed '1d;$d')
cat >"$work/bff.yaml" <<YAML
listen: 127.0.0.1:0
descriptors:
  - file: demo.binpb
backends:
  users: { endpoints: [$(url users)], services: [demo.v1.UserService] }
  orders: { endpoints: [$(url orders)], services: [demo.v1.OrderService] }
  catalog: { endpoints: [$(url catalog)], services: [demo.v1.CatalogService] }
graphql:
  links:
$links
YAML
if [ -n "$auth" ]; then
  cat >>"$work/bff.yaml" <<YAML
auth:
  jwt: { issuer: bench, audiences: [portico], algorithms: [ES256], jwks_file: jwks.json }
  forward: { subject: x-caller, scopes: x-caller-scopes }
YAML
fi
if [ -n "$limits" ]; then
  cat >>"$work/bff.yaml" <<YAML
rate_limits:
  rules:
    - { name: per-ip, key: ip, limit: 1000000, per: 1s }
    - { name: get-user, key: ip, methods: [demo.v1.UserService.GetUser], limit: 1000000, per: 1s }
YAML
fi
if [ -n "$tls" ]; then
  echo "tls: { cert: certs/server.pem, key: certs/server.key }" >>"$work/bff.yaml"
fi

# Over TLS the base run serves one request: the handshake and aws-lc's one-time entropy
# seeding (jitterentropy, hundreds of millions of instructions under valgrind) are paid once
# per connection or process, not per request.
first=0
if [ -n "$tls" ]; then first=1; fi
base=$(run "$first")
loaded=$(run "$n")
echo "$kind: $(( (loaded - base) / (n - first) )) instructions per request ($n requests; start-up $base)"
# KEEP=FILE keeps the loaded run's profile, for callgrind_annotate.
if [ -n "${KEEP:-}" ]; then cp "$work/cg.$n" "$KEEP"; fi
