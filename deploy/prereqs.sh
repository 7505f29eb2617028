#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build Rekap: libclang (the
# rocksdb crate's build runs bindgen). Rust and cargo are expected; protoc is
# not (it comes from the protoc-bin-vendored crate). Sourced by the scripts.
set -euo pipefail

have_libclang() {
  # The C API library bindgen loads (libclang-cpp does not count).
  compgen -G "/usr/lib/llvm-*/lib/libclang.so*" >/dev/null || compgen -G "/usr/lib/*/libclang-[0-9]*.so*" >/dev/null
}

if ! have_libclang; then
  echo "installing libclang-dev (needed by the rocksdb crate's bindgen)" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libclang-dev >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo is required (install Rust with rustup)" >&2; exit 1; }
