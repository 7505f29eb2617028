#!/usr/bin/env bash
# Runs Rekap's whole test suite: unit tests of the tally state machine, the
# openraft storage suite on RocksDB, the cluster scenarios on real rekap-node
# processes over loopback, and a short fault-injection run (20 faults) on
# node containers. Works on a fresh machine with Docker running.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/prereqs.sh
# The metrics scenario lints each node's /metrics with promtool (Debian's
# prometheus package).
if ! command -v promtool >/dev/null; then
  echo "installing prometheus (promtool checks the nodes' metrics)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
# The dashboard scenario drives Debian's headless Chromium.
if ! command -v chromium >/dev/null; then
  echo "installing chromium (the dashboard's browser test)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
# The caching front's scenario runs Debian's nginx with deploy/nginx.
if ! command -v nginx >/dev/null; then
  echo "installing nginx (the caching front's test)" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
# The Kotabaru night draws its chart with DejaVu Sans.
if [ ! -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends fonts-dejavu-core >/dev/null
fi
docker info >/dev/null 2>&1 || { echo "the tests need a running Docker engine (fault injection runs nodes as containers)" >&2; exit 1; }

# One profile (release) for tests, binaries and images.
cargo build --release --locked --workspace --bins
# The fault-injection scenario runs the nodes as containers of this image.
bash deploy/image/build.sh
# Cluster scenarios start several processes each; one at a time keeps their
# timing meaningful on a small machine.
cargo test --release --locked --workspace -- --test-threads=1
