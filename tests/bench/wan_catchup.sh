# wan.sh's last phase, sourced by it: the 2019 state into the WAN cluster,
# then a new node 4 in a fourth office (Kotabaru's delay, jitter and
# stalls, capped at 4 Mbit/s) catches up by snapshot while its link is cut
# for CUT seconds once half the file has arrived. Prints the size, the
# ideal time (size / bandwidth), the time taken with and without the cut,
# and the ratios.
DATA="${REKAP_DATA:-$PWD/../shared/data}/pilpres2019_tps.csv.gz"
[ -f "$DATA" ] || { echo "missing $DATA: no catch-up phase" >&2; exit 1; }
CUT="${WAN_CUT_SECONDS:-30}"
MBIT=4
# office4 [cut|heal]: node 4's link as Kotabaru's, capped at MBIT.
office4() { printf 'shape 4 35 30 1 %s\n%s\n' "$MBIT" "${1:+$1 4}" >"$CONTROL"; }
echo; echo "## Catch-up of a new node by snapshot: 2019 state, $MBIT Mbit/s, a ${CUT} s cut mid-way"
"$CTL" pilpres2019 "$DATA" --out "$DIR/p19" >/dev/null
"$CTL" "${A[@]}" --timeout 600 registry load "$DIR/p19" >/dev/null
read -ra OP <<<"$(operator_args 7600 PPWP-2019)"
"$CTL" "${OP[@]}" --timeout 600 import "$DIR/p19/results.csv" --batch 1000 >/dev/null

office4
"$BIN/rekap-node" --id 4 --listen 127.0.0.1:7504 --advertise 127.0.0.1:7604 --data-dir "$DIR/wan-4" \
  --certs-dir "$DIR/certs/node-4" --heartbeat-interval 200 --election-timeout 400 \
  --leader-priority 0 >>"$DIR/wan-4.log" 2>&1 &
echo $! >"$DIR/wan-4.pid"
disown
# Node 4 is watched on its own port, not through its shaped link.
N4=(--endpoints 127.0.0.1:7504 --certs-dir "$DIR/certs/admin" --timeout 3)
wait_for 60 "$CTL" "${N4[@]}" cluster status
T0=$(now)
"$CTL" "${A[@]}" --timeout 60 cluster add-learner --id 4 --addr 127.0.0.1:7604 --no-wait >/dev/null
WANT=$(status_json | python3 -c 'import json,sys; print(max(s.get("committed_index") or 0 for s in json.load(sys.stdin)))')
# partial_bytes: how much of the transfer node 4 holds, and of how much.
partial_bytes() {
  local f; f=$(find "$DIR/wan-4" -name 'partial-*.part' 2>/dev/null | head -1)
  [ -n "$f" ] || return 1
  echo "$(stat -c %s "$f") $(basename "$f" .part | awk -F- '{print $NF}')"
}
caught_up() {
  "$CTL" "${N4[@]}" --json cluster status 2>/dev/null | python3 -c "
import json, sys
s = [s for s in json.load(sys.stdin) if s.get('node_id') == 4][0]
sys.exit(0 if (s.get('applied_index') or 0) >= $WANT else 1)"
}
half_there() { local got size; read -r got size < <(partial_bytes) && [ "$((got * 2))" -ge "$size" ]; }
# Half the file, or (a state too small for a snapshot) caught up already.
half_or_done() { half_there || caught_up; }
wait_for 1800 half_or_done || { echo "node 4 never held half a snapshot" >&2; exit 1; }
read -r AT SIZE < <(partial_bytes) || { echo "node 4 caught up from the log, without a snapshot" >&2; exit 1; }
office4 cut
TC=$(now)
sleep "$CUT"  # the fault's length, not a wait for a condition
office4 heal
CUT_TOOK=$(since "$TC")
wait_for 3600 caught_up || { echo "node 4 never applied index $WANT" >&2; exit 1; }
TOOK=$(since "$T0")
python3 - "$SIZE" "$MBIT" "$TOOK" "$CUT_TOOK" "$AT" <<'PY'
import sys
size, mbit, took, cut, at = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
ideal = size * 8 / (mbit * 1e6)
print("\n| snapshot | cut at | ideal (size / %g Mbit/s) | caught up | ratio | without the cut's %.0f s | ratio |" % (mbit, cut))
print("|---|---|---|---|---|---|---|")
print("| %.1f MiB | %.0f%% | %.0f s | %.0f s | %.2f | %.0f s | %.2f |" % (
    size / 2**20, 100 * at / size, ideal, took, took / ideal, took - cut, (took - cut) / ideal))
PY
grep -h "resuming a snapshot transfer" "$DIR"/wan-[123].log | tail -1 || true
