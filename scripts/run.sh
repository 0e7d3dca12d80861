#!/usr/bin/env bash
# Sets up, builds and starts the tiermesh mesh on this machine, sends the
# example prompts through it and prints what happened to each, then keeps the
# mesh running (metrics URLs printed) until Ctrl+C stops it cleanly.
#
# Services started, each on loopback (the worker runs llama-server with the generated test
# model unless TIERMESH_MODEL_PATH names a real GGUF; the cloud-proxy talks to a local fake
# provider unless TIERMESH_CLOUD_CONFIG names a config with provider keys):
#   classifier   gRPC 127.0.0.1:50051  metrics http://127.0.0.1:9461/metrics
#   worker       gRPC 127.0.0.1:50052  metrics http://127.0.0.1:9462/metrics
#   cloud-proxy  gRPC 127.0.0.1:50053  metrics http://127.0.0.1:9463/metrics
#   router       gRPC 127.0.0.1:50050  metrics http://127.0.0.1:9460/metrics
# Environment: TIERMESH_MODEL_PATH=FILE.gguf (the worker's model), TIERMESH_CLOUD_CONFIG=FILE
# (a cloud-proxy config with real providers), TIERMESH_PROMPTS=FILE (one prompt per line; default
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
         tiermesh-make-test-model tiermesh-fake-provider; do
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
# The worker: llama-server (from PATH, else built once and cached: the first time takes about a
# quarter of an hour) with the generated test model unless TIERMESH_MODEL_PATH names a GGUF.
TIERMESH_LLAMA_SERVER="$(scripts/provide-llama-server.sh)"
export TIERMESH_LLAMA_SERVER
if [ -z "${TIERMESH_MODEL_PATH:-}" ]; then
  TIERMESH_MODEL_PATH="$root/build/models/tiny.gguf"
  if [ ! -s "$TIERMESH_MODEL_PATH" ]; then
    mkdir -p "$(dirname "$TIERMESH_MODEL_PATH")"
    "$bin/tools/make_test_model/tiermesh-make-test-model" --output "$TIERMESH_MODEL_PATH" \
      --ctx 8192 >/dev/null
  fi
  echo "run.sh: worker: the generated TEST model (random weights: gibberish answers);" \
    "set TIERMESH_MODEL_PATH=/path/to/model.gguf for a real one" >&2
fi
export TIERMESH_MODEL_PATH
start worker "$bin/services/worker/tiermesh-worker" 50052 9462 \
  --config deploy/config/worker.yaml && started=$((started + 1))

# The cloud-proxy: real providers when TIERMESH_CLOUD_CONFIG names a config with keys
# (e.g. services/cloud_proxy/cloud-proxy.example.yaml), else a local FAKE provider that
# speaks the providers' APIs, so that cloud tiers, fallbacks and costs can be seen offline.
cloud_args=()
if [ -n "${TIERMESH_CLOUD_CONFIG:-}" ]; then
  cloud_args=(--config "$TIERMESH_CLOUD_CONFIG")
else
  "$bin/tests/fakes/fake_provider/tiermesh-fake-provider" \
    --cloud_proxy_config "$logdir/cloud-proxy.yaml" >"$logdir/fake-provider.out" \
    2>"$logdir/fake-provider.log" &
  pids+=("$!")
  for _ in $(seq 100); do [ -s "$logdir/fake-provider.out" ] && break; sleep 0.1; done
  fake_url="$(head -n1 "$logdir/fake-provider.out")"
  [ -n "$fake_url" ] || { echo "run.sh: error: the fake provider did not start" >&2; exit 1; }
  export TIERMESH_FAKE_PROVIDER_KEY=fake-key
  cloud_args=(--config "$logdir/cloud-proxy.yaml")
  echo "run.sh: cloud-proxy: FAKE provider at $fake_url (set TIERMESH_CLOUD_CONFIG for real" \
    "providers with keys)" >&2
fi
start cloud-proxy "$bin/services/cloud_proxy/tiermesh-cloud-proxy" 50053 9463 \
  ${cloud_args[@]+"${cloud_args[@]}"} && started=$((started + 1))
start router "$bin/services/router/tiermesh-router" 50050 9460 \
  --config deploy/config/router.yaml && started=$((started + 1))
if [ "$started" -eq 0 ]; then
  echo "run.sh: error: no service binary was built" >&2
  exit 1
fi

# Each prompt goes through the whole mesh (RouterService.Chat): classified, routed, answered
# by the tier the policy chose (falling back when a tier fails). The table shows the task and
# complexity, the tier and backend that answered, the latency, tokens and cost.
printf '\n%-58s %-9s %-6s %-14s %-14s %8s %7s %12s\n' \
  "prompt" "task" "cmplx" "tier" "backend" "latency" "tokens" "cost USD"
while IFS= read -r prompt; do
  [ -n "$prompt" ] || continue
  started_ns="$(date +%s%N)"
  if json="$("$cli" chat --address 127.0.0.1:50050 --text "$prompt" 2>"$logdir/cli.err")"; then
    ok=1
  else
    ok=0; json="$(cat "$logdir/cli.err")"
  fi
  ended_ns="$(date +%s%N)"
  python3 - "$prompt" "$ok" "$json" "$(( (ended_ns - started_ns) / 1000000 ))" <<'PY'
import json, sys
prompt, ok, text, ms = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
short = prompt if len(prompt) <= 56 else prompt[:53] + "..."
if not ok:
    print(f"{short:<58} error: {text.strip().splitlines()[-1] if text.strip() else '?'}")
    sys.exit(0)
r = json.loads(text)
d = r.get("decision", {})
c = d.get("classification", {})
task = c.get("task", "TASK_TYPE_UNSPECIFIED").replace("TASK_TYPE_", "").lower()
task = "-" if task == "unspecified" else task
cmplx = f"{c['complexity']:.2f}" if "complexity" in c else "-"
served = [a for a in d.get("attempts", []) if a.get("code", "OK") == "OK"]
last = served[-1] if served else {}
tier = last.get("tier", d.get("tier", ""))
backend = last.get("backend", d.get("backend", ""))
if len(d.get("attempts", [])) > 1:
    backend += "*"  # fell back
u = r.get("usage", {})
tokens = int(u.get("prompt_tokens", 0)) + int(u.get("completion_tokens", 0))
cost = r.get("cost", {}).get("usd", 0)
print(f"{short:<58} {task:<9} {cmplx:<6} {tier:<14} {backend:<14} {ms:>6}ms {tokens:>7} "
      f"{cost:>12.8f}")
PY
done <"$prompts"
echo "(* = answered after a fallback)"
echo
if [ "${TIERMESH_RUN_ONCE:-0}" = "1" ]; then
  exit 0
fi
echo "run.sh: the mesh is running; Ctrl+C stops it." >&2
wait
