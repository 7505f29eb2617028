#!/usr/bin/env bash
# The national synthetic election: 820,000 TPS, five contests over each
# (4.1 million results), generated, loaded and imported into a 3-node
# cluster (TLS); the nodes' CPU and RocksDB compactions over the imports;
# then what the state costs a node.
#
#   bash tests/bench/national.sh [SHARE]     (default 1.0: every TPS reports)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/state.sh"
SHARE="${1:-1.0}"
start_rekap nat 7430
read -ra A <<<"$(rekap_args 7430 tls)"
wait_rekap "${A[@]}"
gen=$(t "$CTL" registry generate "$DIR/nat" --national --demo-results "$SHARE")
reg=$(t "$CTL" "${A[@]}" --timeout 300 registry load "$DIR/nat")
read -ra OP <<<"$(operator_args 7430 PPWP)"
printf "| national synthetic | seconds |\n|---|---|\n| generate | %s |\n| registry | %s |\n" "$gen" "$reg"
cpu0=$(ticks $(cat "$DIR"/nat-[123].pid))
for f in "$DIR"/nat/results-*.csv; do
  printf "| import %s (%s rows) | %s |\n" "$(basename "$f")" "$(($(wc -l <"$f") - 1))" \
    "$(t "$CTL" "${OP[@]}" --timeout 300 import "$f" --batch 1000)"
done
cpu=$(( $(ticks $(cat "$DIR"/nat-[123].pid)) - cpu0 ))
printf "\n| national state | value |\n|---|---|\n"
cpu_row "during the imports" "$cpu"
compaction_row nat
rss_rows nat
restart_row nat 7430 PPWP
learner_row nat 7430
idle_row nat
export_row 7430 PPWP
