#!/usr/bin/env bash
# Failover as a client sees it, on a 3-node cluster (TLS): one writer
# submits without pause; the leader is killed with SIGKILL; the gap is the
# time from the kill to the writer's first acknowledgement after it. Then a
# faultless run at 64 writers, counting leader changes (term increases).
#
#   bash tests/bench/failover.sh [RUNS] [STEADY_MINUTES]     (default 20, 10)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/state.sh"
RUNS="${1:-20}"; MINUTES="${2:-10}"
start_rekap fo 7440
read -ra A <<<"$(rekap_args 7440 tls)"
wait_rekap "${A[@]}"

leader_id() { "$CTL" "${A[@]}" --json cluster status | python3 -c 'import json,sys; print([s["node_id"] for s in json.load(sys.stdin) if s.get("state")=="leader"][0])'; }
max_term() { "$CTL" "${A[@]}" --json cluster status | python3 -c 'import json,sys; print(max(s.get("term",0) for s in json.load(sys.stdin)))'; }
# all_caught_up: three nodes answer, one leads, all applied the same index.
all_caught_up() {
  "$CTL" "${A[@]}" --timeout 2 --json cluster status 2>/dev/null | python3 -c '
import json,sys; s=[x for x in json.load(sys.stdin) if "state" in x]
ok = len(s)==3 and sum(x["state"]=="leader" for x in s)==1 and len({x.get("applied_index") for x in s})==1
sys.exit(0 if ok else 1)'
}

GAPS=()
for run in $(seq 1 "$RUNS"); do
  L=$(leader_id)
  "$CTL" "${A[@]}" --json bench -c 1 -n 4000 --operator-certs-dir "$DIR/certs/bench-op" \
    --timeline "$DIR/timeline" >"$DIR/bench.json" 2>"$DIR/bench.err" &
  B=$!
  # Kill once the writer is under way: its registry loads first.
  sleep 2.5
  T=$(now)
  kill -9 "$(cat "$DIR/fo-$L.pid")"
  wait "$B" || { cat "$DIR/bench.err" >&2; exit 1; }
  out=$(gap "$DIR/timeline" "$T"); read -r g _ <<<"$out"
  GAPS+=("$g")
  start_node fo 7440 "$L"
  for _ in $(seq 1 500); do all_caught_up && break; sleep 0.1; done
done
printf "| failover after kill -9 of the leader (%s runs) | seconds |\n|---|---|\n" "$RUNS"
python3 - "${GAPS[@]}" <<'PY'
import sys
g = sorted(float(x) for x in sys.argv[1:])
q = lambda p: g[min(len(g) - 1, int(p * len(g)))]
print("| median | %.3f |\n| p99 | %.3f |\n| max | %.3f |\n| every run | %s |" % (q(0.5), q(0.99), g[-1], " ".join("%.2f" % x for x in g)))
PY

# Faultless: 64 writers for MINUTES, in rounds of fresh TPS.
T0=$(max_term); END=$(( $(date +%s) + MINUTES * 60 )); W=0
while [ "$(date +%s)" -lt "$END" ]; do
  n=$("$CTL" "${A[@]}" --json bench -c 64 -n 40000 --operator-certs-dir "$DIR/certs/bench-op" 2>/dev/null \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["submissions"])')
  W=$((W + n))
done
printf "\n| faultless run, 64 writers, %s min | %s submissions | %s leader changes |\n" "$MINUTES" "$W" "$(( $(max_term) - T0 ))"
