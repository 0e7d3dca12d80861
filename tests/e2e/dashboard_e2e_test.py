#!/usr/bin/python3
"""The dashboards against the live mesh: every panel query of deploy/grafana/dashboards,
evaluated by a real Prometheus (Debian's) that scrapes the running mesh, parses and returns data.

The mesh (tests/e2e/mesh.py) is set up so that mixed traffic exercises every panel: the worker
has one slot and no queue (admission rejections spill over to the cloud) and fails 20% of its
requests (fault injection: fallbacks); the fake provider's models are rate-limited by the
cloud-proxy (requests/min); the traffic mixes unary and streamed chats (time to first token),
tool requests, quality-first requests (premium spend), an escalation and invalid requests
(non-OK codes). Prometheus loads deploy/prometheus/rules (the recording rules the dashboards use).

Panels allowed to be empty, and asserted to be exactly the empty ones:
- the GPU panels (this machine has no NVIDIA GPU; dashboard_check.GPU_ONLY_PANELS);
- the two panels that read llama-server's own /metrics (llamacpp:*): the worker's managed
  llama-servers listen on loopback behind a per-process API key, so Prometheus cannot scrape
  them here (in docker-compose/k8s the llama-server sidecar is scraped); the worker re-exports
  the same figures (tiermesh_worker_slots_busy, tiermesh_worker_deferred_requests).
"""
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mesh as m  # noqa: E402

sys.path.insert(0, os.path.join(m.SOURCE, "tests/deploy"))
import dashboard_check  # noqa: E402
from dashboard_check_test import get_json, start_prometheus, wait_for  # noqa: E402

import grpc  # noqa: E402
from tiermesh.v1 import common_pb2, router_pb2  # noqa: E402

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
LLAMACPP_PANELS = (
    "tiermesh-local-inference/Deferred requests",
    "tiermesh-local-inference/llama-server requests processing",
)


def edit_worker(text):
    text = m.replace_once(text, "parallel: 2              # slots", "parallel: 1")
    text = m.replace_once(text, "max_queue: 8", "max_queue: 0")
    return m.replace_once(text, "fault_injection: {unavailable_ratio: 0}",
                          "fault_injection: {unavailable_ratio: 0.2}")


def edit_router(text):
    # Saturation and injected faults would open the local breakers and send everything to the
    # cloud for a while, leaving the local panels without new data: breakers off for this test.
    text = m.replace_once(text, "consecutive_failures: 5", "consecutive_failures: 1000")
    return m.replace_once(text, "min_requests: 20", "min_requests: 100000")


def edit_cloud(text):
    return m.replace_once(text, "    api_key: ${TIERMESH_FAKE_PROVIDER_KEY}\n",
                          "    api_key: ${TIERMESH_FAKE_PROVIDER_KEY}\n"
                          "    limits: {requests_per_minute: 50}\n")


