#!/usr/bin/env bash
# The public dashboard under load, on the national state: reads of the
# national totals (the JSON API, and the HTML page) with wrk from one
# follower's HTTPS listener, as browsers ask (Accept-Encoding: gzip, br),
# with and without revalidation (If-None-Match with the newest ETag the
# reader saw); the same page through the shipped nginx front
# (deploy/nginx) in front of all three nodes, with the requests that reach
# the nodes; 64 writers' rate beside each against their rate alone; the
# same readers at the targets' paces (an open loop: 20,000 JSON and 10,000
# page reads a second on one follower, 30,000 through nginx) with their
# latencies; and live event streams held open on one node (STREAMS,
# default 10,000): the memory each costs, and the writers beside them,
# also with the streams on the contest being written. 3 nodes on
# loopback, TLS, as deployed.
#
#   bash tests/bench/dashboard.sh [SECONDS]     (default 10 per measure)
#
# The national synthetic registry (820,000 TPS, 34 provinsi, 30% of the
# PPWP results in) takes a few minutes to load; NATIONAL=0 reads the
# bench's own small registry instead.
source "$(dirname "$0")/lib.sh"
SECS="${1:-10}"
STREAMS="${STREAMS:-10000}"
ulimit -n 65536 2>/dev/null || true
for pkg in wrk nginx; do
  if ! command -v "$pkg" >/dev/null; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
  fi
done
for id in 1 2 3; do start_node dash 7460 "$id" --http-listen "127.0.0.1:$((7560 + id))"; done
read -ra A <<<"$(rekap_args 7460 tls)"
wait_rekap "${A[@]}"
CONTEST=$("$CTL" "${A[@]}" --json bench -c 16 -n 2000 --operator-certs-dir "$DIR/certs/bench-op" 2>/dev/null \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["contest"])')
if [ "${NATIONAL:-1}" = 1 ]; then
  "$CTL" registry generate "$DIR/nat" --national --demo-results 0.3 >/dev/null
  "$CTL" "${A[@]}" --timeout 600 registry load "$DIR/nat" >/dev/null
  read -ra OP <<<"$(operator_args 7460 PPWP)"
  "$CTL" "${OP[@]}" --timeout 600 import "$DIR/nat/results-ppwp.csv" --batch 1000 >/dev/null
  CONTEST=PPWP
fi
LEADER=$(leader_addr "${A[@]}")
for id in 1 2 3; do [ "127.0.0.1:$((7460 + id))" != "$LEADER" ] && { READ_ID=$id; break; }; done
BASE="https://127.0.0.1:$((7560 + READ_ID))"
NODE_PID=$(cat "$DIR/dash-$READ_ID.pid")
# writes N: 64 writers, each run on a registry and contest of its own
# (BENCH-<run id>, named on stderr, kept in $DIR/w.err).
writes() { "$CTL" "${A[@]}" --json bench -c 64 -n "$1" --operator-certs-dir "$DIR/certs/bench-op" 2>"$DIR/w.err" | summary; }

# A reader that revalidates: it sends the newest ETag it was given.
cat >"$DIR/etag.lua" <<'EOF'
local etag = nil
request = function()
  if etag then wrk.headers["If-None-Match"] = etag end
  return wrk.format()
end
response = function(status, headers, body)
  local t = headers["etag"] or headers["ETag"]
  if t then etag = t end
