#!/usr/bin/env bash
# Runs the whole tiermesh test suite, doing all set-up first:
#   1. installs the Debian packages the build and tests need (scripts/bootstrap.sh),
#   2. provides a llama-server binary for the tests that run the real one
#      (PATH, else built once from pinned sources and cached in ~/.cache/tiermesh),
#   3. provides buf (npm @bufbuild/buf, pinned) for the API lint test,
#   4. configures, builds and runs ctest with the `dev` preset (debug, -Werror),
#   5. builds and runs the unit tests again under ASan+UBSan (`asan` preset).
# Environment: TIERMESH_SKIP_ASAN=1 skips step 5 (quicker local runs);
#              CTEST_ARGS adds arguments to both ctest runs (e.g. "-R classifier").
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-5G}"
# Paths relative to the checkout, so that a fresh clone elsewhere hits the cache.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
jobs="$(nproc)"

if [ -x scripts/provide-llama-server.sh ]; then
  TIERMESH_LLAMA_SERVER="$(scripts/provide-llama-server.sh)"
  export TIERMESH_LLAMA_SERVER
  echo "test.sh: llama-server: $TIERMESH_LLAMA_SERVER" >&2
fi

TIERMESH_BUF="$(scripts/provide-buf.sh)"
export TIERMESH_BUF

run_preset() {
  local preset="$1"; shift
  echo "test.sh: === preset $preset ===" >&2
  cmake --preset "$preset" >/dev/null
  cmake --build --preset "$preset" -j "$jobs"
  # shellcheck disable=SC2086
  ctest --preset "$preset" "$@" ${CTEST_ARGS:-}
}

if [ "${TIERMESH_SKIP_ASAN:-0}" != "1" ]; then
  run_preset asan -L unit
fi
run_preset dev
