# etcd 3.4, the benchmark's anchor: Debian's etcd-server, 3 members on
# loopback, and the etcd-load generator. Sourced after lib.sh.
if ! command -v etcd >/dev/null; then
  echo "installing etcd-server (the benchmark's anchor)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq etcd-server >/dev/null
fi
# etcd-client's build needs protoc: use the one the workspace already vendors.
PROTOC="$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -path '*protoc-bin-vendored-linux-x86_64*/bin/protoc' | head -1)"
PROTOC="$PROTOC" cargo build --release --locked --manifest-path tests/bench/etcd-load/Cargo.toml >/dev/null
ETCD_LOAD="$TARGET/release/etcd-load"

# start_etcd BASE-PORT: clients on BASE+1..3, peers on BASE+11..13;
# ETCD_FLAGS adds flags to every member.
start_etcd() {
  local base="$1" cluster="" id
  for id in 1 2 3; do cluster+="${cluster:+,}e$id=http://127.0.0.1:$((base+10+id))"; done
  for id in 1 2 3; do
    etcd --name "e$id" --data-dir "$DIR/etcd-$id" \
      --listen-client-urls "http://127.0.0.1:$((base+id))" --advertise-client-urls "http://127.0.0.1:$((base+id))" \
      --listen-peer-urls "http://127.0.0.1:$((base+10+id))" --initial-advertise-peer-urls "http://127.0.0.1:$((base+10+id))" \
      --initial-cluster "$cluster" --initial-cluster-state new --initial-cluster-token "$DIR" \
      ${ETCD_FLAGS:-} >"$DIR/etcd-$id.log" 2>&1 &
  done
  ETCD_EPS="http://127.0.0.1:$((base+1)),http://127.0.0.1:$((base+2)),http://127.0.0.1:$((base+3))"
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$((base+1))/health" | grep -q '"health":"true"' && return 0
    sleep 0.2
  done
  echo "etcd did not elect a leader" >&2; return 1
}

# etcd_bench CLIENTS COUNT: prints "writes/s p50 p99".
etcd_bench() { "$ETCD_LOAD" --endpoints "$ETCD_EPS" -c "$1" -n "$2" | summary; }