end
EOF
# reads URL [revalidate]: "reads/s p50 p99 errors" (latencies in ms;
# errors: answers other than 2xx/3xx, and timeouts or broken connections).
reads() {
  local script=()
  [ "${2:-}" = revalidate ] && script=(-s "$DIR/etag.lua")
  wrk -t 2 -c 32 -d "${SECS}s" --latency -H "Accept-Encoding: gzip, br" "${script[@]}" "$1" | python3 -c '
import re, sys
t = sys.stdin.read()
unit = {"us": 0.001, "ms": 1.0, "s": 1000.0}
def lat(p):
    m = re.search(r"\s%s%%\s+([\d.]+)(us|ms|s)" % p, t)
    return float(m.group(1)) * unit[m.group(2)]
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", t)
errors = (int(bad.group(1)) if bad else 0) + (sum(int(g) for g in sock.groups()) if sock else 0)
print("%.0f %.2f %.2f %d" % (float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1)), lat(50), lat(99), errors))'
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
# cpu_s PID: the CPU seconds (user and system) the process has used.
cpu_s() { python3 -c "import os; f=open('/proc/$1/stat').read().rsplit(')', 1)[1].split(); print((int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK'))"; }
# idle NAME URL [revalidate]: a row of reads with no writers, with the
# serving node's CPU per read.
idle() {
  local name="$1"; shift
  local c0 c1; c0=$(cpu_s "$NODE_PID")
  read -r r p50 p99 e < <(reads "$@")
  c1=$(cpu_s "$NODE_PID")
  printf "| %s, one follower, idle | %s | %s | %s | %s | %s |\n" "$name" "$r" "$p50" "$p99" "$e" \
    "$(python3 -c "print('%.1f' % (($c1 - $c0) * 1e6 / max($r * $SECS, 1)))")"
}

API="$BASE/api/v1/wilayah/ID?pemilihan=$CONTEST"
PAGE="$BASE/wilayah/ID?pemilihan=$CONTEST"
curl -sfk "$API" >/dev/null || { echo "the API does not answer at $API" >&2; exit 1; }
echo "national page: $(curl -sfk "$PAGE" | wc -c) bytes ($(curl -sfk -H 'Accept-Encoding: br' "$PAGE" | wc -c) as sent to a browser), JSON: $(curl -sfk "$API" | wc -c) bytes, $(curl -sfk "$API" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(len(d["children"]), "provinsi,", d["totals"]["tps_total"], "TPS")')"
echo "headers: $(curl -sfk -D - -o /dev/null "$PAGE" | grep -iE '^(etag|cache-control):' | tr -d '\r' | paste -sd' ')"

# The nginx front over all three nodes. Requests it sends to a node (cache
# misses, revalidations, background updates) are logged, and only those.
# This build's rekapctl: REKAP_BENCH_BIN's may be older than `certs web`.
"$TARGET/release/rekapctl" certs web --host 127.0.0.1 --ca-dir "$DIR/certs/ca" --out "$DIR/certs/web" >/dev/null
mkdir -p "$DIR/nginx" && chmod 755 "$DIR" "$DIR/nginx"
bash deploy/nginx/render.sh --listen 127.0.0.1:7580 \
  --node 127.0.0.1:7561 --node 127.0.0.1:7562 --node 127.0.0.1:7563 \
  --ca "$DIR/certs/web/ca.crt" --node-name localhost \
  --cert "$DIR/certs/web/web.crt" --key "$DIR/certs/web/web.key" \
  | sed "s|    access_log off;|    log_format upstream '\$upstream_addr';\n    map \$upstream_addr \$went_up { \"\" 0; default 1; }\n    log_subrequest on;\n    access_log $DIR/nginx/upstream.log upstream if=\$went_up;|" \
  >"$DIR/nginx/nginx.conf"
nginx -p "$DIR/nginx" -c "$DIR/nginx/nginx.conf" -g "daemon off;" 2>"$DIR/nginx/error.log" &
FRONT="https://127.0.0.1:7580/wilayah/ID?pemilihan=$CONTEST"
for _ in $(seq 1 100); do curl -sfk "$FRONT" >/dev/null && break; sleep 0.1; done
curl -sfk "$FRONT" >/dev/null || { echo "nginx does not answer: $(tail -n 5 "$DIR/nginx/error.log")" >&2; exit 1; }
upstream_lines() { wc -l <"$DIR/nginx/upstream.log" 2>/dev/null || echo 0; }

