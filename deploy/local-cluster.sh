#!/usr/bin/env bash
# Starts a local 3-node Rekap cluster on 127.0.0.1:7001-7003 with a demo
# registry (Kabupaten Kotabaru: its real 21 kecamatan and their desa, the
# 892 TPS of the 2020 Pilkada and its two paslon, built from the 2019 rows
# in tests/data) and the first 70% of that night's results, then prints how
# to reach it. Builds what it needs first, and
# makes the certificates on first run: a CA, one per node, and the users
# admin (ops), kpps-demo (operator), ppk-demo (verifier) and publik
# (observer). Everything runs with TLS; the demo results are submitted by
# the operator, not the admin.
#
#   bash deploy/local-cluster.sh          start (or restart) the cluster
#   bash deploy/local-cluster.sh stop     stop it
#
# Data lives in $REKAP_LOCAL_DIR (default /tmp/rekap-local); the nodes keep
# running in the background after this script ends.
set -euo pipefail
cd "$(dirname "$0")/.."
DIR="${REKAP_LOCAL_DIR:-/tmp/rekap-local}"
TARGET="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET/release"

stop() {
  local pids=()
  for pidfile in "$DIR"/node-*.pid; do
    [ -e "$pidfile" ] || continue
    pids+=("$(cat "$pidfile")")
    kill "${pids[-1]}" 2>/dev/null || true
    rm -f "$pidfile"
  done
  # A node holds its RocksDB lock until it has shut down (up to 10 s): a
  # restart must not start the next one on the same directory before.
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 150); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
  done
}

if [ "${1:-}" = "stop" ]; then
  stop
  echo "stopped"
  exit 0
fi

source deploy/prereqs.sh
cargo build --release --locked --workspace --bins
stop
mkdir -p "$DIR"
CTL="$BIN/rekapctl"
CERTS="$DIR/certs"
if [ ! -e "$CERTS/ca/ca.key" ]; then
  "$CTL" certs init --ca-dir "$CERTS/ca" --name "Rekap local CA"
  for id in 1 2 3; do
    "$CTL" certs node "$id" --host 127.0.0.1 --host localhost --ca-dir "$CERTS/ca" --out "$CERTS/node-$id"
  done
  for user in admin kpps-demo ppk-demo publik; do
    "$CTL" certs user "$user" --ca-dir "$CERTS/ca" --out "$CERTS/$user"
  done
fi

CLUSTER="1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003"
for id in 1 2 3; do
  nohup "$BIN/rekap-node" --id "$id" --listen "127.0.0.1:700$id" --http-listen "127.0.0.1:710$id" --data-dir "$DIR/node-$id" \
    --certs-dir "$CERTS/node-$id" --initial-cluster "$CLUSTER" --initial-admin admin \
    >"$DIR/node-$id.log" 2>&1 &
  echo $! >"$DIR/node-$id.pid"
done

export REKAP_ENDPOINTS=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
as() { local user="$1"; shift; "$CTL" --certs-dir "$CERTS/$user" "$@"; }
# A leader, and the first admin in place.
for _ in $(seq 1 150); do
  if as admin --timeout 2 users list >/dev/null 2>&1; then break; fi
  sleep 0.2
done
as admin cluster status

"$CTL" registry generate "$DIR/demo" --kotabaru tests/data/pilpres2019_sample.csv --demo-results 0.7 >/dev/null
as admin registry load "$DIR/demo"
for user in kpps-demo ppk-demo publik; do as admin users add "$user" >/dev/null; done
as admin users grant kpps-demo operator --each-kecamatan-of 63.02 --contest BUPATI-KOTABARU >/dev/null
as admin users grant ppk-demo verifier --scope 63.02 >/dev/null
as admin users grant publik observer --scope ID >/dev/null
as admin users list
as kpps-demo import "$DIR/demo/results.csv"
# A TPS still without a result, for the examples below.
MISSING="$(as publik --json missing --region 63.02 --contest BUPATI-KOTABARU | grep -m1 '"tps_id"' | cut -d'"' -f4)"

cat <<TXT

Rekap is running: 3 nodes on 127.0.0.1:7001, :7002, :7003, TLS only (data,
logs and certificates in $DIR). Act as a user by pointing at their folder:
admin (ops), kpps-demo (operator), ppk-demo (verifier), publik (observer).
Try:
  export REKAP_ENDPOINTS=$REKAP_ENDPOINTS REKAP_CERTS_DIR=$CERTS/publik
  $CTL cluster status
  $CTL totals --region 63.02 --contest BUPATI-KOTABARU
  $CTL progress --region 63.02 --contest BUPATI-KOTABARU
  $CTL missing --region 63.02.01 --contest BUPATI-KOTABARU
  $CTL watch --region 63.02 --contest BUPATI-KOTABARU      (live; Ctrl-C stops it)
  $CTL --certs-dir $CERTS/kpps-demo submit --tps $MISSING --contest BUPATI-KOTABARU --votes 01=120,02=95 --sah 215 --tidak-sah 3 --total 218
  $CTL --certs-dir $CERTS/ppk-demo history --tps $MISSING --contest BUPATI-KOTABARU
  $CTL --certs-dir $CERTS/admin users list
  ${CTL%rekapctl}rekap-station --certs-dir $CERTS/kpps-demo   (the operator's entry form: http://127.0.0.1:7080/)
  curl --cacert $CERTS/ca/ca.crt https://127.0.0.1:7101/metrics   (Prometheus metrics of node 1; :7102, :7103)
The public dashboard: https://127.0.0.1:7101/ (any node: :7102, :7103; the
certificate is from the cluster's own CA, $CERTS/ca/ca.crt).
Stop it with: bash deploy/local-cluster.sh stop
TXT
