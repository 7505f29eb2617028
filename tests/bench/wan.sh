#!/usr/bin/env bash
# Rekap and etcd 3.4 on the same emulated links between offices, in one run
# (issue 25). Every member of both clusters sits behind the harness's WAN
# emulator (rekap-wan) on the regional profile: Jakarta (1), Banjarmasin (2)
# and Kotabaru (3), 5/15/35 ms one way with 5/15/30 ms jitter and a 1% chance
# per chunk of a 200-600 ms stall, applied at the receiving office's proxy
# (etcd cannot pick the address its peer traffic leaves from, so neither
# system does here). Rekap runs the README's regional timing (200/400) with
# leader priorities 3/2/1 and TLS; etcd its defaults (100/1000), plaintext.
#
#   bash tests/bench/wan.sh [COUNT] [STEADY_MINUTES] [KILLS]   (default 4000 10 20)
#
# The last phase loads the 2019 state (../shared/data) and times a new
# node's catch-up by snapshot over a 4 Mbit/s link that is cut mid-way.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/etcd.sh"
COUNT="${1:-4000}"; MINUTES="${2:-10}"; KILLS="${3:-20}"
# WAN_PHASES picks what runs (default all): writes satellite steady failover catchup.
PHASES=" ${WAN_PHASES:-writes satellite steady failover catchup} "
phase() { [[ "$PHASES" == *" $1 "* ]]; }
WAN="$TARGET/release/rekap-wan"
CONTROL="$DIR/wan.control"
: >"$CONTROL"

# Ports: Rekap listens on 7501-3 behind 7601-3; etcd's clients on 7511-3
# behind 7611-3, its peers on 7521-3 behind 7621-3.
FRONTS=()
for i in 1 2 3; do
  FRONTS+=(--front "$i:127.0.0.1:$((7600+i)):127.0.0.1:$((7500+i))")
  FRONTS+=(--front "$i:127.0.0.1:$((7610+i)):127.0.0.1:$((7510+i))")
  FRONTS+=(--front "$i:127.0.0.1:$((7620+i)):127.0.0.1:$((7520+i))")
done
# Node 4, a new office for the catch-up phase.
FRONTS+=(--front "4:127.0.0.1:7604:127.0.0.1:7504")
"$WAN" "${FRONTS[@]}" --regional --control "$CONTROL" >"$DIR/wan.log" 2>&1 &
# shape ID DELAY JITTER STALL% MBIT: as the regional profile, unless changed.
regional() {
  printf 'shape 1 5 5 1 0\nshape 2 15 15 1 0\nshape 3 35 30 1 0\n' >"$CONTROL"
}
regional

PRIO=(0 3 2 1)
REKAP_CLUSTER="1=127.0.0.1:7601,2=127.0.0.1:7602,3=127.0.0.1:7603"
start_wan_node() {
  local id="$1"
  "$BIN/rekap-node" --id "$id" --listen "127.0.0.1:$((7500+id))" --advertise "127.0.0.1:$((7600+id))" \
    --data-dir "$DIR/wan-$id" --initial-cluster "$REKAP_CLUSTER" --certs-dir "$DIR/certs/node-$id" \
    --initial-admin admin --heartbeat-interval 200 --election-timeout 400 \
    --leader-priority "${PRIO[$id]}" >>"$DIR/wan-$id.log" 2>&1 &
  echo $! >"$DIR/wan-$id.pid"
  disown
}
for id in 1 2 3; do start_wan_node "$id"; done
A=(--endpoints 127.0.0.1:7601,127.0.0.1:7602,127.0.0.1:7603 --certs-dir "$DIR/certs/admin")
wait_rekap "${A[@]}"

ETCD_CLUSTER="e1=http://127.0.0.1:7621,e2=http://127.0.0.1:7622,e3=http://127.0.0.1:7623"
start_wan_etcd() {
  local id="$1"
  etcd --name "e$id" --data-dir "$DIR/etcd-$id" \
    --listen-client-urls "http://127.0.0.1:$((7510+id))" --advertise-client-urls "http://127.0.0.1:$((7610+id))" \
    --listen-peer-urls "http://127.0.0.1:$((7520+id))" --initial-advertise-peer-urls "http://127.0.0.1:$((7620+id))" \
    --initial-cluster "$ETCD_CLUSTER" --initial-cluster-state "${2:-new}" --initial-cluster-token "$DIR" \
    >>"$DIR/etcd-$id.log" 2>&1 &
  echo $! >"$DIR/etcd-$id.pid"
  disown
}
for id in 1 2 3; do start_wan_etcd "$id"; done
ETCD_EPS="http://127.0.0.1:7611,http://127.0.0.1:7612,http://127.0.0.1:7613"
for _ in $(seq 1 300); do
  curl -fs http://127.0.0.1:7611/health | grep -q '"health":"true"' && break
  sleep 0.2
done

