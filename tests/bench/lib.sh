# Shared by the benchmark scripts: build once, start 3-member Rekap and etcd
# clusters on loopback in a scratch folder, wait for them, run one closed-loop
# write bench and print "writes/s p50 p99". Sourced, not run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
# REKAP_BENCH_BIN=DIR runs other rekap-node/rekapctl binaries (an older
# build, for a before/after in one session).
BIN="${REKAP_BENCH_BIN:-$TARGET/release}"
CTL="$BIN/rekapctl"
source deploy/prereqs.sh
cargo build --release --locked --workspace --all-targets >/dev/null
DIR="$(mktemp -d /tmp/rekap-bench-XXXX)"
cleanup() {
  pkill -f "$DIR" 2>/dev/null || true
  for _ in $(seq 1 100); do pgrep -f "$DIR" >/dev/null || break; sleep 0.1; done
  # REKAP_BENCH_LOGS=DIR keeps the nodes' logs for a look afterwards.
  if [ -n "${REKAP_BENCH_LOGS:-}" ]; then mkdir -p "$REKAP_BENCH_LOGS" && cp "$DIR"/*.log "$REKAP_BENCH_LOGS"/ 2>/dev/null || true; fi
  rm -rf "$DIR"
}
trap cleanup EXIT
"$CTL" certs cluster --out "$DIR/certs" --user admin --user bench-op \
  --node 1=127.0.0.1,localhost --node 2=127.0.0.1,localhost --node 3=127.0.0.1,localhost \
  --node 4=127.0.0.1,localhost >/dev/null

# start_node NAME BASE-PORT ID [node flags...]: one node on BASE+ID, a
# member of the 3-node cluster NAME; its pid is in $DIR/NAME-ID.pid.
# REKAP_NODE_FLAGS adds flags to every node, e.g. "--snapshot-every 200".
start_node() {
  local name="$1" base="$2" id="$3"; shift 3
  # shellcheck disable=SC2086
  set -- "$@" ${REKAP_NODE_FLAGS:-}
  local cluster="1=127.0.0.1:$((base+1)),2=127.0.0.1:$((base+2)),3=127.0.0.1:$((base+3))"
  "$BIN/rekap-node" --id "$id" --listen "127.0.0.1:$((base+id))" --data-dir "$DIR/$name-$id" \
    --initial-cluster "$cluster" "$@" --certs-dir "$DIR/certs/node-$id" --initial-admin admin \
    >>"$DIR/$name-$id.log" 2>&1 &
  echo $! >"$DIR/$name-$id.pid"
  disown  # a node the bench kills is not news
}

# start_rekap NAME BASE-PORT [node flags...]: nodes listen on BASE+1..3.
start_rekap() {
  local name="$1" base="$2"; shift 2
  for id in 1 2 3; do start_node "$name" "$base" "$id" "$@"; done
}

# rekap_args BASE-PORT tls|insecure: rekapctl's global flags for that cluster.
rekap_args() {
  local eps="127.0.0.1:$(($1+1)),127.0.0.1:$(($1+2)),127.0.0.1:$(($1+3))"
  if [ "$2" = tls ]; then echo "--endpoints $eps --certs-dir $DIR/certs/admin"
  else echo "--endpoints $eps --insecure"; fi
}

# wait_rekap ARGS...: until the cluster has a leader that answers.
wait_rekap() {
  for _ in $(seq 1 300); do
    "$CTL" "$@" --timeout 2 cluster status --json 2>/dev/null | grep -q '"state": "leader"' && return 0
    sleep 0.2
  done
  echo "cluster ($*) did not elect a leader" >&2; return 1
}

# rekap_bench CLIENTS COUNT ARGS...: prints "writes/s p50 p99".
rekap_bench() {
  local c="$1" n="$2"; shift 2
  "$CTL" "$@" --json bench -c "$c" -n "$n" --operator-certs-dir "$DIR/certs/bench-op" | summary
}

summary() {
  python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["totals_verified"], d; print("%.0f %.2f %.2f" % (d["writes_per_sec"], d["p50_ms"], d["p99_ms"]))'
}

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }

# CPU time (clock ticks) the given processes have used so far.
ticks() {
  local sum=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] && sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$sum"
}

# cpu_per_1k TICKS WRITES: CPU-milliseconds per 1,000 writes.
cpu_per_1k() { python3 -c "print('%.0f' % ($1 * 1000 / $(getconf CLK_TCK) * 1000 / $2))"; }

# leader_addr ARGS...: the address of the cluster's current leader.
leader_addr() {
  "$CTL" "$@" --json cluster status | python3 -c 'import json,sys; print([s["addr"] for s in json.load(sys.stdin) if s.get("state")=="leader"][0])'
}

# read_summary: "reads/s p50 p99" from rekapctl --json bench-read.
read_summary() {
  python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.0f %.2f %.2f" % (d["reads_per_sec"], d["p50_ms"], d["p99_ms"]))'
}

# operator_args BASE-PORT CONTEST: rekapctl's flags to act as bench-op, an
# operator of every kecamatan the contest's registry holds (added and
# granted here), as an import runs in production.
operator_args() {
  local A; read -ra A <<<"$(rekap_args "$1" tls)"
  "$CTL" "${A[@]}" users add bench-op >/dev/null 2>&1 || true
  "$CTL" "${A[@]}" --timeout 120 users grant bench-op operator --each-kecamatan-of ID --contest "$2" >/dev/null
  echo "--endpoints 127.0.0.1:$(($1+1)),127.0.0.1:$(($1+2)),127.0.0.1:$(($1+3)) --certs-dir $DIR/certs/bench-op"
}

# t COMMAND...: runs it quietly and prints how long it took, in seconds.
t() {
  local t0; t0=$(now)
  "$@" >/dev/null || { echo "failed: $*" >&2; return 1; }
  since "$t0"
}
now() { date +%s.%N; }
since() { python3 -c "import sys; print('%.2f' % ($(now) - $1))"; }
# gap TIMELINE T: "OUTAGE LATER" for a writer's acknowledgement times
# around a kill at T. OUTAGE runs from T to the first acknowledgement after
# the silence the kill began: answers already on the wire at T still arrive
# after it (up to a one-way delay and a stall), so that silence is the
# longest one starting within a second of T. LATER is the longest silence
# after it, which is not this failover (a planned handover, say).
gap() {
  python3 -c "
ts=sorted(float(l) for l in open('$1') if l.strip())
assert ts and ts[0] < $2, 'the writer had not started before the kill'
pairs=[(a, b) for a, b in zip(ts, ts[1:]) if b > $2]
a, b = max((p for p in pairs if p[0] < $2 + 1.0), key=lambda p: p[1] - p[0])
rest=[q[1] - q[0] for q in pairs if q[0] >= b]
print('%.3f %.3f' % (b - $2, max(rest, default=0.0)))"
}
