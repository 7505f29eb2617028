#!/usr/bin/env bash
# A new node catching up with the 2019 state (TLS, as deployed), TIMES
# times on one idle cluster: the 2019 replay, then a new node at a time
# added as a learner (timed until add-learner returns), removed, stopped.
# The first is sent the snapshot as the leader writes it; later ones get
# the file written for the first. Each row gives where the time went, from
# the logs. The nodes are left idle between tries: the spread of one try
# to the next on this box is a second or more, so one figure alone says
# little. Needs ../shared/data/pilpres2019_tps.csv.gz.
#
#   bash tests/bench/catchup.sh [TIMES]     (default 5)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/state.sh"
TIMES="${1:-5}"
DATA="${REKAP_DATA:-$PWD/../shared/data}/pilpres2019_tps.csv.gz"
[ -f "$DATA" ] || { echo "missing $DATA" >&2; exit 1; }
start_rekap p19 7420
read -ra A <<<"$(rekap_args 7420 tls)"
wait_rekap "${A[@]}"
"$CTL" pilpres2019 "$DATA" --out "$DIR/p19" >/dev/null
"$CTL" "${A[@]}" --timeout 120 registry load "$DIR/p19" >/dev/null
read -ra OP <<<"$(operator_args 7420 PPWP-2019)"
"$CTL" "${OP[@]}" --timeout 120 import "$DIR/p19/results.csv" --batch 1000 >/dev/null
idle_row p19 >/dev/null
# Certificates for the new nodes (the CA and the rest are kept).
nodes=()
for id in $(seq 4 $((3 + TIMES))); do nodes+=(--node "$id=127.0.0.1,localhost"); done
"$CTL" certs cluster --out "$DIR/certs" "${nodes[@]}" >/dev/null
printf "| new node | caught up s | snapshot written ms | received ms | loaded ms |\n|---|---|---|---|---|\n"
for id in $(seq 4 $((3 + TIMES))); do
  "$BIN/rekap-node" --id $id --listen "127.0.0.1:$((7420+id))" --data-dir "$DIR/n-$id" \
    --certs-dir "$DIR/certs/node-$id" >"$DIR/n-$id.log" 2>&1 &
  echo $! >"$DIR/n-$id.pid"; disown
  t0=$(now)
  "$CTL" "${A[@]}" --timeout 300 cluster add-learner --id $id --addr "127.0.0.1:$((7420+id))" >/dev/null
  el=$(since "$t0")
  w=$(cat "$DIR"/p19-[123].log | grep "snapshot written for a peer" | tail -1 | grep -o " ms=[0-9]*" | cut -d= -f2 || true)
  r=$(grep "snapshot received" "$DIR/n-$id.log" | grep -o " ms=[0-9]*" | cut -d= -f2 || true)
  l=$(grep "records in place" "$DIR/n-$id.log" | grep -o " load_ms=[0-9]*" | cut -d= -f2 || true)
  printf "| %s | %s | %s | %s | %s |\n" "$id" "$el" "${w:--}" "${r:--}" "${l:--}"
  "$CTL" "${A[@]}" cluster remove "$id" >/dev/null
  kill "$(cat "$DIR/n-$id.pid")"
  idle_row p19 >/dev/null
done
