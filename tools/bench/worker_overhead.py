#!/usr/bin/python3
"""The worker's added streaming overhead (issue 4's benchmark), end to end on this machine.

    tools/bench/worker_overhead.py --build build/release [--requests 200] [--max_tokens 64]

Generates the tiny test model (tiermesh-make-test-model), starts llama-server on a free loopback
port with the command line the worker itself uses for managed models (scripts/provide-llama-
server.sh --no-build finds the binary), starts tiermesh-worker (deploy/config/worker.yaml with the
model made `external`, pointing at that llama-server), then runs tiermesh-worker-bench, which
streams the same prompts through the worker and straight from llama-server, alternating, and
prints JSON (added TTFT at p50, added per-token time at p50; targets: under 1 ms and under
50 us). Figures only: nothing is asserted. Use an optimised build (the release preset).
"""
import argparse
import json
import os
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from service_ports import wait_ports  # beside this file

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True, help="build tree (e.g. build/release)")
    parser.add_argument("--requests", default="200")
    parser.add_argument("--warmup", default="10")
    parser.add_argument("--max_tokens", default="64")
    parser.add_argument("--threads", default="2", help="llama-server --threads")
    parser.add_argument("--rounds", type=int, default=1,
                        help="benchmark rounds against the same services (median reported)")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    found = subprocess.run([os.path.join(SOURCE, "scripts/provide-llama-server.sh"), "--no-build"],
                           capture_output=True, text=True)
    if found.returncode != 0:
        raise SystemExit("worker_overhead: no llama-server (scripts/provide-llama-server.sh)")
    llama = found.stdout.strip()
    work = tempfile.mkdtemp(prefix="tiermesh-worker-bench-")
    procs = []
    logs = []

    def spawn(name, argv, env=None):
        log = open(os.path.join(work, f"{name}.log"), "w")
        logs.append(log)
        procs.append(subprocess.Popen(argv, cwd=SOURCE, env=env, stdout=log,
                                      stderr=subprocess.STDOUT))

    try:
        model = os.path.join(work, "tiny.gguf")
        subprocess.run([os.path.join(build, "tools/make_test_model/tiermesh-make-test-model"),
                        "--output", model, "--ctx", "8192"], check=True, capture_output=True)
        key = secrets.token_hex(16)
        # As services/worker/llama_process.cc starts a managed model (worker.yaml's values), on
        # port 0: the port is read from llama-server's "listening on" line.
        spawn("llama-server", [llama, "--model", model, "--host", "127.0.0.1", "--port", "0",
                               "--ctx-size", "8192", "--parallel", "2", "--threads", args.threads,
                               "--n-gpu-layers", "0", "--no-warmup", "--metrics",
                               "--api-key", key])
        deadline = time.time() + 60
        url = None
        while True:
            if url is None:
                with open(os.path.join(work, "llama-server.log"), errors="replace") as f:
                    found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", f.read())
                url = found.group(1) if found else None
            if url is not None:
                try:
                    with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    pass
            if time.time() > deadline or procs[-1].poll() is not None:
                raise SystemExit("worker_overhead: llama-server did not become ready")
            time.sleep(0.1)
        with open(os.path.join(SOURCE, "deploy/config/worker.yaml")) as f:
            text = f.read()
        text = text[:text.index("\nmodels:\n")] + f"""
models:
  - name: tiny
    external: {{url: "{url}", api_key: "${{BENCH_LLAMA_KEY}}"}}
    max_queue: 8
"""
        worker_yaml = os.path.join(work, "worker.yaml")
        with open(worker_yaml, "w") as f:
            f.write(text)
        ports_file = os.path.join(work, "worker.ports.json")
        spawn("worker", [os.path.join(build, "services/worker/tiermesh-worker"),
                         "--config", worker_yaml, "--grpc_address", "127.0.0.1:0",
                         "--metrics_address", "127.0.0.1:0", "--ports_file", ports_file,
                         "--log_level", "warn"],
              dict(os.environ, BENCH_LLAMA_KEY=key))
        try:
            grpc_port, _ = wait_ports(ports_file, procs[-1], os.path.join(work, "worker.log"))
        except RuntimeError as e:
            raise SystemExit(f"worker_overhead: worker did not start: {e}")
        address = f"127.0.0.1:{grpc_port}"
        health = subprocess.run([os.path.join(build, "tools/cli/tiermesh-cli"), "health",
                                 "--address", address, "--wait", "60s"],
                                capture_output=True, text=True)
        if health.returncode != 0:
            with open(os.path.join(work, "worker.log")) as f:
                raise SystemExit(f"worker_overhead: worker not serving\n{f.read()[-2000:]}")
        rounds = []
        for _ in range(args.rounds):
            out = subprocess.run([os.path.join(build, "tools/bench/tiermesh-worker-bench"),
                                  "--worker", address, "--model", "tiny", "--llama_url", url,
                                  "--llama_api_key", key, "--requests", args.requests,
                                  "--warmup", args.warmup, "--max_tokens", args.max_tokens],
                                 capture_output=True, text=True, timeout=900)
            if out.returncode != 0:
                raise SystemExit(f"worker_overhead: tiermesh-worker-bench failed: {out.stderr}"
                                 f"{out.stdout}")
            rounds.append(json.loads(out.stdout))
        # The last round's full report, plus every round's headline figures and their medians:
        # on a shared 2-core machine one round's p50 moves by +-30% from run to run.
        report = rounds[-1]
        if len(rounds) > 1:
            keys = ("paired_added_ttft_ms_p50", "paired_added_per_token_us_p50",
                    "added_ttft_ms_p50", "added_per_token_us_p50")
            report["rounds"] = [{k: r[k] for k in keys} for r in rounds]
            report["median_of_rounds"] = {k: statistics.median(r[k] for r in rounds)
                                          for k in keys}
        report["cpus"] = os.cpu_count()
        report["build"] = os.path.basename(os.path.normpath(args.build))
        print(json.dumps(report))
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for log in logs:
            log.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
