#!/usr/bin/python3
"""The benchmark scripts end to end: tools/bench/mesh_overhead.py runs tiermesh-bench briefly
against the real router, classifier and cloud-proxy in front of the instantly answering fake
provider, and tools/bench/worker_overhead.py runs tiermesh-worker-bench through a worker in front
of a real llama-server (skipped without one); the JSON they print is checked for shape and for
calls that all succeeded. Figures are printed, never asserted (speed targets belong to
benchmarks, not tests).

Run by ctest (label e2e) with TIERMESH_BINARY_DIR and TIERMESH_SOURCE_DIR set.
"""
import json
import os
import subprocess
import sys
import unittest

SOURCE = os.environ.get("TIERMESH_SOURCE_DIR", os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))
BINARY = os.environ["TIERMESH_BINARY_DIR"]


class BenchSmokeTest(unittest.TestCase):
    def test_mesh_overhead_prints_the_reports(self):
        out = subprocess.run(
            [sys.executable, os.path.join(SOURCE, "tools/bench/mesh_overhead.py"),
             "--build", BINARY, "--duration", "1s", "--warmup", "0s", "--concurrency", "4"],
            capture_output=True, text=True, timeout=240)
        self.assertEqual(out.returncode, 0, out.stderr)
        report = json.loads(out.stdout)
        print(f"\n{out.stdout}", file=sys.stderr)
        for part, target in (("direct_latency", "inference"), ("router_latency", "router"),
                             ("direct_max", "inference"), ("router_max", "router")):
            r = report[part]
            self.assertEqual(r["run"]["target"], target)
            self.assertGreater(r["requests"], 0, part)
            self.assertEqual(r["ok"], r["requests"], f"{part}: {r['errors']}")
            self.assertEqual(r["errors"], {})
            self.assertGreater(r["throughput_rps"], 0)
            for key in ("p50", "p90", "p99"):
                self.assertGreater(r["latency_ms"][key], 0)
            self.assertIsNone(r["ttft_ms"])  # unary
        self.assertIn("added_p50_ms", report)
        self.assertEqual(report["router_max_rps"], report["router_max"]["throughput_rps"])

    def test_worker_overhead_prints_every_round_and_their_median(self):
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from mesh import llama_server_or_skip
        llama_server_or_skip()
        out = subprocess.run(
            [sys.executable, os.path.join(SOURCE, "tools/bench/worker_overhead.py"),
             "--build", BINARY, "--requests", "6", "--warmup", "2", "--max_tokens", "8",
             "--rounds", "2"],
            capture_output=True, text=True, timeout=240)
        self.assertEqual(out.returncode, 0, out.stderr)
        report = json.loads(out.stdout)
        print(f"\n{out.stdout}", file=sys.stderr)
        self.assertEqual(report["errors"], 0)
        self.assertEqual(report["pairs"], 6)
        self.assertEqual(len(report["rounds"]), 2)
        for key in ("paired_added_ttft_ms_p50", "paired_added_per_token_us_p50"):
            values = sorted(r[key] for r in report["rounds"])
            self.assertAlmostEqual(report["median_of_rounds"][key], sum(values) / 2)
        for path in ("worker", "direct"):
            self.assertGreater(report[path]["ttft_ms"]["p50"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
