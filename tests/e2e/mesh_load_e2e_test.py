#!/usr/bin/python3
"""The whole mesh under load, black box (Python gRPC stubs, the futures API of grpcio).

1. 2,000 requests, 24 in flight, through the router while the worker answers exactly every 5th
   inference request UNAVAILABLE (fault_injection.unavailable_ratio 0.2): nothing is lost
   (every request gets an answer or a non-OK status with a message, none hangs, all within a
   bounded time) and the fallback rate scraped from the router's /metrics
   (tiermesh_router_fallbacks_total / tiermesh_router_requests_total) is 20% +- 2 points.
2. A budget race: 200 requests at once, all needing the cloud_premium tier, from a tenant whose
   daily cap fits only some of them. What the fake provider actually charged (priced from its
   own ledger, --ledger_file) never exceeds the cap, the cloud-proxy's and the router's cost
   counters agree, and every request beyond the cap gets RESOURCE_EXHAUSTED naming the budget
   (none hangs).

Run by ctest (labels e2e;llama) with TIERMESH_BINARY_DIR and TIERMESH_SOURCE_DIR set; skips
(exit 0 with a message) only when no llama-server binary can be found.
"""
import hashlib
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mesh import (Mesh, chat_request, llama_server_or_skip, metric_sum,  # noqa: E402
                  replace_once)

import grpc  # noqa: E402  (mesh put the stubs on sys.path)
from tiermesh.v1 import router_pb2  # noqa: E402

LOAD_REQUESTS = 2000
LOAD_IN_FLIGHT = 24
LOAD_TIME_LIMIT_S = 240  # all 2,000 answered within this (about 10x what 2 cores need)
FAULT_RATIO = 0.2

RACE_REQUESTS = 200
RACE_KEY = "tm-test-budget-race"
# cloud_premium worst case per request (router.yaml prices: $3 in, $15 out per 1M tokens):
# 16 x $15/1M + ~10 prompt tokens x 1.25 x $3/1M = ~$0.00028, so about 36 reservations fit at
# once and at most 44 answers ($0.000225 each: 15 output tokens, no input price, see below).
RACE_CAP_USD = 0.01
RACE_MAX_TOKENS = 16


def router_config(text):
    # Routing independent of the classifier's model (retrained now and then): everything goes
    # to local_fast, except priority quality (the budget race) to cloud_premium. The router
    # still calls the classifier for every request; mesh_e2e_test covers routing per rule.
    start, end = text.index("\nrules:\n"), text.index("\n# What each user tier may use")
    text = text[:start] + """
rules:
  - name: quality-first
    when: {priority: [quality]}
    tier: cloud_premium
  - name: default
    tier: local_fast
""" + text[end:]
    # A prompt the classifier reads as a tool task would skip a text-only backend.
    text = replace_once(
        text, "capabilities: {tools: false, max_context_tokens: 4096, streaming: true}",
        "capabilities: {tools: true, max_context_tokens: 4096, streaming: true}")
    # Retry budget: router.yaml lets fallbacks be at most 20% of requests (ratio 0.2), exactly
    # the injected failure share, so some fallbacks would be refused ("retry budget spent")
    # and the test would measure the budget, not the failures. 0.5 leaves room.
    text = replace_once(text, "retry_budget: {ratio: 0.2, min_per_second: 5, window: 10s}",
                        "retry_budget: {ratio: 0.5, min_per_second: 5, window: 10s}")
    # Breakers off in effect: the worker's failures are injected, not a sick backend, and an
    # open breaker would send whole windows of requests to the cloud (fallbacks >> 20%).
    text = replace_once(text, "consecutive_failures: 5", "consecutive_failures: 1000")
    text = replace_once(text, "min_requests: 20", "min_requests: 1000000")
    # 400 expected cloud fallbacks: keep the daily limit out of the way.
    text = replace_once(text, "daily_cloud_fallback_limit: 1000",
                        "daily_cloud_fallback_limit: 100000")
    # The budget race's tenant, with a cap that fits only some of its 200 requests.
    digest = hashlib.sha256(RACE_KEY.encode()).hexdigest()
    text = replace_once(text, "  keys:\n", f"""  keys:
    - name: budget-race
      sha256: "{digest}"
      tenant: budget-race
      user_tier: paid
      daily_budget_usd: {RACE_CAP_USD}
""")
    return text


def worker_config(text):
    text = replace_once(text, "fault_injection: {unavailable_ratio: 0}",
                        f"fault_injection: {{unavailable_ratio: {FAULT_RATIO}}}")
    # 24 requests in flight on 2 slots: a queue of 8 would answer RESOURCE_EXHAUSTED and the
    # router would spill those over to the cloud, adding fallbacks that are not failures.
    text = replace_once(text, "max_queue: 8 ", "max_queue: 64 ")
    return text


