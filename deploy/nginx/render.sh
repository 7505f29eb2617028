#!/usr/bin/env bash
# Writes the caching front's nginx.conf (deploy/nginx/nginx.conf.template
# with its @...@ names filled in) to stdout.
#
#   bash deploy/nginx/render.sh --listen ADDR --node HOST:PORT [--node ...] \
#     --ca CA.crt --node-name NAME --cert WEB.crt --key WEB.key
#
# --node: each node's --http-listen address as nginx reaches it.
# --node-name: a name every node's certificate carries (proxy_ssl_name).
set -euo pipefail
here="$(dirname "$0")"
listen="" ca="" name="" cert="" key="" upstreams=""
while [ $# -gt 0 ]; do
  case "$1" in
    --listen) listen="$2" ;;
    --node) upstreams+="        server $2 max_fails=1 fail_timeout=5s;"$'\n' ;;
    --ca) ca="$2" ;;
    --node-name) name="$2" ;;
    --cert) cert="$2" ;;
    --key) key="$2" ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done
for v in listen ca name cert key upstreams; do
  [ -n "${!v}" ] || { echo "missing --${v%s} (see the header of $0)" >&2; exit 2; }
done
while IFS= read -r line; do
  case "$line" in
    @UPSTREAMS@) printf '%s' "$upstreams" ;;
    *)
      line="${line//@LISTEN@/$listen}"
      line="${line//@CA@/$ca}"
      line="${line//@NODE_NAME@/$name}"
      line="${line//@CERT@/$cert}"
      line="${line//@KEY@/$key}"
      printf '%s\n' "$line"
      ;;
  esac
done <"$here/nginx.conf.template"