class DashboardE2eTest(unittest.TestCase):
    def setUp(self):
        binary = m.llama_server_or_skip()
        if not os.access(PROMETHEUS, os.X_OK):
            self.fail(f"no prometheus at {PROMETHEUS} (Debian package `prometheus`)")
        self.mesh = m.Mesh(binary, fake_args=(), edit_worker=edit_worker, edit_router=edit_router,
                           edit_cloud=edit_cloud)
        self.addCleanup(self.mesh.stop)
        self.tmp = tempfile.mkdtemp(prefix="tiermesh-dash-e2e.")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        jobs = {"router": "router", "classifier": "classifier", "worker": "worker",
                "cloud": "cloud-proxy"}
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [os.path.join(m.SOURCE, "deploy/prometheus/rules/*.yml")],
            "scrape_configs": [
                {"job_name": job,
                 "static_configs": [{"targets": [f"127.0.0.1:{self.mesh.ports[name][1]}"]}]}
                for name, job in jobs.items()],
        }
        with open(os.path.join(self.tmp, "prometheus.yml"), "w") as f:
            json.dump(config, f)  # JSON is YAML
        self.prom, self.base = start_prometheus(PROMETHEUS, f"{self.tmp}/prometheus.yml",
                                                f"{self.tmp}/data",
                                                os.path.join(self.tmp, "prometheus.log"))
        self.addCleanup(self.stop_prometheus)

    def stop_prometheus(self):
        self.prom.terminate()
        try:
            self.prom.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.prom.kill()

    def traffic(self):
        router = self.mesh.router
        outcomes = {}

        def count(code):
            outcomes[code] = outcomes.get(code, 0) + 1

        def one(i):
            kind = i % 6
            try:
                if kind == 0:
                    r = m.chat(router, f"Hi! How are you today? ({i})", max_tokens=8)
                elif kind == 1:
                    r = m.chat(router, f"What's the weather like? ({i})", tools=True, max_tokens=8)
                elif kind == 2:
                    r = m.chat(router, f"Hi! How are you today? ({i})",
                               priority=router_pb2.PRIORITY_QUALITY, max_tokens=8)
                else:
                    request = router_pb2.ChatStreamRequest(request=m.chat_request(
                        f"Hi! How are you today? (stream {i})", max_tokens=8,
                        priority=router_pb2.PRIORITY_QUALITY if kind == 5 else None))
                    for _ in router.ChatStream(request, timeout=60):
                        pass
                    return "OK", None
                return "OK", r
            except grpc.RpcError as e:
                return e.code().name, None

        # Concurrent rounds: a burst beyond the worker's single slot, and beyond the cloud's
        # requests/min, so that admission rejections and rate limits happen.
        last = None
        with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
            for round_start in range(0, 90, 18):
                for code, r in pool.map(one, range(round_start, round_start + 18)):
                    count(code)
                    if r is not None and r.decision.tier.startswith("local"):
                        last = r
                time.sleep(1)
        # Streams one at a time (no admission rejection), spread over a few scrapes, so that the
        # worker's time-to-first-token histogram grows within the panels' rate() window.
        for i in range(6):
            count(one(3 + 6 * (100 + i))[0])
            time.sleep(0.5)
        # An escalation ("get a better answer") of an earlier local answer.
        self.assertIsNotNone(last, "no request was answered locally")
        # (Retried: the worker's injected faults and the spent retry budget may refuse one.)
        escalated = None
        for _ in range(10):
            try:
                escalated = router.Chat(router_pb2.ChatRequest(
                    messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER,
                                                     content="Hi again")],
                    escalate_from=last.decision.request_id), timeout=60)
                break
            except grpc.RpcError as e:
                if e.code() not in (grpc.StatusCode.UNAVAILABLE,
                                    grpc.StatusCode.RESOURCE_EXHAUSTED):
                    raise
                time.sleep(0.5)
        self.assertIsNotNone(escalated, "every escalation attempt was refused")
        self.assertTrue(escalated.decision.escalation)
        # Invalid requests: a clear non-OK code.
        for _ in range(3):
            with self.assertRaises(grpc.RpcError) as raised:
                router.Chat(router_pb2.ChatRequest(), timeout=10)
            self.assertEqual(raised.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        return outcomes

    def test_every_panel_parses_and_returns_data(self):
        outcomes = self.traffic()
        print("traffic outcomes:", outcomes)
        self.assertGreater(outcomes.get("OK", 0), 30)
        cloud = self.mesh.metrics("cloud")
        self.assertGreater(m.metric_sum(cloud, "tiermesh_cloud_rate_limited_total"), 0,
                           "the traffic did not hit the cloud rate limit")
        worker = self.mesh.metrics("worker")
        self.assertGreater(m.metric_sum(worker, "tiermesh_worker_admission_rejected_total"), 0,
                           "the traffic did not saturate the worker")
        router = self.mesh.metrics("router")
        self.assertGreater(m.metric_sum(router, "tiermesh_router_fallbacks_total"), 0)
        # Enough scrapes and rule evaluations for rate() windows and the recording rules.
        query = self.base + "/api/v1/query?" + urllib.parse.urlencode(
            {"query": "tiermesh:router_fallback:ratio_rate5m"})
        wait_for("recording rules with data", lambda: get_json(query)["data"]["result"],
                 time.monotonic() + 60)
        time.sleep(3)
        allowed = list(dashboard_check.GPU_ONLY_PANELS) + list(LLAMACPP_PANELS)
        rc = dashboard_check.main(["--prometheus", self.base,
                                   "--dashboards", os.path.join(m.SOURCE,
                                                                "deploy/grafana/dashboards"),
                                   "--allow-empty", *allowed])
        self.assertEqual(rc, 0, "dashboard_check failed (see its output above)")


if __name__ == "__main__":
    unittest.main(verbosity=2)