class Outcome:
    def __init__(self):
        self.code = None  # grpc.StatusCode once answered
        self.details = ""
        self.response = None


def run_concurrently(make_future, count, in_flight, time_limit_s):
    """Starts `count` calls (make_future(i) -> grpc future), at most `in_flight` at once.
    Returns (outcomes, seconds); an outcome whose code is None was never answered within
    time_limit_s (those calls are cancelled)."""
    outcomes = [Outcome() for _ in range(count)]
    slots = threading.Semaphore(in_flight)
    lock = threading.Lock()
    all_done = threading.Event()
    done = [0]
    futures = []

    def finished(i, future):
        o = outcomes[i]
        try:
            o.response = future.result()
            o.code = grpc.StatusCode.OK
        except grpc.RpcError as e:
            o.code, o.details = e.code(), e.details() or ""
        except grpc.FutureCancelledError:
            pass  # cancelled by us after the time limit: stays unanswered
        slots.release()
        with lock:
            done[0] += 1
            if done[0] == count:
                all_done.set()

    start = time.monotonic()
    deadline = start + time_limit_s
    for i in range(count):
        if not slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
            break  # the time limit passed with every slot still busy
        future = make_future(i)
        futures.append(future)
        future.add_done_callback(lambda f, i=i: finished(i, f))
    all_done.wait(timeout=max(0.0, deadline - time.monotonic()))
    seconds = time.monotonic() - start
    for f in futures:
        f.cancel()
    return outcomes, seconds


def summarize(outcomes):
    by_code = {}
    for o in outcomes:
        name = o.code.name if o.code is not None else "UNANSWERED"
        by_code[name] = by_code.get(name, 0) + 1
    return by_code


