#!/usr/bin/env bash
# The Kotabaru night, replayed in full: KPU Kotabaru's 892 TPS of the 2020
# Pilkada (rebuilt from the real 2019 results of its 21 kecamatan) arrive
# over an evening compressed into SECONDS (default 300) on five real nodes
# on loopback, TLS throughout. The leader is killed (kill -9) at "15:00"
# and stays down; the next leader is killed at "18:00" and comes back at
# "19:00". Writes a chart (PNG) and a markdown report to OUT (default
# ./kotabaru-night). Then the variant with stations: the whole cluster down
# from 15:00 to 21:30, as in 2020, while each kecamatan's PPK office keeps
# typing into its own rekap-station; its chart shows tersimpan and terkirim
# against the clock (kotabaru-night-stations.png and .md).
#
#   bash deploy/kotabaru-night.sh [SECONDS] [OUT]
#
# The same scenario, one minute long, runs in the test suite
# (tests/tests/kotabaru_night.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_LONG="${1:-300}"
OUT="$(realpath -m "${2:-kotabaru-night}")"
source deploy/prereqs.sh
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends fonts-dejavu-core >/dev/null
fi
cargo build --release --locked --workspace --bins
mkdir -p "$OUT"
rm -f "$OUT/kotabaru-night.md" "$OUT/kotabaru-night-stations.md"
for variant in kotabaru_night kotabaru_night_stations; do
  REKAP_NIGHT_SECONDS="$SECONDS_LONG" REKAP_NIGHT_OUT="$OUT" \
    cargo test --release --locked -p rekap-tests --test "$variant" -- --nocapture 2>&1 \
    | grep -v -E '^\s*$|INFO|WARN' || true
done
for report in kotabaru-night kotabaru-night-stations; do
  test -s "$OUT/$report.md" || { echo "$report did not finish; see the output above" >&2; exit 1; }
  echo "report: $OUT/$report.md, chart: $OUT/$report.png"
done
