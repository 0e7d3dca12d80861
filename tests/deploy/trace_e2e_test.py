#!/usr/bin/env python3
"""One request through the mesh yields one trace, received by a test OTLP receiver.

Usage: trace_e2e_test.py --root REPO_ROOT --router BIN --classifier BIN --cloud-proxy BIN
                         --fake-provider BIN --cli BIN

Starts on loopback: an OTLP/HTTP receiver (this script; it keeps every span posted to
/v1/traces), the fake cloud provider, and the classifier, cloud-proxy and router with
OTEL_EXPORTER_OTLP_ENDPOINT pointing at the receiver. The router's worker address is a
closed port, so the local attempt fails and the request falls back to cloud_cheap (the
worker's own spans are covered once it runs in this mesh). Sends one Chat with
tiermesh-cli and checks the spans:
  - exactly one router SERVER span for RouterService/Chat, with no parent; its trace
    holds every span of the request, with exactly one root and no dangling parent;
  - the classifier's SERVER span and the cloud-proxy's SERVER span are in that trace,
    each the child of a router CLIENT span (the Classify call and the attempt), and the
    cloud-proxy's call to the provider is a CLIENT span under its SERVER span;
  - no Classify or inference span of the mesh lies in another trace.
Bounded: about 20 s; every process is stopped at the end.
"""
import argparse
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procs import Service  # noqa: E402

SERVER, CLIENT = 2, 3  # OTLP span kinds


