#!/usr/bin/python3
"""The mesh's own overhead: tiermesh-bench through the full path vs the backend alone.

    tools/bench/mesh_overhead.py --build build/release [--duration 10s] [--concurrency 32]

Starts, on free loopback ports, tiermesh-fake-provider answering instantly (--tokens_per_second 0
--time_to_first_token 0), the cloud-proxy in front of it ("cloud-cheap"), the classifier
(deploy/config/classifier.yaml) and the router with a copy of deploy/config/router.yaml whose
default rule goes to cloud_cheap (and budgets large enough not to interfere). Then runs
tiermesh-bench four times:
  direct_latency   InferenceService.Generate on the cloud-proxy, 1 call in flight
  router_latency   RouterService.Chat on the router (router -> classifier -> cloud-proxy), 1 in flight
  direct_max       the cloud-proxy alone, --concurrency calls in flight (closed loop)
  router_max       the full path, --concurrency calls in flight
and prints one JSON object with the four reports, added_p50_ms (router_latency p50 minus
direct_latency p50; streams: also added_ttft_p50_ms), router_max_rps, and for each run
cpu_us_per_request: the CPU time (user + system, from /proc) that each process (tiermesh-bench
itself included) spent per finished request, which shows where the cores go when everything
shares one small machine. Figures only: nothing is asserted here (targets: under 1 ms added at
p50, at least 2,000 requests/s through the full path on 2 cores). Use an optimised
build (the release preset) for figures worth quoting.
"""
import argparse
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile

from service_ports import first_line, wait_ports  # beside this file

SOURCE = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def replace_once(text, old, new):
    if text.count(old) != 1:
        raise SystemExit(f"mesh_overhead: router.yaml changed, cannot find {old!r}")
    return text.replace(old, new)


def router_config(text):
    # Everything to the cheap cloud tier (the instantly answering fake behind the cloud-proxy).
    text = replace_once(text, "  - name: default\n    tier: local_fast",
                        "  - name: default\n    tier: cloud_cheap")
    # Budgets far above what a benchmark spends, so that no degrade mode kicks in.
    text = replace_once(text, "global_daily_usd: 20", "global_daily_usd: 100000")
    text = replace_once(text, "anonymous: {tenant: local, user_tier: paid, daily_budget_usd: 2}",
                        "anonymous: {tenant: local, user_tier: paid, daily_budget_usd: 100000}")
    return text


