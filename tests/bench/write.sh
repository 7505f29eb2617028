#!/usr/bin/env bash
# Durable single writes, Rekap against etcd 3.4 on the same loopback, 3
# members each, alternating at each client count so both see the same noise.
# TLS off on both sides for the ratio; Rekap as deployed (TLS, an operator
# submitting, authorization at propose and apply) printed beside it.
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

printf "| clients | etcd w/s | etcd p50 | etcd p99 | Rekap w/s | Rekap p50 | Rekap p99 | Rekap/etcd | Rekap TLS+auth w/s | p50 | p99 |\n"
printf "|---|---|---|---|---|---|---|---|---|---|---|\n"
for c in "${CLIENTS[@]}"; do
  read -r ew ep50 ep99 < <(etcd_bench "$c" "$COUNT")
  read -r rw rp50 rp99 < <(rekap_bench "$c" "$COUNT" "${PLAIN[@]}")
  read -r tw tp50 tp99 < <(rekap_bench "$c" "$COUNT" "${TLS[@]}")
  printf "| %s | %s | %s ms | %s ms | %s | %s ms | %s ms | %s | %s | %s ms | %s ms |\n" \
    "$c" "$ew" "$ep50" "$ep99" "$rw" "$rp50" "$rp99" "$(ratio "$rw" "$ew")" "$tw" "$tp50" "$tp99"
done