printf "\n| national totals, 32 connections | reads/s | p50 ms | p99 ms | errors | node CPU per read, us |\n|---|---|---|---|---|---|\n"
idle "JSON API" "$API"
idle "JSON API revalidated" "$API" revalidate
idle "HTML page" "$PAGE"
idle "HTML page revalidated" "$PAGE" revalidate

# Enough writes to outlast the reads beside them (about 7,000 w/s here).
N=$((SECS * 9000))
read -r w0 wp50 wp99 < <(writes "$N")
beside() { # URL [revalidate]: reads while the writers run, then the writers' figures.
  # @C@ in URL: the writers' own contest, so the page changes under them.
  rm -f "$DIR/w.err"
  writes "$N" >"$DIR/w.out" & W=$!
  local url="$1"; shift
  if [[ "$url" == *@C@* ]]; then
    local id=""
    for _ in $(seq 1 300); do
      id=$(grep -o 'prefix B[0-9]*-' "$DIR/w.err" 2>/dev/null | grep -o '[0-9]*' || true)
      [ -n "$id" ] && curl -sfk "${url//@C@/BENCH-$id}" >/dev/null && break
      sleep 0.1
    done
    url="${url//@C@/BENCH-$id}"
  fi
  sleep 1
  read -r r p50 p99 e < <(reads "$url" "$@")
  wait "$W"
  read -r w wq50 wq99 <"$DIR/w.out"
  echo "$r $p50 $p99 $e $w $wq50 $wq99"
}
declare -A R
CHANGING_API="$BASE/api/v1/wilayah/ID?pemilihan=@C@"
CHANGING_PAGE="$BASE/wilayah/ID?pemilihan=@C@"
NAMES=("JSON API" "JSON API revalidated" "HTML page" "HTML page revalidated" "JSON API of the contest being written" "HTML page of the contest being written")
for what in "JSON API|$API|" "JSON API revalidated|$API|revalidate" "HTML page|$PAGE|" "HTML page revalidated|$PAGE|revalidate" \
    "JSON API of the contest being written|$CHANGING_API|" "HTML page of the contest being written|$CHANGING_PAGE|"; do
  IFS='|' read -r name url mode <<<"$what"
  R[$name]="$(beside "$url" $mode)"
done
up0=$(upstream_lines)
R[nginx]="$(beside "$FRONT")"
up1=$(upstream_lines)
for name in "${NAMES[@]}"; do
  read -r r p50 p99 e _ <<<"${R[$name]}"
  printf "| %s, one follower, 64 writers running | %s | %s | %s | %s | |\n" "$name" "$r" "$p50" "$p99" "$e"
done
read -r r p50 p99 e _ <<<"${R[nginx]}"
printf "| HTML page through nginx (3 nodes), 64 writers running | %s | %s | %s | %s | |\n" "$r" "$p50" "$p99" "$e"
sed -n "$((up0 + 1)),${up1}p" "$DIR/nginx/upstream.log" | grep -o '127.0.0.1:756[1-3]' | sort | uniq -c \
  | awk -v s="$SECS" '{printf "%s%s %.1f/s", (NR>1?", ":""), $2, $1/s} END {print ""}' >"$DIR/per-node"
echo
echo "requests nginx sent to the nodes while it served that page: $((up1 - up0)) in all; per node: $(cat "$DIR/per-node")"

printf "\n| 64 writers | writes/s | p50 ms | p99 ms | against alone |\n|---|---|---|---|---|\n"
printf "| alone | %s | %s | %s | 1.00 |\n" "$w0" "$wp50" "$wp99"
for name in "${NAMES[@]}" nginx; do
  read -r _ _ _ _ w b50 b99 <<<"${R[$name]}"
  label="beside $name readers"; [ "$name" = nginx ] && label="beside readers through nginx"
  printf "| %s | %s | %s | %s | %s |\n" "$label" "$w" "$b50" "$b99" "$(ratio "$w" "$w0")"