class Services:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.dir = tempfile.mkdtemp(prefix="tiermesh-bench-")
        self.procs = []
        self.names = []
        self.files = []

    def spawn(self, name, argv, env=None):
        log = open(os.path.join(self.dir, f"{name}.log"), "w+")
        self.files.append(log)
        self.procs.append(subprocess.Popen(argv, cwd=SOURCE, env=env, stdout=log,
                                           stderr=subprocess.STDOUT))
        self.names.append(name)
        return log

    def cpu_seconds(self):
        """{process name: user + system CPU seconds so far}."""
        tick = os.sysconf("SC_CLK_TCK")
        cpu = {}
        for name, p in zip(self.names, self.procs):
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cpu[name] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        return cpu

    def service(self, name, exe, config, env):
        ports_file = os.path.join(self.dir, f"{name}.ports.json")
        self.spawn(name, [os.path.join(self.build, exe), "--config", config,
                          "--grpc_address", "127.0.0.1:0", "--metrics_address", "127.0.0.1:0",
                          "--ports_file", ports_file, "--log_level", "warn"], env)
        try:
            grpc_port, _ = wait_ports(ports_file, self.procs[-1],
                                      os.path.join(self.dir, f"{name}.log"))
        except RuntimeError as e:
            raise SystemExit(f"mesh_overhead: {name} did not start: {e}")
        address = f"127.0.0.1:{grpc_port}"
        health = subprocess.run([os.path.join(self.build, "tools/cli/tiermesh-cli"), "health",
                                 "--address", address, "--wait", "60s"],
                                capture_output=True, text=True)
        if health.returncode != 0:
            with open(os.path.join(self.dir, f"{name}.log")) as f:
                raise SystemExit(f"mesh_overhead: {name} not serving: {health.stdout}"
                                 f"{health.stderr}\n{f.read()[-2000:]}")
        return address

    def start(self):
        cloud_config = os.path.join(self.dir, "cloud.yaml")
        out = self.spawn("fake", [os.path.join(self.build,
                                               "tests/fakes/fake_provider/tiermesh-fake-provider"),
                                  "--tokens_per_second", "0", "--time_to_first_token", "0",
                                  "--cloud_proxy_config", cloud_config])
        try:
            first_line(out, self.procs[-1])  # its base URL: it is listening
        except RuntimeError as e:
            raise SystemExit(f"mesh_overhead: {e}")
        env = dict(os.environ, TIERMESH_FAKE_PROVIDER_KEY="fake-key")
        self.cloud = self.service("cloud-proxy", "services/cloud_proxy/tiermesh-cloud-proxy",
                                  cloud_config, env)
        self.classifier = self.service("classifier", "services/classifier/tiermesh-classifier",
                                       os.path.join(SOURCE, "deploy/config/classifier.yaml"), env)
        with open(os.path.join(SOURCE, "deploy/config/router.yaml")) as f:
            text = router_config(f.read())
        router_yaml = os.path.join(self.dir, "router.yaml")
        with open(router_yaml, "w") as f:
            f.write(text)
        env = dict(env, TIERMESH_CLOUD_PROXY_ADDR=self.cloud,
                   TIERMESH_CLASSIFIER_ADDR=self.classifier,
                   TIERMESH_WORKER_ADDR="127.0.0.1:1")  # no worker: never called
        self.router = self.service("router", "services/router/tiermesh-router", router_yaml, env)

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in self.files:
            f.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def children_cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def bench(services, args, *flags):
    argv = [os.path.join(services.build, "tools/bench/tiermesh-bench"), "--duration",
            args.duration, "--warmup", args.warmup, "--max_tokens", "4", "--mode", args.mode,
            *flags]
    before, bench_before = services.cpu_seconds(), children_cpu_seconds()
    out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    after, bench_after = services.cpu_seconds(), children_cpu_seconds()
    if out.returncode != 0:
        raise SystemExit(f"mesh_overhead: tiermesh-bench {' '.join(argv[1:])} exited with "
                         f"{out.returncode}: {out.stderr.strip()} {out.stdout.strip()}"[:4000])
    report = json.loads(out.stdout)
    # The whole run's CPU (warm-up included) per counted request: slightly high, by about the
    # warm-up's share of the run (1s in 11s by default).
    calls = max(1, report["requests"])
    cpu = {name: after[name] - before[name] for name in after}
    cpu["tiermesh-bench"] = bench_after - bench_before
    report["cpu_us_per_request"] = {name: round(seconds * 1e6 / calls, 1)
                                    for name, seconds in cpu.items()}
    return report


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build", required=True, help="build tree (e.g. build/release)")
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--warmup", default="1s")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--channels", type=int, default=2)
    parser.add_argument("--mode", default="unary", choices=("unary", "stream"))
    args = parser.parse_args()
    services = Services(args.build)
    try:
        services.start()
        direct = ("--target", "inference", "--model", "cloud-cheap", "--address", services.cloud)
        router = ("--target", "router", "--address", services.router)
        many = ("--concurrency", str(args.concurrency), "--channels", str(args.channels))
        report = {
            "direct_latency": bench(services, args, *direct, "--concurrency", "1"),
            "router_latency": bench(services, args, *router, "--concurrency", "1"),
            "direct_max": bench(services, args, *direct, *many),
            "router_max": bench(services, args, *router, *many),
        }
    finally:
        services.stop()
    report["added_p50_ms"] = round(report["router_latency"]["latency_ms"]["p50"]
                                   - report["direct_latency"]["latency_ms"]["p50"], 3)
    if args.mode == "stream":
        report["added_ttft_p50_ms"] = round(report["router_latency"]["ttft_ms"]["p50"]
                                            - report["direct_latency"]["ttft_ms"]["p50"], 3)
    report["router_max_rps"] = report["router_max"]["throughput_rps"]
    report["direct_max_rps"] = report["direct_max"]["throughput_rps"]
    report["cpus"] = os.cpu_count()
    report["build"] = os.path.basename(os.path.normpath(args.build))
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
