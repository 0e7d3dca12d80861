#!/usr/bin/env python3
"""Proves tests/deploy/dashboard_check.py against a real Prometheus.

Usage: dashboard_check_test.py --root REPO_ROOT [--prometheus /usr/bin/prometheus]

Starts, on loopback and free ports: a tiny HTTP exporter serving a sample /metrics
per job (router, classifier, worker, cloud-proxy, llama-server) whose counters and
histograms grow on every scrape and which, like a machine without a GPU, has no
NVML metrics; and a real Prometheus scraping it every second with the project's
recording and alert rules. Then checks that:
  - every recording and alert rule evaluates without error on the scraped data;
  - dashboard_check.py passes on the real dashboards (every query parses, every
    panel has data except exactly the GPU-only ones);
  - it fails when the GPU-only panels are not allowed to be empty, when a query
    does not parse, and when a non-GPU panel is empty.
Bounded: about 15 s; everything is stopped at the end.
"""
import argparse
import http.server
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import dashboard_check  # noqa: E402

# (name, type, [(labels, per-scrape increment or gauge value)])
LATENCY = [("0.1", 1), ("1", 3), ("10", 4), ("+Inf", 4)]
SAMPLES = {
    "router": [
        ("tiermesh_router_requests_total", "counter", [
            ('tier="local_fast",backend="worker-tiny",user_tier="paid",outcome="ok"', 10),
            ('tier="cloud_cheap",backend="cloud-cheap",user_tier="free",outcome="ok"', 3),
            ('tier="none",backend="none",user_tier="paid",outcome="unavailable"', 1)]),
        ("tiermesh_router_fallbacks_total", "counter", [
            ('from_tier="local_fast",to_tier="cloud_cheap",reason="UNAVAILABLE"', 2)]),
        ("tiermesh_router_escalations_total", "counter", [
            ('from_tier="local_fast",to_tier="cloud_cheap"', 1)]),
        ("tiermesh_router_request_duration_seconds", "histogram", ['tier="local_fast"']),
        ("tiermesh_router_time_to_first_token_seconds", "histogram", ['tier="local_fast"']),
        ("tiermesh_router_cost_usd_total", "counter", [
            ('tier="cloud_cheap",backend="cloud-cheap"', 0.001)]),
        ("tiermesh_router_budget_remaining_usd", "gauge", [('scope="global"', 12.5)]),
        ("tiermesh_router_backend_circuit_open", "gauge", [
            ('backend="worker-tiny"', 0), ('backend="cloud-premium"', 1)]),
        ("tiermesh_router_degraded", "gauge", [('reason="offline"', 0)]),
    ],
    "classifier": [
        ("tiermesh_classifier_requests_total", "counter", [('task="chat"', 5), ('task="code"', 2)]),
        ("tiermesh_classifier_complexity", "histogram", [""]),
        ("tiermesh_classifier_duration_seconds", "histogram", [""]),
    ],
    "cloud-proxy": [
        ("tiermesh_cloud_requests_total", "counter", [
            ('provider="openrouter",model="cloud-cheap",code="OK"', 3)]),
        ("tiermesh_cloud_cost_usd_total", "counter", [
            ('provider="openrouter",model="cloud-cheap"', 0.001)]),
        ("tiermesh_cloud_rate_limited_total", "counter", [('provider="openrouter"', 0)]),
        ("tiermesh_cloud_upstream_duration_seconds", "histogram", ['provider="openrouter"']),
    ],
    "worker": [
        ("tiermesh_worker_ready", "gauge", [("", 1)]),
        ("tiermesh_worker_model_loaded", "gauge", [('model="tiny"', 1)]),
        ("tiermesh_worker_slots_busy", "gauge", [('model="tiny"', 1)]),
        ("tiermesh_worker_slots_total", "gauge", [('model="tiny"', 2)]),
        ("tiermesh_worker_deferred_requests", "gauge", [('model="tiny"', 0)]),
        ("tiermesh_worker_queue_depth", "gauge", [('model="tiny"', 1)]),
        ("tiermesh_worker_requests_total", "counter", [
            ('model="tiny",code="OK"', 5), ('model="tiny",code="RESOURCE_EXHAUSTED"', 1)]),
        ("tiermesh_worker_time_to_first_token_seconds", "histogram", ['model="tiny"']),
        ("tiermesh_worker_kv_cache_usage_ratio", "gauge", [('model="tiny"', 0.25)]),
        ("tiermesh_worker_admission_rejected_total", "counter", [('model="tiny"', 0)]),
        ("tiermesh_worker_tokens_total", "counter", [
            ('model="tiny",kind="prompt"', 40), ('model="tiny",kind="completion"', 80)]),
        ("tiermesh_worker_llama_restarts_total", "counter", [('model="tiny"', 0)]),
    ],
    "llama-server": [
        ("llamacpp:requests_processing", "gauge", [("", 1)]),
        ("llamacpp:requests_deferred", "gauge", [("", 0)]),
    ],
}
GRPC_SERVICE = {"router": "RouterService/Chat", "classifier": "ClassifierService/Classify",
                "worker": "InferenceService/Generate", "cloud-proxy": "InferenceService/Generate"}


