#!/usr/bin/python3
"""One request answered by the local tier yields one trace: router -> classifier, and
router -> worker -> llama-server, received by a test OTLP receiver (the one of
tests/deploy/trace_e2e_test.py, which checks the cloud path the same way).

The whole mesh (tests/e2e/mesh.py) runs with OTEL_EXPORTER_OTLP_ENDPOINT pointing at the
receiver; each service names itself (service.name = router, classifier, worker, cloud-proxy).
"""
import http.server
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mesh as m  # noqa: E402

sys.path.insert(0, os.path.join(m.SOURCE, "tests/deploy"))
from trace_e2e_test import CLIENT, SERVER, Receiver  # noqa: E402


def local_trace_problems(spans):
    """Problems of the local path's trace among the collected (service, span) pairs."""
    chats = [s for svc, s in spans if svc == "router" and s.get("kind") == SERVER
             and "RouterService/Chat" in s.get("name", "")]
    if len(chats) != 1:
        return [f"expected one router Chat server span, got {len(chats)}"]
    root = chats[0]
    problems = []
    if root.get("parentSpanId"):
        problems.append("the router's Chat span has a parent")
    mine = [(svc, s) for svc, s in spans if s["traceId"] == root["traceId"]]
    by_id = {s["spanId"]: (svc, s) for svc, s in mine}
    if sum(1 for _, s in mine if not s.get("parentSpanId")) != 1:
        problems.append("the trace does not have exactly one root")
    for svc, s in mine:
        if s.get("parentSpanId") and s["parentSpanId"] not in by_id:
            problems.append(f"{svc} span {s['name']} has a parent outside the trace")
    for service in ("classifier", "worker"):
        servers = [s for svc, s in mine if svc == service and s.get("kind") == SERVER]
        if not servers:
            problems.append(f"no {service} server span in the trace")
        for s in servers:
            psvc, parent = by_id.get(s.get("parentSpanId"), (None, {}))
            if psvc != "router" or parent.get("kind") != CLIENT:
                problems.append(f"{service} span {s['name']} is not the child of a router client "
                                "span")
    worker_servers = {s["spanId"] for svc, s in mine if svc == "worker" and s.get("kind") == SERVER}
    if not any(svc == "worker" and s.get("kind") == CLIENT and "llama-server" in s.get("name", "")
               and s.get("parentSpanId") in worker_servers for svc, s in mine):
        problems.append("no worker client span (the llama-server call) under its server span")
    for svc, s in spans:
        if s["traceId"] != root["traceId"] and ("Generate" in s.get("name", "")
                                                or "llama-server" in s.get("name", "")):
            problems.append(f"{svc} span {s['name']} is in another trace")
    return problems


class TraceMeshTest(unittest.TestCase):
    def test_local_answer_is_one_trace(self):
        binary = m.llama_server_or_skip()
        receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=receiver.serve_forever, daemon=True).start()
        self.addCleanup(receiver.shutdown)
        os.environ.update({
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{receiver.server_address[1]}",
            "OTEL_TRACES_SAMPLER_ARG": "1.0", "OTEL_BSP_SCHEDULE_DELAY": "100"})
        mesh = m.Mesh(binary)
        self.addCleanup(mesh.stop)
        with Receiver.lock:
            Receiver.spans.clear()  # start-up health checks are not the request
        r = m.chat(mesh.router, "Hi! How are you today?")
        self.assertEqual(r.decision.attempts[-1].backend, "worker-tiny")
        problems = ["no spans received"]
        deadline = time.monotonic() + 15
        while problems and time.monotonic() < deadline:
            time.sleep(0.3)
            with Receiver.lock:
                spans = list(Receiver.spans)
            problems = local_trace_problems(spans)
        print(f"{len(spans)} spans received")
        if problems:
            for svc, s in spans:
                print(f"  {svc}: {s.get('name')} kind={s.get('kind')} trace={s['traceId']} "
                      f"span={s['spanId']} parent={s.get('parentSpanId', '')}")
        self.assertEqual(problems, [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
