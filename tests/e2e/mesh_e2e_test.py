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
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

SOURCE = os.environ.get("TIERMESH_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BINARY = os.environ["TIERMESH_BINARY_DIR"]
sys.path.insert(0, os.path.join(BINARY, "python"))

import grpc  # noqa: E402
from tiermesh.v1 import common_pb2, router_pb2, router_pb2_grpc  # noqa: E402


SERVING = 1


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def llama_server():
    out = subprocess.run([os.path.join(SOURCE, "scripts/provide-llama-server.sh"), "--no-build"],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        return r.read().decode()


def metric_sum(text, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        m = re.match(r"^(\w+)(\{(.*)\})? (\S+)", line)
        if not m or m.group(1) != name:
            continue
        have = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        if all(have.get(k) == v for k, v in labels.items()):
            total += float(m.group(4))
    return total


class Mesh:
    def __init__(self, binary):
        self.dir = tempfile.mkdtemp(prefix="tiermesh-e2e-")
        self.procs = {}
        self.ports = {n: (free_port(), free_port())
                      for n in ("classifier", "worker", "cloud", "router")}
        env = dict(os.environ)
        env["TIERMESH_LLAMA_SERVER"] = binary
        model = os.path.join(self.dir, "tiny.gguf")
        subprocess.run([os.path.join(BINARY, "tools/make_test_model/tiermesh-make-test-model"),
                        "--output", model, "--ctx", "8192"], check=True, capture_output=True)
        env["TIERMESH_MODEL_PATH"] = model
        fake_out = open(os.path.join(self.dir, "fake.out"), "w+")
        self.procs["fake"] = subprocess.Popen(
            [os.path.join(BINARY, "tests/fakes/fake_provider/tiermesh-fake-provider"),
             "--cut_models", "fake-premium", "--cut_after_tokens", "3",
             "--tokens_per_second", "0", "--time_to_first_token", "0"],
            stdout=fake_out, stderr=subprocess.DEVNULL)
        for _ in range(100):
            fake_out.seek(0)
            url = fake_out.readline().strip()
            if url:
                break
            time.sleep(0.05)
        cloud_config = os.path.join(self.dir, "cloud.yaml")
        with open(cloud_config, "w") as f:
            f.write(f"""providers:
  - name: fake
    type: openai_compatible
    base_url: {url}/v1
    api_key: ${{FAKE_KEY}}
    models:
      - {{name: cloud-cheap, upstream: fake-cheap, context_window: 128000,
         price: {{input_usd_per_mtok: "0.15", output_usd_per_mtok: "0.60"}}}}
      - {{name: cloud-premium, upstream: fake-premium, context_window: 200000,
         price: {{input_usd_per_mtok: "3", output_usd_per_mtok: "15"}}}}
""")
        env["FAKE_KEY"] = "fake-key"
        env["TIERMESH_CLASSIFIER_ADDR"] = f"127.0.0.1:{self.ports['classifier'][0]}"
        env["TIERMESH_WORKER_ADDR"] = f"127.0.0.1:{self.ports['worker'][0]}"
        env["TIERMESH_CLOUD_PROXY_ADDR"] = f"127.0.0.1:{self.ports['cloud'][0]}"
        worker_config = os.path.join(self.dir, "worker.yaml")
        with open(os.path.join(SOURCE, "deploy/config/worker.yaml")) as f:
            # Restart quickly, so that the recovery part of the test is short.
            text = f.read().replace("restart_backoff: {initial: 500ms, max: 30s}",
                                    "restart_backoff: {initial: 200ms, max: 2s}")
            text = text.replace("scrape_interval: 1s", "scrape_interval: 200ms")
        with open(worker_config, "w") as f:
            f.write(text)
        # In dependency order, each SERVING before the next starts.
        for name, exe, config in (
                ("classifier", "services/classifier/tiermesh-classifier",
                 os.path.join(SOURCE, "deploy/config/classifier.yaml")),
                ("worker", "services/worker/tiermesh-worker", worker_config),
                ("cloud", "services/cloud_proxy/tiermesh-cloud-proxy", cloud_config),
                ("router", "services/router/tiermesh-router",
                 os.path.join(SOURCE, "deploy/config/router.yaml"))):
            self.start(name, exe, config, env)
            self.wait_serving(name)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.ports['router'][0]}")
        self.router = router_pb2_grpc.RouterServiceStub(self.channel)

    def start(self, name, exe, config, env):
        grpc_port, metrics_port = self.ports[name]
        log = open(os.path.join(self.dir, f"{name}.log"), "w")
        self.procs[name] = subprocess.Popen(
            [os.path.join(BINARY, exe), "--config", config,
             "--grpc_address", f"127.0.0.1:{grpc_port}",
             "--metrics_address", f"127.0.0.1:{metrics_port}"],
            cwd=SOURCE, env=env, stdout=log, stderr=subprocess.STDOUT)

    def health(self, name):
        """grpc.health.v1.Health/Check of the whole server: 1 SERVING, 2 NOT_SERVING, None."""
        with grpc.insecure_channel(f"127.0.0.1:{self.ports[name][0]}") as ch:
            check = ch.unary_unary("/grpc.health.v1.Health/Check",
                                   request_serializer=lambda b: b,
                                   response_deserializer=lambda b: b)
            try:
                answer = check(b"", timeout=2)  # HealthCheckRequest{service: ""}
            except grpc.RpcError:
                return None
            return answer[1] if len(answer) == 2 and answer[0] == 0x08 else 0

    def wait_serving(self, name, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.health(name) == SERVING:
                return
            if self.procs[name].poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"{name} did not become SERVING:\n" + self.log(name)[-3000:])

    def log(self, name):
        with open(os.path.join(self.dir, f"{name}.log")) as f:
            return f.read()

    def metrics(self, name):
        return scrape(self.ports[name][1])

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def chat(router, text, priority=None, max_tokens=16, tools=False, timeout=60):
    request = router_pb2.ChatRequest(
        messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=text)],
        params=common_pb2.GenerationParams(max_tokens=max_tokens))
    if priority is not None:
        request.hints.priority = priority
    if tools:
        request.tools.add(name="get_weather", description="weather now",
                          parameters_json_schema='{"type":"object"}')
    return router.Chat(request, timeout=timeout)