class Receiver(http.server.BaseHTTPRequestHandler):
    spans = []  # (service, span dict)
    lock = threading.Lock()

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/v1/traces":
            self.send_error(404)
            return
        try:
            doc = json.loads(body)
        except ValueError:
            self.send_error(400)
            return
        with self.lock:
            for rs in doc.get("resourceSpans", []):
                attrs = {a["key"]: a["value"].get("stringValue")
                         for a in rs.get("resource", {}).get("attributes", [])}
                for ss in rs.get("scopeSpans", []):
                    for span in ss.get("spans", []):
                        self.spans.append((attrs.get("service.name"), span))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def check(spans):
    """Returns (problems, summary) for the collected (service, span) pairs."""
    problems = []
    chat = [(svc, s) for svc, s in spans if svc == "router" and s.get("kind") == SERVER
            and "RouterService/Chat" in s.get("name", "")]
    if len(chat) != 1:
        return [f"expected one router Chat server span, got {len(chat)}"], ""
    root = chat[0][1]
    trace = root["traceId"]
    if root.get("parentSpanId"):
        problems.append("the router's Chat span has a parent (no traceparent was sent)")
    mine = [(svc, s) for svc, s in spans if s["traceId"] == trace]
    by_id = {s["spanId"]: (svc, s) for svc, s in mine}
    roots = [s for _, s in mine if not s.get("parentSpanId")]
    if len(roots) != 1:
        problems.append(f"the trace has {len(roots)} roots")
    for svc, s in mine:
        parent = s.get("parentSpanId")
        if parent and parent not in by_id:
            problems.append(f"{svc} span {s['name']} has a parent outside the trace")

    def server_child_of_router(service):
        found = [s for svc, s in mine if svc == service and s.get("kind") == SERVER]
        if not found:
            problems.append(f"no {service} server span in the trace")
            return
        for s in found:
            psvc, parent = by_id.get(s.get("parentSpanId"), (None, {}))
            if psvc != "router" or parent.get("kind") != CLIENT:
                problems.append(f"{service} span {s['name']} is not the child of a router "
                                "client span")

    server_child_of_router("classifier")
    server_child_of_router("cloud-proxy")
    # The cloud-proxy's call to the provider: a client span under its server span.
    proxy_servers = {s["spanId"] for svc, s in mine
                     if svc == "cloud-proxy" and s.get("kind") == SERVER}
    if not any(svc == "cloud-proxy" and s.get("kind") == CLIENT
               and s.get("parentSpanId") in proxy_servers for svc, s in mine):
        problems.append("no cloud-proxy client span (the provider call) under its server span")
    for svc, s in spans:
        name = s.get("name", "")
        if s["traceId"] != trace and ("Classify" in name or "Generate" in name
                                      or "RouterService" in name):
            problems.append(f"{svc} span {name} is in another trace")
    attempts = [s for svc, s in mine if svc == "router" and s.get("kind") == CLIENT
                and "Generate" in s.get("name", "")]
    summary = (f"trace {trace}: {len(mine)} spans from "
               f"{sorted({svc for svc, _ in mine})}, {len(attempts)} router attempt spans\n"
               + "\n".join(f"  {svc}: {s.get('name')} kind={s.get('kind')} span={s['spanId']} "
                           f"parent={s.get('parentSpanId') or '-'}" for svc, s in mine))
    return problems, summary


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    for name in ("router", "classifier", "cloud-proxy", "fake-provider", "cli"):
        ap.add_argument(f"--{name}", required=True)
    ap.add_argument("--router-config", default="deploy/config/router.yaml")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}",
            "OTEL_TRACES_SAMPLER_ARG": "1.0", "OTEL_BSP_SCHEDULE_DELAY": "100"}
    common = ["--grpc_address", "127.0.0.1:0", "--metrics_address", "127.0.0.1:0",
              "--log_level", "info", "--drain_timeout", "1s"]
    services = []
    deadline = time.monotonic() + 30
    with tempfile.TemporaryDirectory() as tmp:
        try:
            config = os.path.join(tmp, "cloud-proxy.yaml")
            fake = Service("fake-provider", [args.fake_provider, "--cloud_proxy_config", config],
                           {}, root)
            services.append(fake)
            fake.first_line(deadline)  # the base URL: the config is written by then
            classifier = Service("classifier", [args.classifier, "--config",
                                                "deploy/config/classifier.yaml"] + common,
                                 {**otel, "OTEL_SERVICE_NAME": "classifier"}, root)
            cloud = Service("cloud-proxy", [args.cloud_proxy, "--config", config] + common,
                            {**otel, "OTEL_SERVICE_NAME": "cloud-proxy",
                             "TIERMESH_FAKE_PROVIDER_KEY": "fake-key"}, root)
            services += [classifier, cloud]
            router_env = {**otel, "OTEL_SERVICE_NAME": "router",
                          "TIERMESH_CLASSIFIER_ADDR": f"127.0.0.1:{classifier.port(deadline)}",
                          "TIERMESH_CLOUD_PROXY_ADDR": f"127.0.0.1:{cloud.port(deadline)}",
                          "TIERMESH_WORKER_ADDR": "127.0.0.1:1"}  # never called
            router = Service("router", [args.router, "--config", args.router_config]
                             + common, router_env, root)
            services.append(router)
            address = f"127.0.0.1:{router.port(deadline)}"
            for svc, port in (("classifier", classifier.port(deadline)),
                              ("cloud-proxy", cloud.port(deadline)), ("router", None)):
                addr = address if port is None else f"127.0.0.1:{port}"
                subprocess.run([args.cli, "health", "--address", addr, "--wait", "15s"],
                               check=True, capture_output=True, timeout=20)
            chat = subprocess.run([args.cli, "chat", "--address", address, "--text",
                                   "Say hello to the tracing test"],
                                  capture_output=True, text=True, timeout=30)
            if chat.returncode != 0:
                print(f"trace_e2e_test: error: chat failed: {chat.stdout}{chat.stderr}",
                      file=sys.stderr)
                return 1
            problems, summary = ["no spans received"], ""
            while time.monotonic() < deadline + 10:
                with Receiver.lock:
                    spans = list(Receiver.spans)
                problems, summary = check(spans)
                if not problems:
                    break
                time.sleep(0.3)
            for p in problems:
                print(f"trace_e2e_test: {p}", file=sys.stderr)
            if problems:
                for svc, s in spans:
                    print(f"  {svc}: {s.get('name')} kind={s.get('kind')} trace={s['traceId']} "
                          f"span={s['spanId']} parent={s.get('parentSpanId', '')}",
                          file=sys.stderr)
                return 1
            print(f"trace_e2e_test: one request, one trace: {summary}")
            return 0
        except (RuntimeError, subprocess.SubprocessError) as e:
            print(f"trace_e2e_test: error: {e}", file=sys.stderr)
            for s in services:
                print(f"--- {s.name}:\n" + "\n".join(s.lines[-8:]), file=sys.stderr)
            return 1
        finally:
            for s in reversed(services):
                s.stop()
            receiver.shutdown()


if __name__ == "__main__":
    sys.exit(main())
