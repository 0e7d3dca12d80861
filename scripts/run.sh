#!/usr/bin/env bash
# Sets up, builds and starts the tiermesh mesh on this machine, sends the
# example prompts through it and prints what happened to each, then keeps the
# mesh running (metrics URLs printed) until Ctrl+C stops it cleanly.
#
# Services started (those built in this checkout), each on loopback:
#   classifier   gRPC 127.0.0.1:50051  metrics http://127.0.0.1:9461/metrics
#   worker       gRPC 127.0.0.1:50052  metrics http://127.0.0.1:9462/metrics
#   cloud-proxy  gRPC 127.0.0.1:50053  metrics http://127.0.0.1:9463/metrics
#   router       gRPC 127.0.0.1:50050  metrics http://127.0.0.1:9460/metrics
# Environment: TIERMESH_PROMPTS=FILE (one prompt per line; default
# deploy/examples/prompts.txt), TIERMESH_RUN_ONCE=1 (stop after the table,
# for scripts and tests).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

scripts/bootstrap.sh
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake --preset release >/dev/null
bin="$root/build/release"
# Build only the binaries the mesh runs (those this checkout has).
targets=()
known="$(ninja -C "$bin" -t targets all 2>/dev/null | cut -d: -f1)"
for t in tiermesh-cli tiermesh-classifier tiermesh-worker tiermesh-cloud-proxy tiermesh-router \
         tiermesh-make-test-model; do
  if grep -qx "$t" <<<"$known"; then targets+=("$t"); fi
done
cmake --build --preset release -j "$(nproc)" --target "${targets[@]}"
cli="$bin/tools/cli/tiermesh-cli"
prompts="${TIERMESH_PROMPTS:-deploy/examples/prompts.txt}"
[ -r "$prompts" ] || { echo "run.sh: error: cannot read prompts file $prompts" >&2; exit 1; }

logdir="$(mktemp -d "${TMPDIR:-/tmp}/tiermesh-run.XXXXXX")"
pids=()
stop_all() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    echo "run.sh: stopping the mesh (SIGTERM, drain)..." >&2
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
  fi
  echo "run.sh: stopped; logs in $logdir" >&2
}
trap stop_all INT TERM EXIT

# start NAME BINARY GRPC_PORT METRICS_PORT [ARGS...]
start() {
  local name="$1" exe="$2" grpc_port="$3" metrics_port="$4"; shift 4
  [ -x "$exe" ] || return 1
  "$exe" --grpc_address "127.0.0.1:$grpc_port" --metrics_address "127.0.0.1:$metrics_port" "$@" \
    >"$logdir/$name.log" 2>&1 &
  pids+=("$!")
  if ! "$cli" health --address "127.0.0.1:$grpc_port" --wait 120s >/dev/null; then
    echo "run.sh: error: $name did not become SERVING; last log lines:" >&2
    tail -n 5 "$logdir/$name.log" >&2
    exit 1
  fi
  printf 'run.sh: %-11s SERVING on 127.0.0.1:%s   metrics http://127.0.0.1:%s/metrics\n' \
    "$name" "$grpc_port" "$metrics_port" >&2
}

started=0
if start classifier "$bin/services/classifier/tiermesh-classifier" 50051 9461 \
    --config deploy/config/classifier.yaml; then
  started=$((started + 1))
else
  echo "run.sh: classifier: not built in this checkout; the router routes unclassified" >&2
fi
# The cloud-proxy runs offline (no provider configured) unless you pass it a
# config with keys: TIERMESH_CLOUD_CONFIG=services/cloud_proxy/cloud-proxy.example.yaml
cloud_args=()
if [ -n "${TIERMESH_CLOUD_CONFIG:-}" ]; then
  cloud_args=(--config "$TIERMESH_CLOUD_CONFIG")
else
  echo "run.sh: cloud-proxy: OFFLINE (no providers configured; cloud tiers answer UNAVAILABLE)" >&2
fi
start cloud-proxy "$bin/services/cloud_proxy/tiermesh-cloud-proxy" 50053 9463 \
  ${cloud_args[@]+"${cloud_args[@]}"} && started=$((started + 1))
start router "$bin/services/router/tiermesh-router" 50050 9460 \
  --config deploy/config/router.yaml && started=$((started + 1))
if [ "$started" -eq 0 ]; then
  echo "run.sh: error: no service binary was built" >&2
  exit 1
fi

# The worker's gRPC service is not in this checkout yet, so the table shows
# the router's decision for each prompt (RouterService.Explain, a dry run that
# calls no backend): task, complexity, the rule that matched, the tier and
# backend it would use, and the worst-case cost of the first cloud fallback.
printf '\n%-60s %-9s %-6s %-18s %-14s %-14s %s\n' \
  "prompt" "task" "cmplx" "rule" "tier" "backend" "cloud worst-case USD"
while IFS= read -r prompt; do
  [ -n "$prompt" ] || continue
  json="$("$cli" explain --address 127.0.0.1:50050 --text "$prompt")"
  python3 - "$prompt" "$json" <<'PY'
import json, sys
prompt, r = sys.argv[1], json.loads(sys.argv[2])
d = r["decision"]
c = d.get("classification", {})
task = c.get("task", "TASK_TYPE_UNSPECIFIED").replace("TASK_TYPE_", "").lower()
task = "-" if task == "unspecified" else task
cmplx = f"{c['complexity']:.2f}" if "complexity" in c else "-"
cloud = [x for x in r.get("candidates", []) if x.get("worst_case_cost", {}).get("usd")]
worst = f"{cloud[0]['worst_case_cost']['usd']:.6f}" if cloud else "-"
short = prompt if len(prompt) <= 58 else prompt[:55] + "..."
print(f"{short:<60} {task:<9} {cmplx:<6} {d.get('rule', ''):<18} "
      f"{d.get('tier', ''):<14} {d.get('backend', ''):<14} {worst}")
PY
done <"$prompts"
echo
if [ "${TIERMESH_RUN_ONCE:-0}" = "1" ]; then
  exit 0
fi
echo "run.sh: the mesh is running; Ctrl+C stops it." >&2
wait
