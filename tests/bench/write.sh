#!/usr/bin/env bash
# Durable single writes, Rekap against etcd 3.4 on the same loopback, 3
# members each, alternating at each client count so both see the same noise.
# TLS off on both sides for the ratio; Rekap as deployed (TLS, an operator
# submitting, authorization at propose and apply) printed beside it. Each
# system's CPU per 1,000 writes (its three members or nodes, not the load
# generator) is printed too: on this 2-core box the rates share the cores,
# so a regression in what a write costs shows there first. It covers the
# whole bench run, so Rekap's includes registering the run's TPS and
# checking its totals at the end (etcd has neither).
#
#   bash tests/bench/write.sh [COUNT] [CLIENTS...]     (default 5000; 1 16 64 256)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/etcd.sh"
COUNT="${1:-5000}"; shift || true
CLIENTS=("${@:-1 16 64 256}"); CLIENTS=(${CLIENTS[*]})
start_etcd 7500
start_rekap plain 7410 --insecure
start_rekap tls 7400
read -ra PLAIN <<<"$(rekap_args 7410 insecure)"
read -ra TLS <<<"$(rekap_args 7400 tls)"
wait_rekap "${PLAIN[@]}"; wait_rekap "${TLS[@]}"

EPIDS=($(pgrep -f -- "--data-dir $DIR/etcd-"))
PPIDS=($(cat "$DIR"/plain-[123].pid))
TPIDS=($(cat "$DIR"/tls-[123].pid))
# cpu_of PIDS-ARRAY-NAME COMMAND...: runs the bench, printing its line
# followed by the processes' CPU ticks during it.
cpu_of() {
  local -n pids="$1"; shift
  local t0 line; t0=$(ticks "${pids[@]}")
  line=$("$@")
  echo "$line $(( $(ticks "${pids[@]}") - t0 ))"
}

printf "| clients | etcd w/s | etcd p50 | etcd p99 | Rekap w/s | Rekap p50 | Rekap p99 | Rekap/etcd | Rekap TLS+auth w/s | p50 | p99 | CPU ms per 1k writes: etcd / Rekap / Rekap TLS+auth |\n"
printf "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
for c in "${CLIENTS[@]}"; do
  read -r ew ep50 ep99 ec < <(cpu_of EPIDS etcd_bench "$c" "$COUNT")
  read -r rw rp50 rp99 rc < <(cpu_of PPIDS rekap_bench "$c" "$COUNT" "${PLAIN[@]}")
  read -r tw tp50 tp99 tc < <(cpu_of TPIDS rekap_bench "$c" "$COUNT" "${TLS[@]}")
  printf "| %s | %s | %s ms | %s ms | %s | %s ms | %s ms | %s | %s | %s ms | %s ms | %s / %s / %s |\n" \
    "$c" "$ew" "$ep50" "$ep99" "$rw" "$rp50" "$rp99" "$(ratio "$rw" "$ew")" "$tw" "$tp50" "$tp99" \
    "$(cpu_per_1k "$ec" "$COUNT")" "$(cpu_per_1k "$rc" "$COUNT")" "$(cpu_per_1k "$tc" "$COUNT")"
done
