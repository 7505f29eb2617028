#!/usr/bin/env bash
# Reads of a region's totals, as observers make them, on a 3-node cluster
# on loopback (TLS, as deployed): linearizable on the leader when idle and
# under 64 writers, stale, and what 64 linearizable readers cost writers.
#
#   bash tests/bench/read.sh [SECONDS]     (default 10 per measure)
source "$(dirname "$0")/lib.sh"
SECS="${1:-10}"
start_rekap tls 7400
read -ra A <<<"$(rekap_args 7400 tls)"
wait_rekap "${A[@]}"
# A contest with results in it: the bench's own.
CONTEST=$("$CTL" "${A[@]}" --json bench -c 16 -n 2000 --operator-certs-dir "$DIR/certs/bench-op" 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["contest"])')
LEADER=(--endpoints "$(leader_addr "${A[@]}")" --certs-dir "$DIR/certs/admin")
reads() { "$CTL" "${LEADER[@]}" --json bench-read --contest "$CONTEST" "$@" | read_summary; }
writes() { "$CTL" "${A[@]}" --json bench -c 64 -n "$1" --operator-certs-dir "$DIR/certs/bench-op" 2>/dev/null | summary; }

printf "| read of nasional totals | reads/s | p50 ms | p99 ms |\n|---|---|---|---|\n"
read -r r p50 p99 < <(reads -c 1 --seconds "$SECS" --interval-ms 20)
printf "| linearizable on the leader, idle, one reader every 20 ms | %s | %s | %s |\n" "$r" "$p50" "$p99"
read -r r p50 p99 < <(reads -c 1 --seconds "$SECS")
printf "| linearizable on the leader, idle, back to back | %s | %s | %s |\n" "$r" "$p50" "$p99"
read -r r p50 p99 < <(reads -c 1 --seconds "$SECS" --stale)
printf "| stale, back to back | %s | %s | %s |\n" "$r" "$p50" "$p99"
# Enough writes to outlast the reads; the bench loads its registry first.
writes $((SECS * 8000)) >/dev/null 2>&1 & W=$!
sleep 5
read -r r p50 p99 < <(reads -c 1 --seconds "$SECS" --interval-ms 5)
kill "$W" 2>/dev/null || true; wait "$W" 2>/dev/null || true
printf "| linearizable on the leader, 64 writers running | %s | %s | %s |\n" "$r" "$p50" "$p99"

# Observers against writers: the same write run alone, beside 64 observers
# refreshing every 50 ms (1,280 reads/s), and beside 64 readers reading back
# to back (as many reads as the machine can serve: the worst case).
N=$((SECS * 800))
beside() { # reader flags...
  reads -c 64 --seconds $((SECS * 10)) "$@" >"$DIR/readers.out" 2>&1 & R=$!
  sleep 1
  writes "$N"
  kill "$R" 2>/dev/null || true; wait "$R" 2>/dev/null || true
}
read -r w0 wp50 wp99 < <(writes "$N")
read -r w1 wq50 wq99 < <(beside --interval-ms 50)
read -r w2 wr50 wr99 < <(beside)
printf "\n| 64 writers | writes/s | p50 ms | p99 ms | against alone |\n|---|---|---|---|---|\n"
printf "| alone | %s | %s | %s | 1.00 |\n" "$w0" "$wp50" "$wp99"
printf "| beside 64 observers refreshing every 50 ms | %s | %s | %s | %s |\n" "$w1" "$wq50" "$wq99" "$(ratio "$w1" "$w0")"
printf "| beside 64 readers back to back | %s | %s | %s | %s |\n" "$w2" "$wr50" "$wr99" "$(ratio "$w2" "$w0")"
