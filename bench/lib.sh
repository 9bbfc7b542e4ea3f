# Helpers shared by the load scripts that run the BFF next to the demo backends
# (bench/percore.sh, bench/cache.sh, bench/rss.sh, bench/link-order.sh): sourced, not run. The caller sets `work` (a temporary
# folder) and `bin` (portico-load), and closes "${fds[@]}" when it ends, which stops every
# child started with `start` (each reads a FIFO held open here, and stops at its end).

fds=()

# wait_for FILE PATTERN: waits (up to a minute) until FILE has a line matching PATTERN.
wait_for() {
  for _ in $(seq 600); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "timed out waiting for '$2' in $1" >&2
  cat "$1" >&2
  exit 1
}

# start NAME ARGS...: runs `$bin ARGS` (RUST_LOG=warn), output in $work/NAME.{out,err};
# sets pid.
start() {
  local name=$1 fd
  shift
  mkfifo "$work/$name.in"
  RUST_LOG=warn "$bin" "$@" <"$work/$name.in" >"$work/$name.out" 2>"$work/$name.err" &
  pid=$!
  exec {fd}>"$work/$name.in"
  fds+=("$fd")
}

# stop_all: closes the FIFOs (the children stop) and waits for them.
stop_all() {
  for fd in "${fds[@]}"; do eval "exec $fd>&-"; done
  wait 2>/dev/null || true
}

# stop_bff_and_all: the EXIT trap of a script that starts a BFF binary itself and keeps its
# pid in bff_pid: stops it (SIGTERM), then every child of `start`, and removes $work (kept
# with KEEP_WORK=1).
bff_pid=''
stop_bff_and_all() {
  [ -z "$bff_pid" ] || { kill "$bff_pid" 2>/dev/null; wait "$bff_pid" 2>/dev/null || true; }
  stop_all
  if [ -n "${KEEP_WORK:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}

# start_bff_script: how a script that starts a BFF binary itself begins (rss.sh,
# link-order.sh; `root` set): `bin` (BIN, default portico-load) and `bff` (BFF, default
# bff-web) from this checkout's release builds, both present, a temporary `work`, and
# stop_bff_and_all as the EXIT trap.
start_bff_script() {
  bin=${BIN:-$root/target/release/portico-load}
  bff=${BFF:-$root/target/release/bff-web}
  local b
  for b in "$bin" "$bff"; do
    [ -x "$b" ] || { echo "no $b: see the build commands at the top of $0" >&2; exit 1; }
  done
  work=$(mktemp -d)
  trap stop_bff_and_all EXIT
}

# start_backends [ARGS...]: the demo backends (`portico-load backend ARGS`), ready.
start_backends() {
  start backend backend "$@"
  backend_pid=$pid
  wait_for "$work/backend.out" '^ready$'
}

# url SERVICE: the URL of a started demo backend.
url() { awk -v s="$1" '$1 == s { print $2 }' "$work/backend.out"; }

# write_bff_config FILE [EXTRA]: the BFF config over the started backends (access log off,
# the demo's GraphQL links), with EXTRA YAML appended.
write_bff_config() {
  cp "$root/descriptors/demo.binpb" "$work/"
  local links
  links=$(sed -n '/GRAPHQL_LINKS_YAML: &str = r#"/,/"#;/p' "$root/demo/src/lib.rs" | sed '1d;$d')
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
$links
${2:-}
YAML
}

# addr_of NAME: the http://ADDR a started BFF printed.
addr_of() { wait_for "$work/$1.out" " on http://"; grep -o 'http://[0-9.:]*' "$work/$1.out" | head -1; }

# ticks PID: CPU ticks (user + system, all threads) of a process so far.
ticks() {
  local s
  s=$(<"/proc/$1/stat")
  s=${s##*) }
  awk '{ print $12 + $13 }' <<<"$s"
}

# The two GraphQL queries of the benchmarks, as JSON bodies and wrk scripts in $work:
# flat.json/flat.lua (user with 13 fields) and nested.json/nested.lua (user > orders >
# products).
write_queries() {
  printf '{"query":"%s"}' '{ user(id: \"1\") { id displayName email role createdAt address { street city countryCode } tags nickname loyaltyPoints verified rating } }' >"$work/flat.json"
  printf '{"query":"%s"}' '{ user(id: \"1\") { displayName orders { id status total { currencyCode units } items { quantity product { title price { units } } } } } }' >"$work/nested.json"
  local q
  for q in flat nested; do
    cat >"$work/$q.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[$(cat "$work/$q.json")]]
LUA
  done
}

# one_of_each BASE: one request of each kind to the BFF at BASE (needs write_queries): REST,
# GraphQL flat and nested twice each (the second runs on the compiled plan), an SSE query, a
# gRPC-web call, the OpenAPI document, the SDL, the portal and a 404.
one_of_each() {
  local base=$1 path
  json() { curl -sS -o /dev/null -H 'content-type: application/json' --data-binary "@$1" "$base/graphql"; }
  curl -sS -o /dev/null "$base/v1/users/1"
  json "$work/flat.json"
  json "$work/flat.json"
  json "$work/nested.json"
  json "$work/nested.json"
  curl -sS -o /dev/null -N -H 'accept: text/event-stream' -H 'content-type: application/json' \
    --data-binary "@$work/flat.json" "$base/graphql"
  printf '\x00\x00\x00\x00\x03\x0a\x01\x31' >"$work/getuser.grpcweb"
  curl -sS -o /dev/null -H 'content-type: application/grpc-web+proto' \
    --data-binary "@$work/getuser.grpcweb" "$base/demo.v1.UserService/GetUser"
  for path in /openapi.json /portal/schema.graphql /portal /no/such/route; do
    curl -sS -o /dev/null "$base$path"
  done
}
