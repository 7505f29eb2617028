# What a loaded state costs a node, measured on cluster NAME at BASE-PORT
# (TLS) once its data is in: memory, restart, catch-up by snapshot, export.
# Sourced after lib.sh. Each function prints one "| measure | value |" row.


# peaks NAME: each node's peak RSS (VmHWM) in MiB, as "a / b / c", and
# reset it (clear_refs 5), so the next reading covers only what follows.
peaks() {
  local name="$1" id out=()
  for id in 1 2 3; do
    local pid; pid=$(cat "$DIR/$name-$id.pid")
    out+=("$(($(awk '/^VmHWM/ {print $2}' "/proc/$pid/status") / 1024))")
    echo 5 >"/proc/$pid/clear_refs"
  done
  local IFS=/; echo "${out[*]}" | sed 's|/| / |g'
}

# rss_rows NAME: resident memory of each node, MiB: now, and the peak
# since it started, or since `peaks` last reset it (VmHWM).
rss_rows() {
  local name="$1" id
  for id in 1 2 3; do
    local status="/proc/$(cat "$DIR/$name-$id.pid")/status" kb peak
    kb=$(awk '/^VmRSS/ {print $2}' "$status")
    peak=$(awk '/^VmHWM/ {print $2}' "$status")
    printf "| RSS of node %s (peak since start) | %s MiB (%s MiB) |\n" "$id" "$((kb / 1024))" "$((peak / 1024))"
  done
}

# restart_row NAME BASE CONTEST: once the cluster is idle, kill -9 node 3,
# start it again, and time until a stale read on it shows every result (its
# reported TPS equal the leader's, and it has applied everything the cluster
# had). Killed while the snapshot after an import was still being built, the
# same node took anywhere from 1 to 3.5 s.
restart_row() {
  local name="$1" base="$2" contest="$3" addr="127.0.0.1:$(($2+3))"
  local A; read -ra A <<<"$(rekap_args "$base" tls)"
  wait_idle "$name"
  local want; want=$("$CTL" "${A[@]}" --json totals --contest "$contest" | python3 -c 'import json,sys; print(json.load(sys.stdin)["tps_reported"])')
  kill -9 "$(cat "$DIR/$name-3.pid")"
  while kill -0 "$(cat "$DIR/$name-3.pid")" 2>/dev/null; do sleep 0.01; done
  local t0; t0=$(now)
  start_node "$name" "$base" 3
  for _ in $(seq 1 6000); do
    got=$("$CTL" --endpoints "$addr" --certs-dir "$DIR/certs/admin" --timeout 1 --json totals --contest "$contest" --stale 2>/dev/null \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["tps_reported"])' 2>/dev/null || true)
    [ "$got" = "$want" ] && break
    sleep 0.02
  done
  [ "$got" = "$want" ] || { echo "node 3 never served $want results (last: $got)" >&2; return 1; }
  printf "| restart to serving (kill -9, then a stale read shows all %s results) | %s s |\n" "$want" "$(since "$t0")"
}

# learner_row NAME BASE: a new, empty node 4 caught up; the time until
# add-learner (which waits for it) returns. The leader sends a snapshot only
# once its log is purged behind one (every --snapshot-every entries, 20,000
# by default); below that the new node replays the log, applying every
# command again.
learner_row() {
  local name="$1" base="$2"
  local A; read -ra A <<<"$(rekap_args "$base" tls)"
  "$BIN/rekap-node" --id 4 --listen "127.0.0.1:$((base+4))" --data-dir "$DIR/$name-4" \
    --certs-dir "$DIR/certs/node-4" ${REKAP_NODE_FLAGS:-} >"$DIR/$name-4.log" 2>&1 &
  echo $! >"$DIR/$name-4.pid"
  disown
  # PERF=DIR records the leader and the new node through the catch-up.
  local perf=""
  if [ -n "${PERF:-}" ]; then
    local port; port="$(leader_addr "${A[@]}" | cut -d: -f2)"
    mkdir -p "$PERF"
    perf record -g -F 499 -p "$(cat "$DIR/$name-$((port - base)).pid"),$(cat "$DIR/$name-4.pid")" \
      -o "$PERF/catchup.data" >/dev/null 2>&1 &
    perf=$!
  fi
  local t0; t0=$(now)
  "$CTL" "${A[@]}" --timeout 300 cluster add-learner --id 4 --addr "127.0.0.1:$((base+4))" >/dev/null
  printf "| new node caught up (add-learner returns) | %s s |\n" "$(since "$t0")"
  [ -z "$perf" ] || { kill -INT "$perf"; wait "$perf" || true; }
  catchup_parts "$name"
}

