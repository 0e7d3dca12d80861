#!/usr/bin/python3
"""The whole mesh, black box, from a second language (Python gRPC stubs generated from proto/).

Starts the real binaries on free loopback ports: classifier, worker (real llama-server with the
generated test model), cloud-proxy (in front of tiermesh-fake-provider, whose premium model cuts
its streams), router (deploy/config/router.yaml). Then checks routing per rule, the tier split
and fallback counters scraped from /metrics, killing llama-server mid-run (requests fall back to
the cloud, then local serves again after the worker restarts it), and a cloud stream cut after
tokens ending non-OK.

Run by ctest (label e2e) with TIERMESH_BINARY_DIR and TIERMESH_SOURCE_DIR set; skips (exit 0
with a message) only when no llama-server binary can be found.
"""
import os
import signal
import subprocess
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mesh import (SERVING, Mesh, chat, llama_server_or_skip, metric_sum,  # noqa: E402
                  replace_once)

import grpc  # noqa: E402  (mesh put the stubs on sys.path)
from tiermesh.v1 import common_pb2, router_pb2  # noqa: E402


def edit_worker(text):
    # A restart gap long enough for a burst of requests to open the local backend's breaker.
    return replace_once(text, "restart_backoff: {initial: 200ms, max: 2s}",
                        "restart_backoff: {initial: 3s, max: 5s}")


def edit_router(text):
    # Fallbacks for the whole burst (the shipped budget allows 5/s beyond 20% of requests).
    text = replace_once(text, "retry_budget: {ratio: 0.2, min_per_second: 5, window: 10s}",
                        "retry_budget: {ratio: 0.2, min_per_second: 100, window: 10s}")
    # The breaker is what test_3 checks. Polling GetLoad every second, the router may learn that
    # the worker is down before five calls failed and skip it without calling (nothing is lost
    # either way, but the breaker then stays closed): keep the start-up report, taken while the
    # worker was serving, for the whole test.
    return replace_once(text, "load_polling: {interval: 1s, timeout: 500ms, max_age: 5s}",
                        "load_polling: {interval: 10m, timeout: 500ms, max_age: 11m}")


