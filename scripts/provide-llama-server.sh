#!/usr/bin/env bash
# Prints the path of a usable llama-server binary (for tests that run the real one).
#
#   bin="$(scripts/provide-llama-server.sh)"              # find it, building it if needed
#   bin="$(scripts/provide-llama-server.sh --no-build)"   # find it only; exit 3 if absent
#
# Where it looks, in order:
#   1. $TIERMESH_LLAMA_SERVER (must be an executable file; an unusable value is an error,
#      never silently skipped);
#   2. `llama-server` on PATH;
#   3. the cache: ${XDG_CACHE_HOME:-~/.cache}/tiermesh/llama-server/<version>/bin/llama-server;
#   4. otherwise it builds llama-server into that cache: the llama.cpp sources come from the
#      npm package node-llama-cpp (pinned below, checked against its pinned sha512), which
#      carries them as llama/gitRelease.bundle. Nothing is downloaded from anywhere but the
#      npm registry: the web UI download and every optional fetch are switched off.
#
# The build is CPU only, Release, static (one relocatable file), built with `nice` and ccache
# when present, under an flock so that concurrent callers build once. It happens in a temporary
# directory inside the cache and is renamed into place only after `llama-server --version`
# runs, so a half-built binary is never visible. Progress goes to a log file (its path is
# printed on stderr); stdout carries only the binary's path.
#
# Exit codes: 0 found/built, 1 error (bad $TIERMESH_LLAMA_SERVER, build failure: see the log),
# 2 usage, 3 not available and --no-build given.
#
# Environment: TIERMESH_LLAMA_SERVER, TIERMESH_LLAMA_BUILD_JOBS (default: nproc),
# TIERMESH_LLAMA_BUILD_LOG (default: <cache>/<version>.build.log), XDG_CACHE_HOME.
set -euo pipefail

# The pinned source: node-llama-cpp 3.22.1 carries llama.cpp release tag v0.5.0,
# commit de3ff815ea7d559ee917f063901b8986f038abc6 (2026-09-28).
readonly NLC_VERSION="3.22.1"
readonly NLC_INTEGRITY="sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw=="
readonly LLAMA_COMMIT="de3ff815ea7d559ee917f063901b8986f038abc6"
# Bump the suffix when the build flags change, so that an old cache entry is not reused.
readonly CACHE_VERSION="node-llama-cpp-${NLC_VERSION}-cpu1"

usage() {
  echo "usage: $0 [--no-build] [--print-cache-dir]" >&2
  exit 2
}

no_build=0
print_cache_dir=0
for arg in "$@"; do
  case "$arg" in
    --no-build) no_build=1 ;;
    --print-cache-dir) print_cache_dir=1 ;;
    -h|--help) usage ;;
    *) echo "provide-llama-server: unknown argument: $arg" >&2; usage ;;
  esac
done

cache_root="${XDG_CACHE_HOME:-${HOME:?HOME is not set}/.cache}/tiermesh/llama-server"
cache_dir="${cache_root}/${CACHE_VERSION}"
cached_bin="${cache_dir}/bin/llama-server"

if [ "$print_cache_dir" -eq 1 ]; then
  echo "$cache_dir"
  exit 0
fi

# 1. An explicit choice wins, and a wrong one is an error rather than a silent fallback.
if [ -n "${TIERMESH_LLAMA_SERVER:-}" ]; then
  if [ -f "$TIERMESH_LLAMA_SERVER" ] && [ -x "$TIERMESH_LLAMA_SERVER" ]; then
    echo "$TIERMESH_LLAMA_SERVER"
    exit 0
  fi
  echo "provide-llama-server: TIERMESH_LLAMA_SERVER=$TIERMESH_LLAMA_SERVER is not an executable file" >&2
  exit 1
fi

# 2. PATH.
if path_bin="$(command -v llama-server 2>/dev/null)" && [ -n "$path_bin" ]; then
  echo "$path_bin"
  exit 0
fi

# 3. The cache.
if [ -x "$cached_bin" ]; then
  echo "$cached_bin"
  exit 0
fi

if [ "$no_build" -eq 1 ]; then
  echo "provide-llama-server: no llama-server on PATH or in $cache_dir (run without --no-build to build it)" >&2
  exit 3
fi

# 4. Build it.
for tool in npm git cmake tar flock base64 openssl c++ cc; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "provide-llama-server: '$tool' is needed to build llama-server (see scripts/bootstrap.sh)" >&2
    exit 1
  fi
done

mkdir -p "$cache_root"
log="${TIERMESH_LLAMA_BUILD_LOG:-${cache_root}/${CACHE_VERSION}.build.log}"

exec 9>"${cache_root}/.${CACHE_VERSION}.lock"
if ! flock -n 9; then
  echo "provide-llama-server: another process is building llama-server; waiting for it" >&2
  flock 9
fi
# Whoever held the lock before us may have finished the build.
if [ -x "$cached_bin" ]; then
  echo "$cached_bin"
  exit 0
fi

work="$(mktemp -d "${cache_root}/.build-${CACHE_VERSION}.XXXXXX")"
cleanup() { rm -rf "$work"; }
trap cleanup EXIT

