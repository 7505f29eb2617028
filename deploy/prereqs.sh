#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build Rekap: libclang (the
# rocksdb crate's build runs bindgen). Rust and cargo are expected; protoc is
# not (it comes from the protoc-bin-vendored crate). Sourced by the scripts.
set -euo pipefail

have_libclang() {
  ls /usr/lib/llvm-*/lib/libclang*.so* /usr/lib/x86_64-linux-gnu/libclang*.so* >/dev/null 2>&1
}

if ! have_libclang; then
  echo "installing libclang-dev (needed by the rocksdb crate's bindgen)" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libclang-dev >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is required (install Rust with rustup)" >&2; exit 1; }
