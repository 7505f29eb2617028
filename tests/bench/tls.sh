#!/usr/bin/env bash
# The price of TLS and authorization: the same closed-loop write benchmark
# (rekapctl bench, durable single submissions) against two local 3-node
# clusters on this machine, one as deployed (mutual TLS, an operator
# submitting, authorization at propose and at apply) and one started with
# --insecure, alternating between them at each client count. A benchmark,
# not a test: it prints figures and the ratio.
#
#   bash tests/bench/tls.sh [COUNT] [CLIENTS...]     (default 3000; 1 16 64)
source "$(dirname "$0")/lib.sh"
COUNT="${1:-3000}"; shift || true
CLIENTS=("${@:-1 16 64}"); CLIENTS=(${CLIENTS[*]})
start_rekap tls 7400
start_rekap plain 7410 --insecure
read -ra TLS <<<"$(rekap_args 7400 tls)"
read -ra PLAIN <<<"$(rekap_args 7410 insecure)"
wait_rekap "${TLS[@]}"; wait_rekap "${PLAIN[@]}"

printf "| clients | TLS+auth w/s | p50 ms | p99 ms | insecure w/s | p50 ms | p99 ms | TLS/insecure |\n|---|---|---|---|---|---|---|---|\n"
for c in "${CLIENTS[@]}"; do
  read -r tw tp50 tp99 < <(rekap_bench "$c" "$COUNT" "${TLS[@]}")
  read -r pw pp50 pp99 < <(rekap_bench "$c" "$COUNT" "${PLAIN[@]}")
  printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n" "$c" "$tw" "$tp50" "$tp99" "$pw" "$pp50" "$pp99" "$(ratio "$tw" "$pw")"
done
