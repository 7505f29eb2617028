#!/usr/bin/env bash
# Builds the caching front's image (default tag rekap-nginx:local) for the
# compose cluster on a machine that can pull no image: FROM scratch, with
# Debian's nginx (installed here if missing) and the libraries ldd says it
# needs.
#
#   bash deploy/nginx/build.sh [TAG]
set -euo pipefail
cd "$(dirname "$0")/../.."
TAG="${1:-${REKAP_NGINX_IMAGE:-rekap-nginx:local}}"
if ! command -v nginx >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi
nginx_bin="$(command -v nginx)"

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/sbin" "$root/etc/rekap-nginx" "$root/var/cache/rekap-nginx" "$root/tmp"
chmod 1777 "$root/tmp"
chmod 755 "$root/var/cache/rekap-nginx"
cp "$nginx_bin" "$root/usr/sbin/nginx"
for lib in $(ldd "$nginx_bin" | grep -o '/[^ ]*' | grep -v ':$' | sort -u); do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
# The master runs as root and its workers as nobody: nginx looks both up.
printf 'root:x:0:0::/:/nonexistent\nnobody:x:65534:65534::/:/nonexistent\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
bash deploy/nginx/render.sh --listen 0.0.0.0:8443 \
  --node rekap1:7100 --node rekap2:7100 --node rekap3:7100 \
  --ca /certs/ca.crt --node-name rekap \
  --cert /certs/web.crt --key /certs/web.key >"$root/etc/rekap-nginx/nginx.conf"
cp deploy/nginx/Dockerfile "$ctx/"
docker build -q -t "$TAG" "$ctx" >/dev/null
echo "built image $TAG"