done

# Readers at a set pace (an open loop, as a crowd is; wrk above sends as
# fast as answers come back): the targets' rates, 64 writers running.
# Latency counts from each request's due time (rekap-http-load).
paced() { # ADDR PATH RATE [revalidate]: "answered/s p50 p99 p999 errors 304s"
  "$TARGET/release/rekap-http-load" --addr "$1" --ca-dir "$DIR/certs/ca" --path "$2" \
    --rate "$3" --secs "$SECS" --connections 64 ${4:+--revalidate}
}
beside_paced() { # ADDR PATH RATE [revalidate]: the readers' figures, then the writers'
  writes "$((SECS * 12000))" >"$DIR/w.out" & W=$!
  sleep 1
  local r; r="$(paced "$@")"
  wait "$W"
  echo "$r $(cat "$DIR/w.out")"
}
NODE_ADDR="127.0.0.1:$((7560 + READ_ID))"
printf "\n| paced readers, 64 writers running | asked/s | answered/s | p50 ms | p99 ms | p99.9 ms | errors | writers against alone |\n|---|---|---|---|---|---|---|---|\n"
for what in "national JSON API, one follower|$NODE_ADDR|/api/v1/wilayah/ID?pemilihan=$CONTEST|20000|" \
    "national JSON API revalidated, one follower|$NODE_ADDR|/api/v1/wilayah/ID?pemilihan=$CONTEST|20000|revalidate" \
    "national HTML page, one follower|$NODE_ADDR|/wilayah/ID?pemilihan=$CONTEST|10000|" \
    "national HTML page revalidated, one follower|$NODE_ADDR|/wilayah/ID?pemilihan=$CONTEST|10000|revalidate" \
    "national HTML page through nginx (3 nodes)|127.0.0.1:7580|/wilayah/ID?pemilihan=$CONTEST|30000|"; do
  IFS='|' read -r name addr path rate mode <<<"$what"
  read -r r p50 p99 p999 e _ w _ _ < <(beside_paced "$addr" "$path" "$rate" $mode)
  printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n" "$name" "$rate" "$r" "$p50" "$p99" "$p999" "$e" "$(ratio "$w" "$w0")"
done

# Live pages: STREAMS event streams on the follower, over the national
# page and every provinsi's.
PATHS=(--path "/api/v1/events/ID?pemilihan=$CONTEST")
for code in $(curl -sfk "$API" | python3 -c 'import json,sys; print(" ".join(c["code"] for c in json.load(sys.stdin)["children"]))'); do
  PATHS+=(--path "/api/v1/events/$code?pemilihan=$CONTEST")
done
rss0=$(rss_kib "$NODE_PID")
"$TARGET/release/rekap-sse-crowd" --addr "127.0.0.1:$((7560 + READ_ID))" --ca-dir "$DIR/certs/ca" \
  --streams "$STREAMS" "${PATHS[@]}" >"$DIR/crowd.out" 2>&1 & CROWD=$!
for _ in $(seq 1 600); do
  open=$(tail -n 1 "$DIR/crowd.out" 2>/dev/null | python3 -c 'import json,sys; d=json.loads(sys.stdin.read() or "{}"); print(d.get("open",0)+d.get("refused",0)+d.get("failed",0))' 2>/dev/null || echo 0)
  [ "$open" -ge "$STREAMS" ] && break
  sleep 0.5
