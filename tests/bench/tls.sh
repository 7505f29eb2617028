#!/usr/bin/env bash
# The price of TLS and authorization: the same closed-loop write benchmark
# (rekapctl bench, durable single submissions) against two local 3-node
# clusters on this machine, one as deployed (mutual TLS, an operator
# submitting, authorization at propose and at apply) and one started with
# --insecure, alternating between them at each client count. A benchmark,
# not a test: it prints figures and the ratio.
#
#   bash tests/bench/tls.sh [COUNT] [CLIENTS...]     (default 3000; 1 16 64)
set -euo pipefail
cd "$(dirname "$0")/../.."
COUNT="${1:-3000}"; shift || true
CLIENTS=("${@:-1 16 64}"); CLIENTS=(${CLIENTS[*]})
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release"
source deploy/prereqs.sh
cargo build --release --locked --workspace --bins >/dev/null
DIR="$(mktemp -d /tmp/rekap-bench-XXXX)"
trap 'pkill -f "$DIR" 2>/dev/null || true; rm -rf "$DIR"' EXIT
CTL="$BIN/rekapctl"
"$CTL" certs cluster --out "$DIR/certs" --user admin --user bench-op \
  --node 1=127.0.0.1 --node 2=127.0.0.1 --node 3=127.0.0.1 >/dev/null

start() { # name base-port extra-args...
  local name="$1" base="$2"; shift 2
  local cluster="1=127.0.0.1:$((base+1)),2=127.0.0.1:$((base+2)),3=127.0.0.1:$((base+3))"
  for id in 1 2 3; do
    "$BIN/rekap-node" --id "$id" --listen "127.0.0.1:$((base+id))" --data-dir "$DIR/$name-$id" \
      --initial-cluster "$cluster" "$@" --certs-dir "$DIR/certs/node-$id" --initial-admin admin \
      >"$DIR/$name-$id.log" 2>&1 &
  done
}
start tls 7400
start plain 7410 --insecure
TLS=(--endpoints 127.0.0.1:7401,127.0.0.1:7402,127.0.0.1:7403 --certs-dir "$DIR/certs/admin")
PLAIN=(--endpoints 127.0.0.1:7411,127.0.0.1:7412,127.0.0.1:7413 --insecure)
for _ in $(seq 1 150); do
  if "$CTL" "${TLS[@]}" --timeout 2 users list >/dev/null 2>&1 \
    && "$CTL" "${PLAIN[@]}" --timeout 2 cluster status --json 2>/dev/null | grep -q '"state": "leader"'; then break; fi
  sleep 0.2
done

bench() { # clients args...
  local c="$1"; shift
  "$CTL" "$@" --json bench -c "$c" -n "$COUNT" --operator-certs-dir "$DIR/certs/bench-op" \
    | python3 -c 'import json,sys; d=json.load(sys.stdin); print(f"{d[\"writes_per_sec\"]:.0f} {d[\"p50_ms\"]:.2f} {d[\"p99_ms\"]:.2f}")'
}
printf "| clients | TLS+auth w/s | p50 ms | p99 ms | insecure w/s | p50 ms | p99 ms | TLS/insecure |\n|---|---|---|---|---|---|---|---|\n"
for c in "${CLIENTS[@]}"; do
  read -r tw tp50 tp99 < <(bench "$c" "${TLS[@]}")
  read -r pw pp50 pp99 < <(bench "$c" "${PLAIN[@]}")
  ratio=$(python3 -c "print(f'{$tw/$pw:.2f}')")
  printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n" "$c" "$tw" "$tp50" "$tp99" "$pw" "$pp50" "$pp99" "$ratio"
done
