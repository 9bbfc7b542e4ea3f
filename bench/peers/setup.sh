#!/usr/bin/env bash
# Installs the peers of the peer comparison benchmark (bench/peers/compare.sh runs this first):
#
#   - grpc-gateway 1.6.4, from Debian 12's packages: protoc generates Go code from the demo
#     protos (protoc-gen-go's APIv1 plugin with plugins=grpc, and protoc-gen-grpc-gateway),
#     and bench/peers/grpc-gateway/main.go registers the generated handlers; built with
#     GO111MODULE=off against /usr/share/gocode (no module download).
#   - Tailcall 1.6.14, the npm package @tailcallhq/core-linux-x64-gnu. Its binary needs glibc
#     2.38+ (it asks for GLIBC_2.39), newer than Debian 12's 2.36: when the system's is older,
#     Debian 13 (trixie)'s libc6 .deb is fetched with apt-get download through a private apt
#     configuration (the system's sources are not touched), unpacked with dpkg-deb -x beside
#     the binary, and bin/tailcall runs Tailcall through that glibc's loader.
#   - wrk and jq (Debian packages), which compare.sh uses.
#
#   bench/peers/setup.sh                       # into $HOME/.cache/portico-peers
#   PEERS_CACHE=/somewhere bench/peers/setup.sh
#
# Idempotent: a second run checks and skips what is there (grpc-gateway is rebuilt when the
# demo protos or main.go change). Needs root (or sudo) for apt-get when packages are missing.
# Prints the paths it made: $PEERS_CACHE/bin/portico-grpc-gateway and $PEERS_CACHE/bin/tailcall.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
here=$root/bench/peers
cache=${PEERS_CACHE:-$HOME/.cache/portico-peers}
tailcall_version=1.6.14
mkdir -p "$cache/bin"

log() { echo "setup: $*" >&2; }

# Runs a command as root: directly when we are root, else through sudo.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# --- Debian packages -------------------------------------------------------------------
pkgs=(golang-go protobuf-compiler libprotobuf-dev golang-grpc-gateway
  golang-github-grpc-ecosystem-grpc-gateway-dev golang-google-grpc-dev golang-goprotobuf-dev
  golang-google-genproto-dev golang-golang-x-net-dev wrk jq curl)
command -v npm >/dev/null || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
gw_pkg_version=$(dpkg-query -W -f='${Version}' golang-github-grpc-ecosystem-grpc-gateway-dev)
case $gw_pkg_version in
  1.6.4*) ;;
  *) log "warning: grpc-gateway is $gw_pkg_version, not the 1.6.4 of Debian 12 this was written for" ;;
esac

