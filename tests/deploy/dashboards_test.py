#!/usr/bin/env python3
"""Static checks of the Grafana dashboards and the Prometheus rules.

Usage: dashboards_test.py --root REPO_ROOT

- the dashboard JSON files are up to date with deploy/grafana/dashboards.py;
- each dashboard is valid JSON with a `datasource` variable that every panel and
  target uses, and every target has a non-empty expr;
- every metric name in a panel expression, a recording rule or an alert rule is
  one the services export (derived from services/ at test time), a recording
  rule, a contract name (tests/deploy/metric_names.py) or llama-server's own;
- raw tiermesh_* selectors carry the dashboard's instance filter;
- every panel title quoted in an alert's runbook exists in a dashboard;
- the provisioning files point at the dashboards folder the compose file mounts.
Exits non-zero listing every problem.
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import metric_names  # noqa: E402


def panels_of(dashboard):
    for p in dashboard.get("panels", []):
        yield p
        yield from p.get("panels", [])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    args = ap.parse_args()
    root = args.root
    problems = []

    gen = os.path.join(root, "deploy/grafana/dashboards.py")
    r = subprocess.run([sys.executable, gen, "--check"], capture_output=True, text=True)
    if r.returncode != 0:
        problems.append(r.stderr.strip() or "dashboards.py --check failed")

    rules = sorted(glob.glob(os.path.join(root, "deploy/prometheus/rules/*.yml")))
    if not rules:
        problems.append("no rule files under deploy/prometheus/rules")
    from_sources = metric_names.source_metric_names(os.path.join(root, "services"))
    recorded = metric_names.recorded_names(rules)
    known = (from_sources | recorded | metric_names.CONTRACT_ONLY | metric_names.LLAMA_SERVER
             | metric_names.PROMETHEUS)
    pending = sorted(metric_names.CONTRACT_ONLY - from_sources)
    if pending:
        print("dashboards_test: contract names not in services/ yet: " + ", ".join(pending))
    if "tiermesh_router_requests_total" not in from_sources:
        problems.append("could not derive the metric names from services/ (router names missing)")

    def check_expr(where, expr):
        if not expr or not expr.strip():
            problems.append(f"{where}: empty expression")
            return
        names = metric_names.metric_names_in(expr)
        if not names:
            problems.append(f"{where}: selects no metric: {expr}")
        for name in sorted(names):
            if not metric_names.is_known(name, known):
                problems.append(f"{where}: unknown metric '{name}' in: {expr}")

    for where, expr in metric_names.rule_exprs(rules):
        check_expr(where, expr)

    titles = set()
    files = sorted(glob.glob(os.path.join(root, "deploy/grafana/dashboards/*.json")))
    if len(files) < 2:
        problems.append("expected the overview and local-inference dashboards")
    for path in files:
        name = os.path.basename(path)
        try:
            with open(path, encoding="utf-8") as f:
                dash = json.load(f)
        except json.JSONDecodeError as e:
            problems.append(f"{name}: invalid JSON: {e}")
            continue
        for key in ("uid", "title", "panels", "templating"):
            if key not in dash:
                problems.append(f"{name}: no '{key}'")
        variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
        if variables.get("datasource", {}).get("type") != "datasource":
            problems.append(f"{name}: no datasource variable")
        if "instance" not in variables:
            problems.append(f"{name}: no instance filter variable")
        count = 0
        for p in panels_of(dash):
            if p.get("type") == "row":
                continue
            where = f"{name}: panel '{p.get('title')}'"
            titles.add(p.get("title"))
            if p.get("datasource", {}).get("uid") != "${datasource}":
                problems.append(f"{where}: does not use the datasource variable")
            if not p.get("targets"):
                problems.append(f"{where}: no targets")
            for t in p.get("targets", []):
                count += 1
                if t.get("datasource", {}).get("uid") != "${datasource}":
                    problems.append(f"{where}: target {t.get('refId')} ignores the "
                                    "datasource variable")
                expr = t.get("expr", "")
                check_expr(where, expr)
                raw = [n for n in metric_names.metric_names_in(expr) if n.startswith("tiermesh_")]
                if raw and '$instance' not in expr:
                    problems.append(f"{where}: {raw[0]} without the instance filter")
        if count == 0:
            problems.append(f"{name}: no panel targets")

    for path in rules:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                runbook = (rule.get("annotations") or {}).get("runbook", "")
                for quoted in re.findall(r"'([^']+)'", runbook):
                    if quoted not in titles:
                        problems.append(f"{rule.get('alert')}: runbook names panel '{quoted}', "
                                        "which no dashboard has")

    prov = os.path.join(root, "deploy/grafana/provisioning/dashboards/tiermesh.yaml")
    with open(prov, encoding="utf-8") as f:
        paths = [p["options"]["path"] for p in yaml.safe_load(f)["providers"]]
    with open(os.path.join(root, "docker-compose.yml"), encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    mounts = [v for v in compose["services"]["grafana"].get("volumes", []) if isinstance(v, str)]
    for p in paths:
        if not any(v.startswith("./deploy/grafana/dashboards:") and v.split(":")[1] == p
                   for v in mounts):
            problems.append(f"grafana: provisioning path {p} is not where compose mounts "
                            "deploy/grafana/dashboards")

    for p in problems:
        print(f"dashboards_test: {p}", file=sys.stderr)
    if problems:
        return 1
    print(f"dashboards_test: {len(files)} dashboards and {len(rules)} rule files use only "
          f"known metric names ({len(known)} known)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