def exposition(job, n):
    """The job's /metrics text at its n-th scrape (counters grow linearly with n)."""
    families = list(SAMPLES[job])
    if job in GRPC_SERVICE:
        method = f'method="/tiermesh.v1.{GRPC_SERVICE[job]}"'
        families += [
            ("tiermesh_grpc_server_requests_total", "counter",
             [(f'{method},code="OK"', 10), (f'{method},code="INTERNAL"', 1)]),
            ("tiermesh_grpc_server_request_duration_seconds", "histogram", [method]),
            ("tiermesh_grpc_server_in_flight", "gauge", [(method, 2)]),
        ]
    out = []
    for name, kind, series in families:
        out.append(f"# TYPE {name} {kind}")
        for s in series:
            if kind == "histogram":
                sep = "," if s else ""
                for le, per in LATENCY:
                    out.append(f'{name}_bucket{{{s}{sep}le="{le}"}} {per * n}')
                out.append(f"{name}_sum{{{s}}} {2.5 * n}")
                out.append(f"{name}_count{{{s}}} {LATENCY[-1][1] * n}")
            else:
                labels, value = s
                out.append(f"{name}{{{labels}}} {value * n if kind == 'counter' else value}")
    return "\n".join(out) + "\n"


class Exporter(http.server.BaseHTTPRequestHandler):
    scrapes = {}
    lock = threading.Lock()

    def do_GET(self):  # noqa: N802 (http.server's name)
        job = self.path.rsplit("/", 1)[-1]
        if not self.path.startswith("/metrics/") or job not in SAMPLES:
            self.send_error(404)
            return
        with self.lock:
            n = self.scrapes[job] = self.scrapes.get(job, 0) + 1
        body = exposition(job, n).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_prometheus(prometheus, config, data, log_path, timeout=40):
    """Starts Prometheus on a free loopback port and waits until it is ready: (process, base
    URL). Prometheus cannot listen on port 0 and report it, so a port taken between the choice
    and the bind (another test) means another try on another port."""
    deadline = time.monotonic() + timeout
    for _ in range(5):
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        with open(log_path, "a", encoding="utf-8") as log:
            prom = subprocess.Popen(
                [prometheus, f"--config.file={config}", f"--storage.tsdb.path={data}",
                 f"--web.listen-address=127.0.0.1:{port}"],
                stdout=log, stderr=subprocess.STDOUT)
        while time.monotonic() < deadline and prom.poll() is None:
            try:
                with urllib.request.urlopen(base + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return prom, base
            except OSError:
                pass
            time.sleep(0.3)
        if prom.poll() is None:
            prom.kill()
            prom.wait()
            break
        with open(log_path, encoding="utf-8", errors="replace") as f:
            if "address already in use" not in f.read():
                break
    with open(log_path, encoding="utf-8", errors="replace") as f:
        raise TimeoutError(f"Prometheus did not become ready:\n{f.read()[-3000:]}")


def get_json(url):
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.load(r)


def wait_for(what, predicate, deadline):
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--prometheus", default=shutil.which("prometheus") or "/usr/bin/prometheus")
    args = ap.parse_args()
    if not os.access(args.prometheus, os.X_OK):
        print(f"dashboard_check_test: error: no prometheus binary at {args.prometheus} "
              "(Debian package `prometheus`, scripts/bootstrap.sh)", file=sys.stderr)
        return 1
    root = os.path.abspath(args.root)
    dashboards = os.path.join(root, "deploy/grafana/dashboards")
    rules = os.path.join(root, "deploy/prometheus/rules")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Exporter)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    exporter = f"127.0.0.1:{server.server_address[1]}"
    tmp = tempfile.mkdtemp(prefix="tiermesh-dashcheck.")
    prom = None
    try:
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [os.path.join(rules, "*.yml")],
            "scrape_configs": [{"job_name": job, "metrics_path": f"/metrics/{job}",
                                "static_configs": [{"targets": [exporter]}]}
                               for job in SAMPLES],
        }
        with open(os.path.join(tmp, "prometheus.yml"), "w", encoding="utf-8") as f:
            json.dump(config, f)  # JSON is YAML
        log_path = os.path.join(tmp, "prometheus.log")
        prom, base = start_prometheus(args.prometheus, f"{tmp}/prometheus.yml", f"{tmp}/data",
                                      log_path)
        deadline = time.monotonic() + 40
        # Enough scrapes for rate() and enough evaluations for the recording rules.
        wait_for("recording rules with data", lambda: get_json(
            base + "/api/v1/query?query=tiermesh%3Arouter_fallback%3Aratio_rate5m"
        )["data"]["result"] and get_json(
            base + "/api/v1/query?query=tiermesh%3Aworker_completion_tokens%3Arate5m"
        )["data"]["result"], deadline)
        time.sleep(2)

        failures = []
        groups = get_json(base + "/api/v1/rules")["data"]["groups"]
        count = 0
        for g in groups:
            for r in g["rules"]:
                count += 1
                if r.get("health") != "ok":
                    failures.append(f"rule {r['name']} evaluates with an error: "
                                    f"{r.get('lastError')}")
        if count < 20:
            failures.append(f"only {count} rules loaded from {rules}")

        def run(what, expect, argv):
            print(f"--- dashboard_check {what} (expect exit {expect})", flush=True)
            rc = dashboard_check.main(["--prometheus", base] + argv)
            if rc != expect:
                failures.append(f"dashboard_check {what}: exit {rc}, expected {expect}")

        run("on the real dashboards", 0, ["--dashboards", dashboards])
        run("with no empty panel allowed", 1, ["--dashboards", dashboards, "--allow-empty"])
        run("as if a GPU were present", 1, ["--dashboards", dashboards, "--gpu"])
        with open(os.path.join(dashboards, "overview.json"), encoding="utf-8") as f:
            overview = json.load(f)
        for what, index, expr in [
                ("with a query that does not parse", 0,
                 "sum by (tier (rate(tiermesh_router_requests_total[1m]))"),
                ("with an empty non-GPU panel", 1,
                 'tiermesh_router_requests_total{tier="no-such-tier"}')]:
            broken = tempfile.mkdtemp(dir=tmp)
            dash = json.loads(json.dumps(overview))
            [p for p in dash["panels"] if p["type"] != "row"][index]["targets"][0]["expr"] = expr
            with open(os.path.join(broken, "overview.json"), "w", encoding="utf-8") as f:
                json.dump(dash, f)
            run(what, 1, ["--dashboards", broken, "--allow-empty"])
        rc = dashboard_check.main(["--prometheus", f"http://127.0.0.1:{free_port()}",
                                   "--dashboards", dashboards])
        if rc != 2:
            failures.append(f"dashboard_check against nothing: exit {rc}, expected 2")
        for f in failures:
            print(f"dashboard_check_test: {f}", file=sys.stderr)
        if failures:
            print(open(log_path, encoding="utf-8").read()[-3000:],
                  file=sys.stderr)
            return 1
        print(f"dashboard_check_test: {count} rules healthy; dashboard_check passes on the "
              "dashboards and fails on every broken variant")
        return 0
    finally:
        if prom is not None:
            prom.terminate()
            try:
                prom.wait(timeout=10)
            except subprocess.TimeoutExpired:
                prom.kill()
        server.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