status_json() { "$CTL" "${A[@]}" --timeout 3 --json cluster status 2>/dev/null; }
rekap_leader() { status_json | python3 -c 'import json,sys; print([s["node_id"] for s in json.load(sys.stdin) if s.get("state")=="leader"][0])' 2>/dev/null; }
rekap_term() { status_json | python3 -c 'import json,sys; print(max(s.get("term",0) for s in json.load(sys.stdin)))'; }
etcd_leader() {
  for i in 1 2 3; do
    curl -fs "http://127.0.0.1:$((7510+i))/metrics" 2>/dev/null | grep -q '^etcd_server_is_leader 1' && { echo "$i"; return; }
  done
}
etcd_changes() {
  local m=0 v
  for i in 1 2 3; do
    v=$(curl -fs "http://127.0.0.1:$((7510+i))/metrics" 2>/dev/null | awk '/^etcd_server_leader_changes_seen_total/ {print int($2)}')
    [ -n "$v" ] && [ "$v" -gt "$m" ] && m=$v
  done
  echo "$m"
}
wait_for() { # wait_for SECONDS COMMAND...: until it succeeds
  local end=$(( $(date +%s) + $1 )); shift
  while ! "$@" >/dev/null 2>&1; do [ "$(date +%s)" -lt "$end" ] || return 1; sleep 0.1; done
}
leader_is() { [ "$(rekap_leader)" = "$1" ]; }
# current LEADER-FN: its answer once it has one (an election may be on).
current() { local l; for _ in $(seq 1 300); do l=$("$1" || true); [ -n "$l" ] && { echo "$l"; return; }; sleep 0.2; done; return 1; }
follows() { status_json | python3 -c "import json,sys; sys.exit(0 if any(s.get('node_id')==$1 and s.get('state')=='follower' and s.get('leader_id') for s in json.load(sys.stdin)) else 1)"; }
wait_for 60 leader_is 1 || { echo "node 1 (priority 3) never led" >&2; exit 1; }
RA=(--endpoints 127.0.0.1:7601,127.0.0.1:7602,127.0.0.1:7603 --certs-dir "$DIR/certs/admin")

if phase writes; then
echo "## Writes on the regional profile ($COUNT writes per run)"
printf "\n| writers | etcd w/s | etcd p50 | etcd p99 | Rekap w/s | Rekap p50 | Rekap p99 | Rekap/etcd |\n|---|---|---|---|---|---|---|---|\n"
for c in 16 64; do
  read -r ew ep50 ep99 < <(etcd_bench "$c" "$COUNT")
  read -r rw rp50 rp99 < <(rekap_bench "$c" "$COUNT" "${RA[@]}")
  printf "| %s | %s | %s ms | %s ms | %s | %s ms | %s ms | %s |\n" "$c" "$ew" "$ep50" "$ep99" "$rw" "$rp50" "$rp99" "$(ratio "$rw" "$ew")"
done
fi

if phase satellite; then
echo; echo "## A satellite voter (node 3 at 300 ms one way, 60 ms jitter), 16 writers"
# Three ways, alternated $SAT_ROUNDS times so a drift of the shared machine
# or of the growing state weighs on all alike: node 3 regional; node 3 a
# voter on satellite; and without node 3 (its link cut: the two others must
# commit alone, as they would if it had never been there). One run of the
# same setting differs from the next by up to a third here, so the table
# gives every run beside the means.
satellite() { printf 'shape 1 5 5 1 0\nshape 2 15 15 1 0\nshape 3 300 60 0 0\n' >"$CONTROL"; }
without() { printf 'shape 1 5 5 1 0\nshape 2 15 15 1 0\ncut 3\n' >"$CONTROL"; }
# The writers know nodes 1 and 2 only, so a cut node 3 costs them nothing.
R2=(--endpoints 127.0.0.1:7601,127.0.0.1:7602 --certs-dir "$DIR/certs/admin")
SAT_ROUNDS="${SAT_ROUNDS:-4}"
B=(); S=(); W=()
for _ in $(seq 1 "$SAT_ROUNDS"); do
  regional; read -r w _ _ < <(rekap_bench 16 "$COUNT" "${R2[@]}"); B+=("$w")
  satellite; read -r w _ _ < <(rekap_bench 16 "$COUNT" "${R2[@]}"); S+=("$w")
  without; read -r w _ _ < <(rekap_bench 16 "$COUNT" "${R2[@]}"); W+=("$w")
done
printf 'shape 1 5 5 1 0\nshape 2 15 15 1 0\nshape 3 35 30 1 0\nheal 3\n' >"$CONTROL"
mean() { python3 -c 'import sys; v=list(map(float, sys.argv[1:])); print(round(sum(v)/len(v)))' "$@"; }
runs() { local IFS=,; echo "$*" | sed 's/,/, /g'; }
before=$(mean "${B[@]}"); with=$(mean "${S[@]}"); alone=$(mean "${W[@]}")
printf "\n| Rekap w/s (16 writers) | node 3 regional | node 3 a satellite voter | without node 3 | satellite / without | satellite / regional |\n|---|---|---|---|---|---|\n"
printf "| mean of %s runs each (every run) | %s (%s) | %s (%s) | %s (%s) | %s | %s |\n" "$SAT_ROUNDS" \
  "$before" "$(runs "${B[@]}")" "$with" "$(runs "${S[@]}")" "$alone" "$(runs "${W[@]}")" \
  "$(ratio "$with" "$alone")" "$(ratio "$with" "$before")"
