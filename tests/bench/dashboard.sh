#!/usr/bin/env bash
# The public dashboard under load: reads of the national totals (the JSON
# API, and the HTML page) from one follower's HTTPS listener, with wrk,
# alone and while 64 writers submit; and the writers' rate alone and
# beside the readers. 3 nodes on loopback, TLS, as deployed.
#
#   bash tests/bench/dashboard.sh [SECONDS]     (default 10 per measure)
#
# With NATIONAL=1 the pages read are those of the national synthetic
# registry (820,000 TPS, 34 provinsi; loading it takes a few minutes), as
# election night's busiest page would be; otherwise the bench's own.
source "$(dirname "$0")/lib.sh"
SECS="${1:-10}"
if ! command -v wrk >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi
for id in 1 2 3; do start_node dash 7460 "$id" --http-listen "127.0.0.1:$((7560 + id))"; done
read -ra A <<<"$(rekap_args 7460 tls)"
wait_rekap "${A[@]}"
CONTEST=$("$CTL" "${A[@]}" --json bench -c 16 -n 2000 --operator-certs-dir "$DIR/certs/bench-op" 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["contest"])')
if [ "${NATIONAL:-0}" = 1 ]; then
  "$CTL" registry generate "$DIR/nat" --national --demo-results 0.3 >/dev/null
  "$CTL" "${A[@]}" --timeout 600 registry load "$DIR/nat" >/dev/null
  read -ra OP <<<"$(operator_args 7460 PPWP)"
  "$CTL" "${OP[@]}" --timeout 600 import "$DIR/nat/results-ppwp.csv" --batch 1000 >/dev/null
  CONTEST=PPWP
fi
LEADER=$(leader_addr "${A[@]}")
for id in 1 2 3; do [ "127.0.0.1:$((7460 + id))" != "$LEADER" ] && { READ_ID=$id; break; }; done
BASE="https://127.0.0.1:$((7560 + READ_ID))"
writes() { "$CTL" "${A[@]}" --json bench -c 64 -n "$1" --operator-certs-dir "$DIR/certs/bench-op" 2>/dev/null | summary; }
# wrk URL: "reads/s p50 p99" (latencies in ms).
reads() {
  wrk -t 2 -c 32 -d "${SECS}s" --latency "$1" | python3 -c '
import re, sys
t = sys.stdin.read()
unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
def lat(p):
    m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)" % p, t)
    return float(m.group(1)) * unit[m.group(2)]
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
assert not errors, t
print("%.0f %.2f %.2f" % (float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)), lat(50), lat(99)))'
}
API="$BASE/api/v1/wilayah/ID?pemilihan=$CONTEST"
PAGE="$BASE/wilayah/ID?pemilihan=$CONTEST"
curl -sfk "$API" >/dev/null || { echo "the API does not answer at $API" >&2; exit 1; }
echo "national page: $(curl -sfk "$PAGE" | wc -c) bytes, JSON: $(curl -sfk "$API" | wc -c) bytes, $(curl -sfk "$API" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["children"]), "provinsi,", d["totals"]["tps_total"], "TPS")')"

printf "| national totals from a follower, 32 connections | reads/s | p50 ms | p99 ms |\n|---|---|---|---|\n"
read -r r p50 p99 < <(reads "$API"); printf "| JSON API, idle | %s | %s | %s |\n" "$r" "$p50" "$p99"
read -r r p50 p99 < <(reads "$PAGE"); printf "| HTML page, idle | %s | %s | %s |\n" "$r" "$p50" "$p99"
N=$((SECS * 4000))
read -r w0 wp50 wp99 < <(writes "$N")
beside() { # URL: reads while the writers run, then the writers' figures
  writes "$N" >"$DIR/w.out" & W=$!
  sleep 1
  read -r r p50 p99 < <(reads "$1")
  wait "$W"
  read -r w wq50 wq99 <"$DIR/w.out"
  echo "$r $p50 $p99 $w $wq50 $wq99"
}
read -r r1 a50 a99 w1 b50 b99 < <(beside "$API")
read -r r2 c50 c99 w2 d50 d99 < <(beside "$PAGE")
printf "| JSON API, 64 writers running | %s | %s | %s |\n" "$r1" "$a50" "$a99"
printf "| HTML page, 64 writers running | %s | %s | %s |\n" "$r2" "$c50" "$c99"
printf "\n| 64 writers | writes/s | p50 ms | p99 ms | against alone |\n|---|---|---|---|---|\n"
printf "| alone | %s | %s | %s | 1.00 |\n" "$w0" "$wp50" "$wp99"
printf "| beside JSON API readers | %s | %s | %s | %s |\n" "$w1" "$b50" "$b99" "$(ratio "$w1" "$w0")"
printf "| beside HTML page readers | %s | %s | %s | %s |\n" "$w2" "$d50" "$d99" "$(ratio "$w2" "$w0")"