class MeshTest(unittest.TestCase):
    mesh = None

    @classmethod
    def setUpClass(cls):
        binary = llama_server()
        if binary is None:
            raise unittest.SkipTest("no llama-server (scripts/provide-llama-server.sh builds one)")
        cls.mesh = Mesh(binary)

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
        time.sleep(0.3)  # the worker notices within its supervision interval
        fell_back = 0
        for i in range(5):
            r = chat(self.mesh.router, f"Hi again {i}")
            self.assertEqual(r.decision.attempts[-1].code, "OK")  # nothing lost
            if r.decision.attempts[-1].tier.startswith("cloud"):
                fell_back += 1
                self.assertEqual(r.decision.attempts[0].tier, "local_fast")
                self.assertNotEqual(r.decision.attempts[0].code, "OK")
        self.assertGreaterEqual(fell_back, 1)
        after = self.mesh.metrics("router")
        self.assertGreater(metric_sum(after, "tiermesh_router_fallbacks_total", from_tier="local_fast"),
                           metric_sum(before, "tiermesh_router_fallbacks_total", from_tier="local_fast"))
        # The worker restarts llama-server; local serves again (the breaker, if open, recovers).
        self.mesh.wait_serving("worker", timeout=60)
        deadline = time.time() + 60
        served_locally = False
        while time.time() < deadline and not served_locally:
            r = chat(self.mesh.router, "Back to local?")
            served_locally = r.decision.attempts[-1].tier == "local_fast"
            if not served_locally:
                time.sleep(1)
        self.assertTrue(served_locally, "local tier never served again")
        w = self.mesh.metrics("worker")
        self.assertEqual(metric_sum(w, "tiermesh_worker_llama_restarts_total", model="tiny"), 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
