#!/usr/bin/env bash
# Runs Rekap's whole test suite: unit tests of the tally state machine, the
# openraft storage suite on RocksDB, and the cluster scenarios on real
# rekap-node processes over loopback. Works on a fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."
source deploy/prereqs.sh

# One profile (release) for tests, binaries and images.
cargo build --release --locked --workspace --bins
# Cluster scenarios start several processes each; one at a time keeps their
# timing meaningful on a small machine.
cargo test --release --locked --workspace -- --test-threads=1