# catchup_parts NAME: where node 4's catch-up went, from the logs: the
# leader writing the snapshot file (sent meanwhile, as it grows), node 4
# receiving it, checking it into a table, ingesting it and loading the
# state. A step that did not happen (no snapshot was needed) shows "-".
catchup_parts() {
  local name="$1"
  secs() { # FILES PATTERN FIELD: the FIELD=ms of the last line matching, in s
    cat $1 2>/dev/null | grep "$2" | tail -1 | grep -o " $3=[0-9]*" | head -1 | cut -d= -f2 \
      | awk '{printf "%.1f", $1 / 1000} END {if (NR == 0) printf "-"}'
  }
  local all="$DIR/$name-[123].log" new="$DIR/$name-4.log"
  printf "| snapshot written / received / checked into a table / ingested / loaded | %s / %s / %s / %s / %s s |\n" \
    "$(secs "$all" "snapshot written for a peer" ms)" "$(secs "$new" "snapshot received" ms)" \
    "$(secs "$new" "records in place" check_and_table_ms)" "$(secs "$new" "records in place" ingest_ms)" \
    "$(secs "$new" "records in place" load_ms)"
}

# wait_idle NAME: waits until cluster NAME's nodes each use under 5% of a
# core for two seconds in a row (start-up checks and snapshot builds done;
# heartbeats alone cost an idle TLS node about 2%), at most 180 s.
wait_idle() {
  local pids; pids=$(cat "$DIR/$1"-*.pid)
  local quiet=0 a b n; n=$(wc -w <<<"$pids")
  for _ in $(seq 1 180); do
    a=$(ticks $pids); sleep 1; b=$(ticks $pids)  # a sampling interval
    if [ $((b - a)) -lt $((5 * n)) ]; then quiet=$((quiet + 1)); else quiet=0; fi
    [ "$quiet" -ge 2 ] && break
  done
}

# idle_row NAME: wait_idle, and how long that took. The export is measured
# on an idle cluster, as an office exports after the count.
idle_row() {
  local t0; t0=$(now)
  wait_idle "$1"
  printf "| wait until the nodes are idle (after the new node) | %s s |\n" "$(since "$t0")"
}

# export_row BASE CONTEST: the contest's national results through
# rekapctl export, rows per second.
export_row() {
  local A; read -ra A <<<"$(rekap_args "$1" tls)"
  local t0; t0=$(now)
  "$CTL" "${A[@]}" --timeout 300 export --contest "$2" --out "$DIR/export.csv" >/dev/null
  local rows secs; rows=$(($(wc -l <"$DIR/export.csv") - 1)); secs=$(since "$t0")
  [ "$rows" -gt 0 ] || { echo "the export holds no results" >&2; return 1; }
  printf "| export of %s results (%s rows) | %s rows/s |\n" "$2" "$rows" "$(python3 -c "print('%.0f' % ($rows / $secs))")"
}

# cpu_row WHAT TICKS: "| CPU of the three nodes WHAT | S s |" for TICKS
# clock ticks (the difference of two `ticks` readings).
cpu_row() {
  printf "| CPU of the three nodes %s | %s s |\n" "$1" "$(awk "BEGIN {printf \"%.1f\", $2 / $(getconf CLK_TCK)}")"
}

# compaction_row NAME: what RocksDB's compactions and flushes cost each
# node so far, summed from its LOG (before any restart rotates it):
# compaction CPU-seconds, and GB written by compactions and by flushes.
compaction_row() {
  local out=() id
  for id in 1 2 3; do
    out+=("$(python3 - "$DIR/$1-$id/db/LOG" <<'PY'
import json, sys
cpu = comp = flush = 0
flushes = set()
for line in open(sys.argv[1], errors="replace"):
    i = line.find("EVENT_LOG_v1 ")
    if i < 0:
        continue
    e = json.loads(line[i + 13:])
    kind, job = e.get("event"), e.get("job")
    if kind == "flush_started":
        flushes.add(job)
    elif kind == "compaction_finished":
        cpu += e.get("compaction_time_cpu_micros", 0)
        comp += e.get("total_output_size", 0)
    elif kind == "table_file_creation" and job in flushes:
        flush += e.get("file_size", 0)
print("%.1f s, %.2f / %.2f GB" % (cpu / 1e6, comp / 1e9, flush / 1e9))
PY
)")
  done
  printf "| compactions of nodes 1 / 2 / 3: CPU, GB written by compactions / flushes | %s |\n" \
    "${out[0]} ; ${out[1]} ; ${out[2]}"
}