class MeshTest(unittest.TestCase):
    mesh = None

    @classmethod
    def setUpClass(cls):
        binary = llama_server_or_skip()
        cls.mesh = Mesh(binary, edit_worker=edit_worker, edit_router=edit_router)

    @classmethod
    def tearDownClass(cls):
        if cls.mesh is not None:
            cls.mesh.stop()

    def test_1_routing_per_rule(self):
        r = chat(self.mesh.router, "Hi! How are you today?")
        self.assertEqual(r.decision.rule, "default")
        self.assertEqual(r.decision.tier, "local_fast")
        self.assertEqual(r.decision.attempts[-1].code, "OK")
        self.assertEqual(r.cost.nano_usd, 0)
        self.assertTrue(r.decision.policy_version)
        self.assertGreater(r.usage.completion_tokens, 0)

        r = chat(self.mesh.router, "What's the weather like?", tools=True)
        self.assertEqual(r.decision.tier, "local_tool")
        self.assertIn(r.decision.rule, ("tool-task", "tools-offered"))

        r = chat(self.mesh.router, "Hi! How are you today?", priority=router_pb2.PRIORITY_QUALITY)
        self.assertEqual(r.decision.rule, "quality-first")
        self.assertEqual(r.decision.tier, "cloud_premium")
        self.assertEqual(r.decision.attempts[-1].backend, "cloud-premium")
        self.assertGreater(r.cost.nano_usd, 0)  # priced by the cloud-proxy

        m = self.mesh.metrics("router")
        self.assertGreaterEqual(metric_sum(m, "tiermesh_router_requests_total", tier="local_fast"), 1)
        self.assertGreaterEqual(
            metric_sum(m, "tiermesh_router_requests_total", tier="cloud_premium"), 1)
        self.assertGreater(metric_sum(m, "tiermesh_router_cost_usd_total", tier="cloud_premium"), 0)
        w = self.mesh.metrics("worker")
        self.assertEqual(metric_sum(w, "tiermesh_worker_model_loaded", model="tiny"), 1)
        self.assertGreater(metric_sum(w, "tiermesh_worker_tokens_total", model="tiny"), 0)

    def test_2_cloud_stream_cut_after_tokens_ends_non_ok(self):
        request = router_pb2.ChatStreamRequest(request=router_pb2.ChatRequest(
            messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER,
                                              content="Hi! How are you today?")],
            params=common_pb2.GenerationParams(max_tokens=64),
            hints=router_pb2.RoutingHints(priority=router_pb2.PRIORITY_QUALITY)))
        deltas = 0
        summary = None
        with self.assertRaises(grpc.RpcError) as raised:
            for message in self.mesh.router.ChatStream(request, timeout=60):
                if message.HasField("delta"):
                    deltas += 1
                if message.HasField("summary"):
                    summary = message.summary
        self.assertNotEqual(raised.exception.code(), grpc.StatusCode.OK)
        self.assertGreaterEqual(deltas, 1)
        if summary is not None:
            self.assertFalse(summary.complete)

    def test_3_llama_server_killed_falls_back_then_recovers(self):
        worker_pid = self.mesh.procs["worker"].pid
        children = subprocess.run(["pgrep", "-P", str(worker_pid)], capture_output=True,
                                  text=True).stdout.split()
        self.assertEqual(len(children), 1, "the worker runs one llama-server")
        before = self.mesh.metrics("router")
        os.kill(int(children[0]), signal.SIGKILL)
        # The worker notices within its supervision interval (NOT_SERVING); the requests below
        # then fall into the restart gap (backoff + load: a few hundred ms in this mesh).
        deadline = time.time() + 5
        while self.mesh.health("worker") == SERVING and time.time() < deadline:
            time.sleep(0.01)
        fell_back = 0
        breaker_open = False
        for i in range(20):  # until the breaker opens (5 consecutive failures), bounded
            r = chat(self.mesh.router, "Hi! How are you today?")  # local_fast: worker-tiny
            self.assertEqual(r.decision.attempts[-1].code, "OK")  # nothing lost
            if len(r.decision.attempts) > 1:
                fell_back += 1
                self.assertEqual(r.decision.attempts[0].backend, "worker-tiny")
                self.assertEqual(r.decision.attempts[0].code, "UNAVAILABLE")
                self.assertTrue(r.decision.attempts[-1].tier.startswith("cloud"))
            breaker_open = metric_sum(self.mesh.metrics("router"),
                                      "tiermesh_router_backend_circuit_open",
                                      backend="worker-tiny") == 1
            if breaker_open:
                break
        # Five consecutive failures open worker-tiny's breaker: later requests skip it.
        self.assertTrue(breaker_open, f"the breaker did not open ({fell_back} fallbacks)")
        r = chat(self.mesh.router, "Hi! How are you today?")
        self.assertEqual([a.backend for a in r.decision.attempts], ["cloud-cheap"])
        self.assertGreaterEqual(fell_back, 1)
        after = self.mesh.metrics("router")
        self.assertGreater(metric_sum(after, "tiermesh_router_fallbacks_total"),
                           metric_sum(before, "tiermesh_router_fallbacks_total"))
        # The worker restarts llama-server; after the breaker's open period a half-open probe
        # succeeds, the breaker closes and local serves again.
        self.mesh.wait_serving("worker", timeout=60)
        deadline = time.time() + 60
        served_locally = False
        while time.time() < deadline and not served_locally:
            r = chat(self.mesh.router, "Hi! How are you today?")
            served_locally = r.decision.attempts[-1].backend == "worker-tiny"
            if not served_locally:
                time.sleep(1)
        self.assertTrue(served_locally, "local tier never served again")
        self.assertEqual(metric_sum(self.mesh.metrics("router"),
                                    "tiermesh_router_backend_circuit_open",
                                    backend="worker-tiny"), 0)
        w = self.mesh.metrics("worker")
        self.assertEqual(metric_sum(w, "tiermesh_worker_llama_restarts_total", model="tiny"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
