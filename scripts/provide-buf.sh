#!/usr/bin/env bash
# Prints the path of a `buf` binary (the protobuf linter), installing the pinned
# npm package @bufbuild/buf into ~/.cache/tiermesh/buf/<version> on first use.
# Used by the proto_lint test (buf's STANDARD lint rules over proto/).
set -euo pipefail
BUF_VERSION="1.47.2"
if command -v buf >/dev/null 2>&1; then command -v buf; exit 0; fi
dir="${TIERMESH_CACHE:-$HOME/.cache/tiermesh}/buf/$BUF_VERSION"
bin="$dir/node_modules/.bin/buf"
if [ ! -x "$bin" ]; then
  command -v npm >/dev/null 2>&1 || { echo "provide-buf: npm not found" >&2; exit 1; }
  mkdir -p "$dir"
  tmp="$(mktemp -d "$dir.tmp.XXXXXX")"
  (cd "$tmp" && npm install --no-save --no-audit --no-fund --silent "@bufbuild/buf@$BUF_VERSION" >&2)
  rm -rf "$dir" && mv "$tmp" "$dir"
fi
"$bin" --version >/dev/null
echo "$bin"