wait_for 60 follows 3 || { echo "node 3 did not follow again after its link healed" >&2; exit 1; }
fi

steady() { # steady SYSTEM: runs 64-writer rounds until the time is up; prints writes
  local end=$(( $(date +%s) + MINUTES * 60 )) w=0 n
  while [ "$(date +%s)" -lt "$end" ]; do
    if [ "$1" = rekap ]; then
      n=$("$CTL" "${RA[@]}" --json bench -c 64 -n 20000 --operator-certs-dir "$DIR/certs/bench-op" | python3 -c 'import json,sys; print(json.load(sys.stdin)["submissions"])')
    else
      n=$("$ETCD_LOAD" --endpoints "$ETCD_EPS" -c 64 -n 20000 | python3 -c 'import json,sys; print(json.load(sys.stdin)["submissions"])')
    fi
    w=$((w + n))
  done
  echo "$w"
}
if phase steady; then
echo; echo "## Steady: 64 writers for $MINUTES min each, no faults"
T0=$(rekap_term); RW=$(steady rekap); RC=$(( $(rekap_term) - T0 ))
E0=$(etcd_changes); EW=$(steady etcd); EC=$(( $(etcd_changes) - E0 ))
printf "\n| system | writes | leader changes |\n|---|---|---|\n| etcd | %s | %s |\n| Rekap | %s | %s |\n" "$EW" "$EC" "$RW" "$RC"
fi
if phase failover; then
echo; echo "## Failover: kill -9 of the leader under one writer, $KILLS times each"
# `gap` (lib.sh) takes the silence the kill began. When Kotabaru wins (its
# log was ahead of Banjarmasin's), writes resume under it and placement
# then hands the leadership on: that later pause is listed apart.
RGAPS=(); RLATER=(); BACK=()
for run in $(seq 1 "$KILLS"); do
  L=$(current rekap_leader)
  "$CTL" "${RA[@]}" --json bench -c 1 -n 150 --operator-certs-dir "$DIR/certs/bench-op" \
    --timeline "$DIR/timeline" >"$DIR/bench.json" 2>"$DIR/bench.err" &
  B=$!
  sleep 3  # the writer registers its TPS first
  T=$(now); kill -9 "$(cat "$DIR/wan-$L.pid")"
  wait "$B" || { cat "$DIR/bench.err" >&2; exit 1; }
  out=$(gap "$DIR/timeline" "$T"); read -r g later <<<"$out"
  RGAPS+=("$g"); RLATER+=("$later")
  start_wan_node "$L"
  # Back at the preferred office (node 1) once it is healthy again.
  if [ "$L" = 1 ]; then
    wait_for 60 follows 1
    T1=$(now)
    wait_for 90 leader_is 1 && BACK+=("$(since "$T1")")
  fi
  wait_for 90 leader_is 1 || true
done
echo "Rekap, every run (s): ${RGAPS[*]}"
echo "Rekap, the longest silence later in each run (s): ${RLATER[*]}"
EGAPS=()
for run in $(seq 1 "$KILLS"); do
  L=$(current etcd_leader)
  "$ETCD_LOAD" --endpoints "$ETCD_EPS" -c 1 -n 150 --retry --timeline "$DIR/etimeline" >"$DIR/ebench.json" 2>"$DIR/ebench.err" &
  B=$!
  sleep 2
  T=$(now); kill -9 "$(cat "$DIR/etcd-$L.pid")"
  wait "$B" || { cat "$DIR/ebench.err" >&2; exit 1; }
  out=$(gap "$DIR/etimeline" "$T"); read -r g _ <<<"$out"
  EGAPS+=("$g")
  start_wan_etcd "$L" existing
  wait_for 60 sh -c "curl -fs http://127.0.0.1:$((7510+L))/health | grep -q true"
done
python3 - "${#RGAPS[@]}" "${RGAPS[@]}" "${EGAPS[@]}" <<'PY'
import sys
n = int(sys.argv[1]); r = sorted(map(float, sys.argv[2:2+n])); e = sorted(map(float, sys.argv[2+n:]))
q = lambda g, p: g[min(len(g) - 1, int(p * len(g)))]
print("\n| client-seen failover (s) | median | p99 | max |\n|---|---|---|---|")
for name, g in (("etcd", e), ("Rekap", r)):
    print("| %s | %.2f | %.2f | %.2f |" % (name, q(g, .5), q(g, .99), g[-1]))
print("\nRekap, every run: " + " ".join("%.2f" % x for x in r))
print("etcd, every run: " + " ".join("%.2f" % x for x in e))
PY
if [ "${#BACK[@]}" -gt 0 ]; then
  echo; echo "Leadership back at node 1 after it followed again (s): ${BACK[*]}"
fi
fi

phase catchup || exit 0
source "$(dirname "$0")/wan_catchup.sh"