done
sleep 2
rss1=$(rss_kib "$NODE_PID")
v0=$(tail -n 1 "$DIR/crowd.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["views"])')
read -r ws s50 s99 < <(writes "$N")
last=$(tail -n 1 "$DIR/crowd.out")
kill "$CROWD" 2>/dev/null || true
python3 - "$last" "$v0" "$rss0" "$rss1" "$STREAMS" <<'EOF'
import json, sys
d = json.loads(sys.argv[1]); v0, rss0, rss1, n = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print("\n| live event streams on one follower | |\n|---|---|")
print("| asked for | %d |" % n)
print("| open | %d (refused %d, failed %d) |" % (d["open"], d["refused"], d["failed"]))
print("| node RSS before, with them open | %.0f MiB, %.0f MiB |" % (rss0 / 1024, rss1 / 1024))
print("| memory per open stream | %.1f KiB |" % ((rss1 - rss0) / max(d["open"], 1)))
print("| views received while the writers ran | %d |" % (d["views"] - v0))
EOF
printf "\n| 64 writers | writes/s | p50 ms | p99 ms | against alone |\n|---|---|---|---|---|\n"
printf "| beside %s open event streams | %s | %s | %s | %s |\n" "$STREAMS" "$ws" "$s50" "$s99" "$(ratio "$ws" "$w0")"

# Event streams on the contest being written: STREAMS browsers on the
# national page of the writers' own contest, each sent a view a second.
# One long run of writes (its acknowledgement times kept): the writers'
# rate while the streams are open, against the same run's rate after
# they close.
rm -f "$DIR/w.err"
"$CTL" "${A[@]}" --json bench -c 64 -n "$((SECS * 40000))" --timeline "$DIR/acks" \
  --operator-certs-dir "$DIR/certs/bench-op" 2>"$DIR/w.err" >"$DIR/w.out" & W=$!
id=""
for _ in $(seq 1 300); do
  id=$(grep -o 'prefix B[0-9]*-' "$DIR/w.err" 2>/dev/null | grep -o '[0-9]*' || true)
  [ -n "$id" ] && curl -sfk "$BASE/api/v1/wilayah/ID?pemilihan=BENCH-$id" >/dev/null && break
  sleep 0.1
done
"$TARGET/release/rekap-sse-crowd" --addr "127.0.0.1:$((7560 + READ_ID))" --ca-dir "$DIR/certs/ca" \
  --streams "$STREAMS" --path "/api/v1/events/ID?pemilihan=BENCH-$id" >"$DIR/crowd2.out" 2>&1 & CROWD=$!
for _ in $(seq 1 600); do
  open=$(tail -n 1 "$DIR/crowd2.out" 2>/dev/null | python3 -c 'import json,sys; d=json.loads(sys.stdin.read() or "{}"); print(d.get("open",0)+d.get("refused",0)+d.get("failed",0))' 2>/dev/null || echo 0)
  [ "$open" -ge "$STREAMS" ] && break
  sleep 0.5
done
t1=$(now); v1=$(tail -n 1 "$DIR/crowd2.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["views"])')
sleep "$SECS"
t2=$(now); last=$(tail -n 1 "$DIR/crowd2.out")
kill "$CROWD" 2>/dev/null || true
t3=$(now)
wait "$W"
python3 - "$DIR/acks" "$t1" "$t2" "$t3" "$last" "$v1" "$STREAMS" <<'EOF'
import json, sys
acks = sorted(float(l) for l in open(sys.argv[1]) if l.strip())
t1, t2, t3 = (float(x) for x in sys.argv[2:5])
d = json.loads(sys.argv[5]); v1 = int(sys.argv[6]); n = int(sys.argv[7])
def rate(a, b):
    return sum(1 for t in acks if a <= t < b) / max(b - a, 1e-9)
after0 = t3 + 1.0
after1 = min(acks[-1], after0 + (t2 - t1))
w_open, w_after = rate(t1, t2), rate(after0, after1)
print("\n| %d event streams on the contest being written | |\n|---|---|" % n)
print("| open | %d (refused %d, failed %d) |" % (d["open"], d["refused"], d["failed"]))
print("| views received per second | %.0f |" % ((d["views"] - v1) / (t2 - t1)))
print("| writes/s with them open, after they closed (%.0f s each) | %.0f, %.0f |" % (t2 - t1, w_open, w_after))
print("| writers with the streams open, against after | %.2f |" % (w_open / max(w_after, 1)))
EOF
