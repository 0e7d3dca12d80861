#!/usr/bin/env python3
"""Evaluates every Grafana panel query of the tiermesh dashboards against a Prometheus.

Usage:
  dashboard_check.py --prometheus http://127.0.0.1:9090 --dashboards deploy/grafana/dashboards
                     [--allow-empty 'uid/Panel title' ...] [--gpu] [--rate-interval 1m]

Each target's expr has its Grafana variables replaced ($__rate_interval by
--rate-interval, $__interval by 30s, $__range by 1h, every dashboard variable such
as $job or $instance by `.*`, i.e. "All") and is evaluated with /api/v1/query.
Prints one line per target: `data`, `empty` or `error <message>`.

Exit status 0 when every expression parses and every panel returns data, except
that the panels that can only be empty without a GPU (GPU_ONLY_PANELS, or the
--allow-empty list) must be exactly the empty ones; with --gpu (a machine with a
GPU) no panel may be empty. 1 otherwise; 2 when Prometheus cannot be reached or the
arguments are wrong.
"""
import argparse
import glob
import json
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

# Panels whose every query reads NVML metrics: empty on a machine without an NVIDIA GPU.
GPU_ONLY_PANELS = (
    "tiermesh-local-inference/GPU utilization",
    "tiermesh-local-inference/GPU memory used",
)
BUILTINS = {"__interval": "30s", "__range": "1h", "__rate_interval": None}
VAR_RE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def substitute(expr, rate_interval):
    def repl(m):
        name = m.group(1) or m.group(2)
        if name == "__rate_interval":
            return rate_interval
        if name in BUILTINS:
            return BUILTINS[name]
        return ".*"
    return VAR_RE.sub(repl, expr)


def query(base, expr, timeout=10):
    """Returns (ok, result count, error message)."""
    url = base.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        try:
            body = json.load(e)
        except ValueError:
            return False, 0, f"HTTP {e.code}"
    if body.get("status") != "success":
        return False, 0, body.get("error", "unknown error")
    result = body["data"]["result"]
    if body["data"]["resultType"] == "scalar":
        return True, 1, ""
    return True, len(result), ""


def panels_of(dashboard):
    for p in dashboard.get("panels", []):
        if p.get("type") == "row":
            yield from p.get("panels", [])
        else:
            yield p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    ap.add_argument("--dashboards", required=True, help="directory of dashboard JSON files")
    ap.add_argument("--allow-empty", nargs="*", default=None,
                    help="'<dashboard uid>/<panel title>' that may (must) be empty; "
                         "default: the GPU-only panels")
    ap.add_argument("--gpu", action="store_true", help="a GPU is present: no panel may be empty")
    ap.add_argument("--rate-interval", default="1m")
    args = ap.parse_args(argv)
    allowed = set(GPU_ONLY_PANELS if args.allow_empty is None else args.allow_empty)
    if args.gpu:
        allowed = set()

    try:
        urllib.request.urlopen(args.prometheus.rstrip("/") + "/-/ready", timeout=10).read()
    except (urllib.error.URLError, OSError) as e:
        print(f"dashboard_check: error: Prometheus at {args.prometheus} is not ready: {e}",
              file=sys.stderr)
        return 2
    files = sorted(glob.glob(os.path.join(args.dashboards, "*.json")))
    if not files:
        print(f"dashboard_check: error: no dashboards in {args.dashboards}", file=sys.stderr)
        return 2

    errors, empty_panels, panels_with_data, total = [], set(), set(), 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
        uid = dash.get("uid", os.path.basename(path))
        for panel in panels_of(dash):
            key = f"{uid}/{panel.get('title')}"
            panel_empty = False
            for t in panel.get("targets", []):
                total += 1
                expr = substitute(t.get("expr", ""), args.rate_interval)
                ok, count, err = query(args.prometheus, expr)
                if not ok:
                    errors.append(f"{key} [{t.get('refId')}]: {err}")
                    print(f"error  {key} [{t.get('refId')}] {err}: {expr}")
                elif count == 0:
                    panel_empty = True
                    print(f"empty  {key} [{t.get('refId')}] {expr}")
                else:
                    print(f"data   {key} [{t.get('refId')}] {count} series")
            (empty_panels if panel_empty else panels_with_data).add(key)

    failed = bool(errors)
    for e in errors:
        print(f"dashboard_check: does not evaluate: {e}", file=sys.stderr)
    for key in sorted(empty_panels - allowed):
        print(f"dashboard_check: empty panel not in the allow-list: {key}", file=sys.stderr)
        failed = True
    for key in sorted(allowed - empty_panels):
        print(f"dashboard_check: allow-listed panel is not empty (or does not exist): {key}",
              file=sys.stderr)
        failed = True
    print(f"dashboard_check: {total} queries in {len(files)} dashboards: "
          f"{len(errors)} errors, empty panels {sorted(empty_panels) or 'none'}"
          f"{' (as allowed)' if not failed else ''}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