echo "provide-llama-server: building llama-server from node-llama-cpp@${NLC_VERSION}; log: $log" >&2
: >"$log"
start_s="$(date +%s)"
jobs="${TIERMESH_LLAMA_BUILD_JOBS:-$(nproc 2>/dev/null || echo 2)}"

fail() {
  echo "provide-llama-server: $1 (log: $log)" >&2
  tail -n 30 "$log" >&2 || true
  exit 1
}

{
  echo "== $(date -u +%FT%TZ) fetching node-llama-cpp@${NLC_VERSION} from the npm registry"
  (cd "$work" && npm pack --silent "node-llama-cpp@${NLC_VERSION}")
} >>"$log" 2>&1 || fail "npm pack node-llama-cpp@${NLC_VERSION} failed"

tgz="$work/node-llama-cpp-${NLC_VERSION}.tgz"
[ -f "$tgz" ] || fail "npm pack did not produce $tgz"
actual_integrity="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
if [ "$actual_integrity" != "$NLC_INTEGRITY" ]; then
  fail "node-llama-cpp-${NLC_VERSION}.tgz has integrity $actual_integrity, expected $NLC_INTEGRITY"
fi

{
  echo "== extracting llama/gitRelease.bundle"
  tar -xzf "$tgz" -C "$work" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
  rm -f "$tgz"
  echo "== cloning the llama.cpp sources from the bundle"
  git -c advice.detachedHead=false clone --quiet "$work/package/llama/gitRelease.bundle" "$work/src"
} >>"$log" 2>&1 || fail "could not unpack the llama.cpp sources"

head_commit="$(git -C "$work/src" rev-parse HEAD)"
[ "$head_commit" = "$LLAMA_COMMIT" ] || fail "bundle HEAD is $head_commit, expected $LLAMA_COMMIT"
llama_tag="$(sed -n 's/.*"tag": *"\([^"]*\)".*/\1/p' "$work/package/llama/llama.cpp.info.json")"

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # Relative paths let ccache hit across builds in different temporary directories.
  export CCACHE_BASEDIR="$work"
fi
generator=()
if command -v ninja >/dev/null 2>&1; then
  generator=(-G Ninja)
fi

# Why these flags:
#  GGML_NATIVE=OFF: the cache may be shared between machines (CI caches, volumes); a binary
#    tuned to this CPU could die with SIGILL elsewhere. The test model is tiny, so speed is moot.
#  BUILD_SHARED_LIBS=OFF, GGML_OPENMP=OFF: one self-contained file that can be moved/renamed.
#  LLAMA_OPENSSL=OFF, LLAMA_USE_PREBUILT_UI=OFF, LLAMA_BUILD_UI=OFF: nothing is downloaded
#    (the UI would otherwise be fetched from Hugging Face) and no TLS is needed on loopback.
#  No GPU backends: the defaults are off; tests run on CPU.
cmake_flags=(
  -DCMAKE_BUILD_TYPE=Release
  -DBUILD_SHARED_LIBS=OFF
  -DGGML_NATIVE=OFF
  -DGGML_OPENMP=OFF
  -DGGML_CCACHE=OFF
  -DGGML_CUDA=OFF -DGGML_VULKAN=OFF -DGGML_METAL=OFF -DGGML_HIP=OFF -DGGML_SYCL=OFF
  -DLLAMA_OPENSSL=OFF
  -DLLAMA_BUILD_UI=OFF
  -DLLAMA_USE_PREBUILT_UI=OFF
  -DLLAMA_BUILD_TESTS=OFF
  -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_BUILD_APP=OFF
  -DLLAMA_BUILD_SERVER=ON
  -DLLAMA_BUILD_TOOLS=ON
)

{
  echo "== configuring (jobs=$jobs): ${cmake_flags[*]}"
  nice -n 10 cmake -S "$work/src" -B "$work/build" "${generator[@]}" "${launcher[@]}" "${cmake_flags[@]}"
  echo "== building llama-server"
  nice -n 10 cmake --build "$work/build" --target llama-server -j "$jobs"
} >>"$log" 2>&1 || fail "building llama-server failed"

built="$work/build/bin/llama-server"
[ -x "$built" ] || fail "the build did not produce $built"

mkdir -p "$work/install/bin"
cp "$built" "$work/install/bin/llama-server"
version_out="$("$work/install/bin/llama-server" --version 2>&1)" || {
  echo "$version_out" >>"$log"
  fail "the built llama-server does not run"
}
end_s="$(date +%s)"
{
  echo "node-llama-cpp ${NLC_VERSION}"
  echo "llama.cpp tag ${llama_tag:-unknown}"
  echo "llama.cpp commit ${head_commit}"
  echo "built $(date -u +%FT%TZ) in $((end_s - start_s)) s with -j${jobs}"
  echo "cmake flags: ${cmake_flags[*]}"
  echo "--version:"
  echo "$version_out"
} >"$work/install/BUILD_INFO"
cat "$work/install/BUILD_INFO" >>"$log"

# Atomic publication: the cache entry appears complete or not at all. A leftover directory
# without a binary (removed by hand, say) is replaced; we hold the lock.
rm -rf "$cache_dir"
mv -T "$work/install" "$cache_dir"
echo "provide-llama-server: built $cached_bin in $((end_s - start_s)) s" >&2
echo "$cached_bin"
