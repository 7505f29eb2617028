#!/usr/bin/env bash
# Builds the rekap-node container image (default tag rekap-node:local) on a
# machine that can pull no image: FROM scratch, with the release binaries and
# the shared libraries ldd says they need.
#
#   bash deploy/image/build.sh [TAG]
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG="${1:-${REKAP_IMAGE:-rekap-node:local}}"
TARGET="${CARGO_TARGET_DIR:-target}"
source deploy/prereqs.sh
cargo build --release --locked --workspace --bins

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/local/bin" "$root/data" "$root/tmp"
chmod 1777 "$root/tmp"
cp "$TARGET/release/rekap-node" "$TARGET/release/rekapctl" "$root/usr/local/bin/"
# Every library the binaries load, and the dynamic loader itself.
for lib in $(ldd "$TARGET/release/rekap-node" "$TARGET/release/rekapctl" \
    | grep -o '/[^ ]*' | grep -v ':$' | sort -u); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
cp deploy/image/Dockerfile "$ctx/"
docker build -q -t "$TAG" "$ctx" >/dev/null
echo "built image $TAG"