# --- grpc-gateway ----------------------------------------------------------------------
gw=$cache/grpc-gateway
gw_bin=$cache/bin/portico-grpc-gateway
protos=("$root"/descriptors/proto/demo/v1/*.proto)
# Rebuilt when its inputs change: the protos, main.go, this script and the package version.
gw_stamp=$(cat "${protos[@]}" "$here/grpc-gateway/main.go" "$0" <(echo "$gw_pkg_version") \
  | sha256sum | cut -d' ' -f1)
if [ -x "$gw_bin" ] && [ "$(cat "$gw/stamp" 2>/dev/null)" = "$gw_stamp" ]; then
  log "grpc-gateway: up to date ($gw_bin)"
else
  log "grpc-gateway $gw_pkg_version: generating and building"
  rm -rf "$gw"
  gopath=$gw/gopath
  pkg=$gopath/src/portico.local/demopb
  mkdir -p "$pkg" "$gopath/src/portico.local/grpcgw" "$gw/gen"
  # The demo protos have no go_package: M mappings put all four files in one Go package,
  # and map the well-known types to the APIv1 packages Debian ships (protoc's own .proto
  # files name APIv2 packages, which Debian 12's Go packages for grpc-gateway 1.6 do not use).
  m=Mgoogle/protobuf/timestamp.proto=github.com/golang/protobuf/ptypes/timestamp
  m+=,Mgoogle/protobuf/duration.proto=github.com/golang/protobuf/ptypes/duration
  m+=,Mgoogle/protobuf/wrappers.proto=github.com/golang/protobuf/ptypes/wrappers
  m+=,Mgoogle/protobuf/struct.proto=github.com/golang/protobuf/ptypes/struct
  m+=,Mgoogle/protobuf/empty.proto=github.com/golang/protobuf/ptypes/empty
  m+=,Mgoogle/protobuf/field_mask.proto=google.golang.org/genproto/protobuf/field_mask
  m+=,Mgoogle/api/annotations.proto=google.golang.org/genproto/googleapis/api/annotations
  names=()
  for f in "${protos[@]}"; do
    name=demo/v1/$(basename "$f")
    names+=("$name")
    m+=,M$name=portico.local/demopb
  done
  # response_body: "products" (SearchProducts) needs allow_repeated_fields_in_body.
  # Include path: the demo protos, the google/api protos vendored in the gateway, and the
  # well-known types from libprotobuf-dev.
  (cd "$root/descriptors/proto" && protoc -I . -I "$root/gateway/proto" -I /usr/include \
    --go_out="plugins=grpc,$m:$gw/gen" \
    --grpc-gateway_out="logtostderr=true,allow_repeated_fields_in_body=true,$m:$gw/gen" \
    "${names[@]}")
  # Each generator lays out its files its own way (by import path or by .proto path):
  # gather them into the one package.
  find "$gw/gen" -name '*.go' -exec mv {} "$pkg/" \;
  # Both generators name the package after the import path's last element; check it.
  if grep -L '^package demopb$' "$pkg"/*.go | grep -q .; then
    log "unexpected Go package names:"; grep -H '^package ' "$pkg"/*.go >&2; exit 1
  fi
  cp "$here/grpc-gateway/main.go" "$gopath/src/portico.local/grpcgw/main.go"
  (cd "$gopath/src/portico.local/grpcgw" \
    && GOPATH="$gopath:/usr/share/gocode" GO111MODULE=off GOFLAGS="" GOPROXY=off \
      GOCACHE="$cache/go-build" go build -o "$gw_bin" .)
  echo "$gw_stamp" >"$gw/stamp"
  log "grpc-gateway: built $gw_bin"
fi

# --- Tailcall --------------------------------------------------------------------------
tc=$cache/tailcall
tc_real=$tc/node_modules/@tailcallhq/core-linux-x64-gnu/bin/tailcall
installed=$(sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' \
  "$tc/node_modules/@tailcallhq/core-linux-x64-gnu/package.json" 2>/dev/null || true)
installed=${installed#v}  # the package says "v1.6.14"
if [ -x "$tc_real" ] && [ "$installed" = "$tailcall_version" ]; then
  log "tailcall: $tailcall_version installed"
else
  log "tailcall: installing @tailcallhq/core-linux-x64-gnu@$tailcall_version with npm"
  mkdir -p "$tc"
  npm install --prefix "$tc" --no-save --no-audit --no-fund --loglevel=error \
    "@tailcallhq/core-linux-x64-gnu@$tailcall_version" >&2
fi

# The newest glibc symbol version the binary asks for, e.g. 2.39, against the system's.
need=$(grep -ao 'GLIBC_2\.[0-9]*' "$tc_real" | sed 's/GLIBC_//' | sort -V | tail -1)
have=$(getconf GNU_LIBC_VERSION | awk '{print $2}')
glibc=$cache/glibc
if [ "$(printf '%s\n%s\n' "$need" "$have" | sort -V | tail -1)" = "$have" ]; then
  log "tailcall: the system's glibc $have is new enough (needs $need)"
  printf '#!/bin/sh\n# Tailcall on the system glibc (written by bench/peers/setup.sh).\nexec "%s" "$@"\n' \
    "$tc_real" >"$cache/bin/tailcall"
else
  if [ -x "$glibc/root/usr/lib64/ld-linux-x86-64.so.2" ]; then
    log "tailcall: glibc $(cat "$glibc/version") unpacked (system has $have, needs $need)"
  else
    log "tailcall: the system's glibc $have is older than $need; fetching Debian trixie's libc6"
    # A private apt configuration with trixie as its only source; nothing installed is seen
    # (status /dev/null) and nothing is installed: apt-get download only fetches the .deb,
    # checked against the trixie keys of debian-archive-keyring.
    etc=$glibc/apt/etc
    mkdir -p "$etc" "$glibc/apt/lists/partial" "$glibc/apt/cache/archives/partial"
    keys=/usr/share/keyrings/debian-archive-trixie-stable.gpg
    keys+=" /usr/share/keyrings/debian-archive-trixie-automatic.gpg"
    cat >"$etc/trixie.sources" <<EOF
Types: deb
URIs: ${TRIXIE_MIRROR:-http://deb.debian.org/debian}
Suites: trixie
Components: main
Signed-By: $keys
EOF
    apt_opts=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$etc"
      -o "Dir::State::Lists=$glibc/apt/lists" -o "Dir::Cache=$glibc/apt/cache"
      -o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o APT::Architecture=amd64
      -o APT::Sandbox::User="$(id -un)")
    apt-get "${apt_opts[@]}" -qq update >&2
    rm -f "$glibc"/libc6_*.deb
    (cd "$glibc" && apt-get "${apt_opts[@]}" -qq download libc6 >&2)
    deb=$(echo "$glibc"/libc6_*.deb)
    rm -rf "$glibc/root"
    dpkg-deb -x "$deb" "$glibc/root"
    dpkg-deb -f "$deb" Version >"$glibc/version"
    log "tailcall: unpacked libc6 $(cat "$glibc/version") into $glibc/root"
  fi
  # The loader runs Tailcall with the new glibc first on the library path, then the system's
  # directories (for libgcc_s.so.1). exec keeps the PID, so compare.sh measures Tailcall.
  cat >"$cache/bin/tailcall" <<EOF
#!/bin/sh
# Tailcall $tailcall_version on Debian trixie's glibc $(cat "$glibc/version") (written by bench/peers/setup.sh).
exec "$glibc/root/usr/lib64/ld-linux-x86-64.so.2" \\
  --library-path "$glibc/root/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu" \\
  "$tc_real" "\$@"
EOF
fi
chmod +x "$cache/bin/tailcall"
TAILCALL_TRACKER=false "$cache/bin/tailcall" --version >&2

echo "$gw_bin"
echo "$cache/bin/tailcall"
