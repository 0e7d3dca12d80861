#!/usr/bin/env python3
"""Runs the promtool unit tests of the alert rules and checks their coverage.

Usage: promtool_test.py --promtool /usr/bin/promtool --tests promtool/alerts_test.yml
                        --alerts deploy/prometheus/rules/alerts.yml

Checks, before running `promtool test rules`:
  - every alert in the alerts file has a `summary` and a `runbook` annotation;
  - every alert has at least one test case where it fires and one where it stays
    silent (`exp_alerts: []`), and every tested alert name exists.
The tests file is standard promtool syntax except that an expected alert may give
`exp_summary`; the runner expands it to `exp_annotations` with that summary and
the alert's runbook from the alerts file (so the runbook text lives in one place).
Exits non-zero with a message on the first problem, or with promtool's status.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import yaml


def fail(msg):
    print(f"promtool_test: error: {msg}", file=sys.stderr)
    sys.exit(1)


def load_alerts(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    alerts = {}
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            name = rule.get("alert")
            if name is None:
                continue
            ann = rule.get("annotations") or {}
            for key in ("summary", "runbook"):
                if not str(ann.get(key, "")).strip():
                    fail(f"{path}: alert {name} has no '{key}' annotation")
            if name in alerts:
                fail(f"{path}: alert {name} is defined twice")
            alerts[name] = ann
    if not alerts:
        fail(f"{path}: no alert rules found")
    return alerts


def expand(tests_doc, tests_path, alerts):
    """Returns (expanded doc, {alert: {'fires', 'silent'}})."""
    seen = {name: set() for name in alerts}
    base = os.path.dirname(os.path.abspath(tests_path))
    tests_doc["rule_files"] = [os.path.normpath(os.path.join(base, p))
                               for p in tests_doc.get("rule_files", [])]
    for case in tests_doc.get("tests", []):
        for art in case.get("alert_rule_test", []) or []:
            name = art.get("alertname")
            if name not in alerts:
                fail(f"{tests_path}: test '{case.get('name')}' names unknown alert {name}")
            exp = art.get("exp_alerts") or []
            seen[name].add("fires" if exp else "silent")
            for e in exp:
                if "exp_summary" in e:
                    e["exp_annotations"] = {"summary": e.pop("exp_summary"),
                                            "runbook": alerts[name]["runbook"]}
    return tests_doc, seen


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--promtool", required=True)
    ap.add_argument("--tests", required=True)
    ap.add_argument("--alerts", required=True)
    args = ap.parse_args()
    alerts = load_alerts(args.alerts)
    with open(args.tests, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    doc, seen = expand(doc, args.tests, alerts)
    missing = [f"{name} ({'/'.join(sorted({'fires', 'silent'} - kinds))})"
               for name, kinds in sorted(seen.items()) if kinds != {"fires", "silent"}]
    if missing:
        fail("alerts without a firing and a silent test case: " + ", ".join(missing))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "alerts_test.yml")
        with open(path, "w", encoding="utf-8") as f:
            yaml.safe_dump(doc, f, sort_keys=False)
        rc = subprocess.run([args.promtool, "test", "rules", path], check=False).returncode
    if rc == 0:
        print(f"promtool_test: {len(alerts)} alerts, each fires and stays silent as tested")
    return rc


if __name__ == "__main__":
    sys.exit(main())
