#!/usr/bin/env bash
# The 2019 presidential election replayed into a 3-node cluster (TLS, as
# deployed): conversion of the real file, the registry, the import of every
# complete row, with the nodes' CPU and RocksDB compactions; then what
# the state costs (memory, restart, snapshot catch-up, export); each
# node's peak RSS is given for the registry load, and (beside its RSS) for
# the import alone.
# Needs ../shared/data/pilpres2019_tps.csv.gz.
#
#   bash tests/bench/replay.sh
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/state.sh"
DATA="${REKAP_DATA:-$PWD/../shared/data}/pilpres2019_tps.csv.gz"
[ -f "$DATA" ] || { echo "missing $DATA" >&2; exit 1; }
start_rekap p19 7420
read -ra A <<<"$(rekap_args 7420 tls)"
wait_rekap "${A[@]}"
conv=$(t "$CTL" pilpres2019 "$DATA" --out "$DIR/p19")
reg=$(t "$CTL" "${A[@]}" --timeout 120 registry load "$DIR/p19")
# The registry's 8 MiB entries and the import's batches weigh differently:
# each gets its own peak.
reg_peaks=$(peaks p19)
read -ra OP <<<"$(operator_args 7420 PPWP-2019)"
# The import keeps both cores busy, so its time follows the nodes' CPU.
cpu0=$(ticks $(cat "$DIR"/p19-[123].pid))
imp=$(t "$CTL" "${OP[@]}" --timeout 120 import "$DIR/p19/results.csv" --batch 1000)
cpu=$(( $(ticks $(cat "$DIR"/p19-[123].pid)) - cpu0 ))
# The operator's grant between the steps is setup, not replay.
whole=$(python3 -c "print('%.2f' % ($conv + $reg + $imp))")
printf "| 2019 replay | seconds |\n|---|---|\n| conversion | %s |\n| registry | %s |\n| import | %s |\n| whole replay | %s |\n\n" \
  "$conv" "$reg" "$imp" "$whole"
printf "| 2019 state | value |\n|---|---|\n"
cpu_row "during the import" "$cpu"
compaction_row p19
printf "| peak RSS during the registry load, nodes 1 / 2 / 3 | %s MiB |\n" "$reg_peaks"
rss_rows p19
restart_row p19 7420 PPWP-2019
learner_row p19 7420
idle_row p19
export_row 7420 PPWP-2019
