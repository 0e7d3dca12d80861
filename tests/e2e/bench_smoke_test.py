#!/usr/bin/python3
"""tiermesh-bench end to end: tools/bench/mesh_overhead.py runs it briefly against the real
router, classifier and cloud-proxy in front of the instantly answering fake provider, and the
JSON it prints is checked for shape and for calls that all succeeded. Figures are printed,
never asserted (speed targets belong to benchmarks, not tests).

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


if __name__ == "__main__":
    unittest.main(verbosity=2)
