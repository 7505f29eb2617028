#!/usr/bin/env bash
# The count gets bigger all night: one 3-node Rekap cluster (TLS, as
# deployed) filled from empty by 64 writers, in runs of PER_ROW results
# (each run registers its own TPS, so the registry grows with the results),
# and etcd 3.4 (plaintext) filled with as many keys the same way. One row
# per run: writes/s, p50 and p99; the snapshot work the nodes did meanwhile
# (snapshots built or written for a peer, and the seconds they took, from
# the node logs); and each node's disk (RocksDB tables, write-ahead log,
# snapshot files) and RSS. The two systems alternate run by run, so both
# see the same noise. Last, a new node added to the full cluster: the time
# until it caught up.
#
#   bash tests/bench/growth.sh [ROWS] [PER_ROW]     (default 10 500000: 5M)
#
# ANCHOR=0 leaves etcd out (a quicker look at Rekap alone). PERF=DIR
# records the leader with `perf record -g` through the first and the last
# run, into DIR/row-N.data, to compare where a write's time goes, and the
# leader and the new node through the catch-up (DIR/catchup.data).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/state.sh"
ROWS="${1:-10}"
PER_ROW="${2:-500000}"
ANCHOR="${ANCHOR:-1}"
if [ "$ANCHOR" = 1 ]; then
  source "$(dirname "$0")/etcd.sh"
  # etcd's default 2 GiB quota would stop it short of 5M keys.
  ETCD_FLAGS="--quota-backend-bytes 17179869184" start_etcd 7700
fi
start_rekap grow 7600
read -ra A <<<"$(rekap_args 7600 tls)"
wait_rekap "${A[@]}"

mib() { du -sm "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
rss_mib() { awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$(cat "$DIR/$1.pid")/status" 2>/dev/null || echo "-"; }
# snapshot_work: "COUNT SECONDS" of snapshot builds and writes for peers
# logged by all three nodes so far (the line of each carries ms=N).
snapshot_work() {
  cat "$DIR"/grow-*.log | grep -E "snapshot (built|written)" | grep -o 'ms=[0-9]*' \
    | awk -F= '{n++; s += $2} END {printf "%d %.1f\n", n, s / 1000}'
}
# disk ID: "TABLES WAL SNAPSHOTS" in MiB for node ID.
disk() {
  local d="$DIR/grow-$1"
  echo "$(mib "$d"/db/*.sst) $(mib "$d"/db/*.log) $(mib "$d/snapshots")"
}

printf "| results | Rekap w/s | p50 ms | p99 ms | snapshots (all nodes) | seconds in them | node 1 tables / WAL / snapshots MiB | RSS per node MiB | etcd w/s | p50 ms | p99 ms | etcd MiB per member | Rekap/etcd |\n"
printf "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
read -r s0 t0 < <(snapshot_work)
# perf_start ROW: records the leader through this run when PERF asks.
perf_start() {
  [ -n "${PERF:-}" ] && { [ "$1" = 1 ] || [ "$1" = "$ROWS" ]; } || return 0
  mkdir -p "$PERF"
  local port; port="$(leader_addr "${A[@]}" | cut -d: -f2)"
  perf record -g -F 199 -p "$(cat "$DIR/grow-$((port - 7600)).pid")" -o "$PERF/row-$1.data" \
    >/dev/null 2>&1 &
  PERF_PID=$!
}
perf_stop() {
  [ -n "${PERF_PID:-}" ] || return 0
  kill -INT "$PERF_PID"; wait "$PERF_PID" || true; PERF_PID=""
}
for row in $(seq 1 "$ROWS"); do
  perf_start "$row"
  read -r rw rp50 rp99 < <(rekap_bench 64 "$PER_ROW" "${A[@]}" --timeout 120)
  perf_stop
  read -r s1 t1 < <(snapshot_work)
  read -r tables wal snaps < <(disk 1)
  rss="$(rss_mib grow-1) / $(rss_mib grow-2) / $(rss_mib grow-3)"
  ew=- ep50=- ep99=- ratio=- etcd_mib=-
  if [ "$ANCHOR" = 1 ]; then
    read -r ew ep50 ep99 < <(etcd_bench 64 "$PER_ROW")
    ratio="$(ratio "$rw" "$ew")" etcd_mib="$(mib "$DIR/etcd-1")"
  fi
  printf "| %s | %s | %s | %s | %s | %s | %s / %s / %s | %s | %s | %s | %s | %s | %s |\n" \
    "$((row * PER_ROW))" "$rw" "$rp50" "$rp99" "$((s1 - s0))" \
    "$(python3 -c "print('%.1f' % ($t1 - $t0))")" "$tables" "$wal" "$snaps" "$rss" \
    "$ew" "$ep50" "$ep99" "$etcd_mib" "$ratio"
  s0=$s1; t0=$t1
done
printf "\n| %s results | |\n|---|---|\n" "$((ROWS * PER_ROW))"
learner_row grow 7600
