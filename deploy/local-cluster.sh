#!/usr/bin/env bash
# Starts a local 3-node Rekap cluster on 127.0.0.1:7001-7003 with a demo
# registry (a Kotabaru-like kabupaten, 840 TPS) and demo results for 70% of
# its TPS, then prints how to reach it. Builds what it needs first.
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
  for pidfile in "$DIR"/node-*.pid; do
    [ -e "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
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
CLUSTER="1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003"
for id in 1 2 3; do
  nohup "$BIN/rekap-node" --id "$id" --listen "127.0.0.1:700$id" --data-dir "$DIR/node-$id" \
    --initial-cluster "$CLUSTER" >"$DIR/node-$id.log" 2>&1 &
  echo $! >"$DIR/node-$id.pid"
done

export REKAP_ENDPOINTS=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
CTL="$BIN/rekapctl"
for _ in $(seq 1 100); do
  if "$CTL" --timeout 2 cluster status --json 2>/dev/null | grep -q '"state": "leader"'; then break; fi
  sleep 0.2
done
"$CTL" cluster status

"$CTL" registry generate "$DIR/demo" --demo-results 0.7 >/dev/null
"$CTL" registry load "$DIR/demo"
"$CTL" import "$DIR/demo/results.csv"

cat <<TXT

Rekap is running: 3 nodes on 127.0.0.1:7001, :7002, :7003 (data and logs in $DIR).
Try:
  export REKAP_ENDPOINTS=$REKAP_ENDPOINTS
  $CTL cluster status
  $CTL totals --region 63.02 --contest BUPATI-KOTABARU
  $CTL progress --region 63.02 --contest BUPATI-KOTABARU
  $CTL missing --region 63.02.01 --contest BUPATI-KOTABARU
  $CTL submit --tps 63.02.21.2010-004 --contest BUPATI-KOTABARU --votes 01=120,02=95 --sah 215 --tidak-sah 3 --total 218
  $CTL bench --clients 16 --count 5000
Stop it with: bash deploy/local-cluster.sh stop
TXT