class MeshLoadTest(unittest.TestCase):
    mesh = None

    @classmethod
    def setUpClass(cls):
        binary = llama_server_or_skip()
        # No stream cuts here; the ledger prices what the fake charged. cloud-premium has no
        # input price at the cloud-proxy: the fake counts prompt tokens as request body
        # bytes / 4 (JSON included), which no router can estimate from the messages, so the
        # race checks the reservations' concurrency, with output tokens (<= max_tokens, exact
        # in the worst case) as the whole cost. The router keeps router.yaml's prices, which
        # only makes its reservations larger.
        cls.mesh = Mesh(binary, fake_args=(), edit_router=router_config,
                        edit_worker=worker_config, ledger=True,
                        cloud_prices=(("0.15", "0.60"), ("0", "15")))

    @classmethod
    def tearDownClass(cls):
        if cls.mesh is not None:
            cls.mesh.stop()

    def synced_ledger(self):
        """The ledger once it holds every request the cloud-proxy made (it is written shortly
        after each attempt ends)."""
        deadline = time.time() + 10
        while True:
            sent = metric_sum(self.mesh.metrics("cloud"), "tiermesh_cloud_requests_total")
            ledger = self.mesh.ledger()
            if len(ledger) >= sent or time.time() > deadline:
                self.assertEqual(len(ledger), sent, "fake ledger vs cloud-proxy requests")
                return ledger

    def test_1_load_with_local_failures_loses_nothing(self):
        router = self.mesh.router
        prompts = ["Hi! How are you today?", "Hello there, how is it going?",
                   "Hi again, nice to meet you.", "Back to local?"]
        before = self.mesh.metrics("router")
        outcomes, seconds = run_concurrently(
            lambda i: router.Chat.future(chat_request(prompts[i % len(prompts)], max_tokens=4),
                                         timeout=60),
            LOAD_REQUESTS, LOAD_IN_FLIGHT, LOAD_TIME_LIMIT_S)
        after = self.mesh.metrics("router")
        by_code = summarize(outcomes)
        print(f"\nload: {LOAD_REQUESTS} requests in {seconds:.1f} s "
              f"({LOAD_REQUESTS / seconds:.0f}/s), outcomes {by_code}", file=sys.stderr)

        # Zero lost: every request answered, none ran into the client's deadline (a hang),
        # every error says why.
        self.assertEqual(by_code.get("UNANSWERED", 0), 0, by_code)
        self.assertEqual(by_code.get("DEADLINE_EXCEEDED", 0), 0, by_code)
        errors = [o for o in outcomes if o.code not in (None, grpc.StatusCode.OK)]
        for o in errors:
            self.assertTrue(o.details, f"{o.code} without a message")
        # With the cloud behind it and nothing capped, every request is served.
        self.assertEqual(by_code.get("OK", 0), LOAD_REQUESTS,
                         f"{by_code}; first errors: {[(o.code, o.details) for o in errors[:5]]}")

        # Every request tried local first; those that fell back say why.
        answers = [o.response for o in outcomes]
        elsewhere = [a for a in answers if a.decision.attempts[0].tier != "local_fast"]
        self.assertEqual(len(elsewhere), 0,
                         f"{len(elsewhere)} answers did not try local_fast first; the first:\n"
                         f"{elsewhere[0].decision if elsewhere else ''}")
        fell_back = [a for a in answers if a.decision.attempts[0].code != "OK"]
        for a in fell_back:
            self.assertEqual(a.decision.attempts[0].code, "UNAVAILABLE")
            self.assertIn("injected fault", a.decision.attempts[0].error)
            self.assertTrue(a.decision.attempts[-1].tier.startswith("cloud"))

        # The fallback rate as an operator sees it on /metrics.
        requests = (metric_sum(after, "tiermesh_router_requests_total")
                    - metric_sum(before, "tiermesh_router_requests_total"))
        fallbacks = (metric_sum(after, "tiermesh_router_fallbacks_total")
                     - metric_sum(before, "tiermesh_router_fallbacks_total"))
        self.assertEqual(requests, LOAD_REQUESTS)
        rate = fallbacks / requests
        print(f"load: fallback rate {rate:.4f} ({fallbacks:.0f}/{requests:.0f}), "
              f"{len(fell_back)} answers fell back", file=sys.stderr)
        self.assertAlmostEqual(rate, FAULT_RATIO, delta=0.02)
        self.assertEqual(fallbacks, len(fell_back))
        self.assertEqual(
            metric_sum(after, "tiermesh_router_fallbacks_total", from_tier="local_fast",
                       to_tier="cloud_cheap")
            - metric_sum(before, "tiermesh_router_fallbacks_total", from_tier="local_fast",
                         to_tier="cloud_cheap"), fallbacks)

    def test_2_budget_race_never_overspends(self):
        router = self.mesh.router
        start_entries = len(self.synced_ledger())
        cloud_before = self.mesh.metrics("cloud")
        router_before = self.mesh.metrics("router")
        metadata = (("authorization", f"Bearer {RACE_KEY}"),)

        def call(i):
            request = chat_request(f"Hi! How are you today? ({i})",
                                   priority=router_pb2.PRIORITY_QUALITY,
                                   max_tokens=RACE_MAX_TOKENS)
            return router.Chat.future(request, timeout=60, metadata=metadata)

        outcomes, seconds = run_concurrently(call, RACE_REQUESTS, RACE_REQUESTS, 120)
        by_code = summarize(outcomes)
        entries = self.synced_ledger()[start_entries:]
        charged = self.mesh.ledger_usd(entries)
        cloud_spend = (metric_sum(self.mesh.metrics("cloud"), "tiermesh_cloud_cost_usd_total")
                       - metric_sum(cloud_before, "tiermesh_cloud_cost_usd_total"))
        router_spend = (metric_sum(self.mesh.metrics("router"), "tiermesh_router_cost_usd_total")
                        - metric_sum(router_before, "tiermesh_router_cost_usd_total"))
        print(f"\nrace: {by_code} in {seconds:.1f} s; fake charged ${charged:.6f} for "
              f"{len(entries)} calls, cloud-proxy ${cloud_spend:.6f}, router ${router_spend:.6f}, "
              f"cap ${RACE_CAP_USD}", file=sys.stderr)

        self.assertEqual(by_code.get("UNANSWERED", 0), 0, by_code)
        ok = [o for o in outcomes if o.code == grpc.StatusCode.OK]
        refused = [o for o in outcomes if o.code not in (None, grpc.StatusCode.OK)]
        # The cap fits some requests, not all: the race is real.
        self.assertGreater(len(ok), 0, by_code)
        self.assertGreater(len(refused), 0, by_code)
        for o in ok:
            self.assertEqual(o.response.decision.tier, "cloud_premium")
        for o in refused:
            self.assertEqual(o.code, grpc.StatusCode.RESOURCE_EXHAUSTED, o.details)
            self.assertIn("budget", o.details.lower())

        # The oracle: what the provider charged never exceeds the cap.
        self.assertEqual({e["model"] for e in entries}, {"fake-premium"})
        self.assertEqual(len(entries), len(ok), "one provider call per served request")
        self.assertLessEqual(charged, RACE_CAP_USD)
        # The mesh's own accounting agrees with the provider's (float sums: 1e-9 USD).
        self.assertAlmostEqual(cloud_spend, charged, delta=1e-9)
        self.assertAlmostEqual(router_spend, charged, delta=1e-9)


if __name__ == "__main__":
    unittest.main(verbosity=2)
