"""The whole tiermesh mesh on free loopback ports, for black-box tests (Python gRPC stubs).

    mesh = Mesh(llama_server(), edit_router=lambda text: replace_once(text, "a", "b"))
    try:
        answer = chat(mesh.router, "Hi! How are you today?")
        text = mesh.metrics("router")            # Prometheus text of the router's /metrics
        print(metric_sum(text, "tiermesh_router_requests_total", tier="local_fast"))
    finally:
        mesh.stop()

Starts the real binaries in dependency order, each SERVING before the next starts: classifier
(deploy/config/classifier.yaml), worker (deploy/config/worker.yaml: real llama-server with a
generated test model), cloud-proxy (in front of tiermesh-fake-provider: "cloud-cheap" is
upstream "fake-cheap", "cloud-premium" is "fake-premium"), router (deploy/config/router.yaml).
Tests change a config by editing a copy of its text (edit_router / edit_worker / cloud_prices);
replace_once fails loudly when the text to change is no longer in the file, so a test never
silently measures the shipped config instead of its own.

Needs TIERMESH_BINARY_DIR (a build tree: binaries and build/<preset>/python stubs);
TIERMESH_SOURCE_DIR defaults to this file's checkout.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

SOURCE = os.environ.get("TIERMESH_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BINARY = os.environ["TIERMESH_BINARY_DIR"]
sys.path.insert(0, os.path.join(BINARY, "python"))

sys.path.insert(0, os.path.join(SOURCE, "tools/bench"))

import grpc  # noqa: E402
from service_ports import first_line, wait_ports  # noqa: E402
from tiermesh.v1 import common_pb2, router_pb2, router_pb2_grpc  # noqa: E402

SERVING = 1

# The fake provider's default pace in these tests: instant answers.
INSTANT = ("--tokens_per_second", "0", "--time_to_first_token", "0")


def llama_server():
    """Path of the cached llama-server binary, or None (never builds one)."""
    out = subprocess.run([os.path.join(SOURCE, "scripts/provide-llama-server.sh"), "--no-build"],
                         capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def llama_server_or_skip():
    """llama_server(), or unittest.SkipTest when there is none (the e2e tests' precondition)."""
    import unittest
    binary = llama_server()
    if binary is None:
        raise unittest.SkipTest("no llama-server (scripts/provide-llama-server.sh builds one)")
    return binary


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


def replace_once(text, old, new):
    """`text` with its one occurrence of `old` replaced; AssertionError when not exactly once."""
    count = text.count(old)
    if count != 1:
        raise AssertionError(f"config text to replace found {count} times (expected 1): {old!r}")
    return text.replace(old, new)


class Mesh:
    def __init__(self, binary, fake_args=("--cut_models", "fake-premium", "--cut_after_tokens", "3"),
                 edit_router=None, edit_worker=None, edit_cloud=None, ledger=False,
                 cloud_prices=(("0.15", "0.60"), ("3", "15"))):
        """binary: llama-server. fake_args: extra tiermesh-fake-provider flags (its pace is
        INSTANT). edit_router/edit_worker/edit_cloud: text -> text of the YAML configs. ledger: the fake
        writes its ledger to self.ledger_path. cloud_prices: (input, output) USD per 1M tokens
        of cloud-cheap and cloud-premium as the cloud-proxy charges them."""
        self.dir = tempfile.mkdtemp(prefix="tiermesh-e2e-")
        self.procs = {}
        self.files = []  # logs, closed by stop()
        self.ports = {}  # name: (gRPC port, /metrics port), as each service reports them
        self.cloud_prices = {"fake-cheap": tuple(float(p) for p in cloud_prices[0]),
                             "fake-premium": tuple(float(p) for p in cloud_prices[1])}
        self.ledger_path = os.path.join(self.dir, "ledger.jsonl") if ledger else None
        try:
            self._start(binary, list(fake_args), edit_router, edit_worker, edit_cloud,
                        cloud_prices)
        except BaseException:
            self.stop()
            raise
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.ports['router'][0]}")
        self.router = router_pb2_grpc.RouterServiceStub(self.channel)

    def _start(self, binary, fake_args, edit_router, edit_worker, edit_cloud, cloud_prices):
        env = dict(os.environ)
        env["TIERMESH_LLAMA_SERVER"] = binary
        model = os.path.join(self.dir, "tiny.gguf")
        subprocess.run([os.path.join(BINARY, "tools/make_test_model/tiermesh-make-test-model"),
                        "--output", model, "--ctx", "8192"], check=True, capture_output=True)
        env["TIERMESH_MODEL_PATH"] = model
        fake_out = open(os.path.join(self.dir, "fake.out"), "w+")
        self.files.append(fake_out)
        if self.ledger_path:
            fake_args += ["--ledger_file", self.ledger_path]
        cloud_config = os.path.join(self.dir, "cloud.yaml")
        fake_args += ["--cloud_proxy_config", cloud_config,
                      "--prices", ",".join(p for pair in cloud_prices for p in pair)]
        self.procs["fake"] = subprocess.Popen(
            [os.path.join(BINARY, "tests/fakes/fake_provider/tiermesh-fake-provider"),
             *INSTANT, *fake_args],
            stdout=fake_out, stderr=subprocess.DEVNULL)
        try:
            first_line(fake_out, self.procs["fake"])  # its base URL: it is listening
        except RuntimeError as e:
            raise AssertionError(str(e)) from None
        if edit_cloud:
            with open(cloud_config) as f:
                self.write("cloud.yaml", edit_cloud(f.read()))
        env["TIERMESH_FAKE_PROVIDER_KEY"] = "fake-key"
        with open(os.path.join(SOURCE, "deploy/config/worker.yaml")) as f:
            text = f.read()
        # Restart quickly, so that recovery tests are short.
        text = replace_once(text, "restart_backoff: {initial: 500ms, max: 30s}",
                            "restart_backoff: {initial: 200ms, max: 2s}")
        text = replace_once(text, "scrape_interval: 1s", "scrape_interval: 200ms")
        if edit_worker:
            text = edit_worker(text)
        worker_config = self.write("worker.yaml", text)
        router_config = os.path.join(SOURCE, "deploy/config/router.yaml")
        if edit_router:
            with open(router_config) as f:
                router_config = self.write("router.yaml", edit_router(f.read()))
        for name, exe, config in (
                ("classifier", "services/classifier/tiermesh-classifier",
                 os.path.join(SOURCE, "deploy/config/classifier.yaml")),
                ("worker", "services/worker/tiermesh-worker", worker_config),
                ("cloud", "services/cloud_proxy/tiermesh-cloud-proxy", cloud_config),
                ("router", "services/router/tiermesh-router", router_config)):
            if name == "router":
                env["TIERMESH_CLASSIFIER_ADDR"] = f"127.0.0.1:{self.ports['classifier'][0]}"
                env["TIERMESH_WORKER_ADDR"] = f"127.0.0.1:{self.ports['worker'][0]}"
                env["TIERMESH_CLOUD_PROXY_ADDR"] = f"127.0.0.1:{self.ports['cloud'][0]}"
            self.start(name, exe, config, env)
            self.wait_serving(name)

    def write(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self, name, exe, config, env):
        """Starts a service on port 0 (gRPC and /metrics) and learns its ports from the ports
        file; a restart (same name) gets new ports, and later calls reach it there."""
        log_path = os.path.join(self.dir, f"{name}.log")
        log = open(log_path, "w")
        self.files.append(log)
        ports_file = os.path.join(self.dir, f"{name}.ports.json")
        if os.path.exists(ports_file):
            os.remove(ports_file)
        self.procs[name] = subprocess.Popen(
            [os.path.join(BINARY, exe), "--config", config,
             "--grpc_address", "127.0.0.1:0", "--metrics_address", "127.0.0.1:0",
             "--ports_file", ports_file],
            cwd=SOURCE, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            self.ports[name] = wait_ports(ports_file, self.procs[name], log_path)
        except RuntimeError as e:
            raise AssertionError(f"{name} did not start: {e}") from None

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

    def ledger(self):
        """The fake provider's ledger so far: one dict per attempt (see its --ledger_file)."""
        import json
        with open(self.ledger_path) as f:
            return [json.loads(line) for line in f if line.endswith("\n")]

    def ledger_usd(self, entries):
        """What the fake charged for `entries`, at the cloud-proxy's prices."""
        total = 0.0
        for e in entries:
            price_in, price_out = self.cloud_prices[e["model"]]
            total += (e["prompt_tokens"] * price_in + e["completion_tokens"] * price_out) / 1e6
        return total

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
        for f in self.files:
            f.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def chat_request(text, priority=None, max_tokens=16, tools=False):
    request = router_pb2.ChatRequest(
        messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content=text)],
        params=common_pb2.GenerationParams(max_tokens=max_tokens))
    if priority is not None:
        request.hints.priority = priority
    if tools:
        request.tools.add(name="get_weather", description="weather now",
                          parameters_json_schema='{"type":"object"}')
    return request


def chat(router, text, priority=None, max_tokens=16, tools=False, timeout=60):
    return router.Chat(chat_request(text, priority, max_tokens, tools), timeout=timeout)
