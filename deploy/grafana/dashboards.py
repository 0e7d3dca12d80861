#!/usr/bin/env python3
"""Generates the tiermesh Grafana dashboards (deploy/grafana/dashboards/*.json).

    deploy/grafana/dashboards.py            # rewrite the JSON files
    deploy/grafana/dashboards.py --check    # exit 1 when a file is out of date

The JSON is committed (Grafana provisions it as is); this script is the source of
truth so that panels stay uniform: every panel uses the `datasource` variable and
the `job`/`instance` (overview) or `instance`/`model`/`gpu` (local inference)
filters. The deploy_grafana_dashboards test checks the files are up to date and
that every expression names only metrics the services export.
"""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "dashboards")
DS = {"type": "prometheus", "uid": "${datasource}"}
RATE = "$__rate_interval"


def target(expr, legend, ref):
    return {"datasource": DS, "expr": expr, "legendFormat": legend, "refId": ref}


def panel(kind, title, exprs, x, y, w=12, h=8, unit="short", description="", **options):
    """exprs: list of (expr, legend)."""
    p = {
        "type": kind,
        "title": title,
        "description": description,
        "datasource": DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [target(e, l, chr(ord("A") + i)) for i, (e, l) in enumerate(exprs)],
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": options or {},
    }
    return p


def row(title, y):
    return {"type": "row", "title": title, "collapsed": False,
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}, "panels": []}


def query_var(name, label, query, multi=True):
    return {
        "name": name, "label": label, "type": "query", "datasource": DS,
        "query": {"query": query, "refId": f"{name}-var"}, "definition": query,
        "refresh": 2, "multi": multi, "includeAll": True, "allValue": ".*",
        "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
        "sort": 1,
    }


def datasource_var():
    return {"name": "datasource", "label": "Datasource", "type": "datasource",
            "query": "prometheus", "refresh": 1, "current": {}, "hide": 0}


def dashboard(uid, title, description, variables, panels):
    for i, p in enumerate(panels):
        p["id"] = i + 1
    return {
        "uid": uid, "title": title, "description": description,
        "tags": ["tiermesh"], "timezone": "utc", "editable": False,
        "schemaVersion": 39, "version": 1, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": variables},
        "annotations": {"list": []},
        "links": [{"title": "tiermesh dashboards", "type": "dashboards", "tags": ["tiermesh"],
                   "asDropdown": True}],
        "panels": panels,
    }


def overview():
    f = 'job=~"$job", instance=~"$instance"'
    req = f"tiermesh_router_requests_total{{{f}}}"
    ps = []
    y = 0
    ps.append(row("Traffic and tiers", y)); y += 1
    ps += [
        panel("timeseries", "Requests/s by tier",
              [(f"sum by (tier) (rate({req}[{RATE}]))", "{{tier}}")], 0, y, unit="reqps"),
        panel("timeseries", "Requests/s by user tier",
              [(f"sum by (user_tier) (rate({req}[{RATE}]))", "{{user_tier}}")], 12, y,
              unit="reqps"),
    ]
    y += 8
    ps += [
        panel("piechart", "Tier split",
              [("tiermesh:router_tier_share:ratio_rate5m", "{{tier}}")], 0, y, w=6,
              unit="percentunit", description="Share of requests per serving tier (all routers).",
              pieType="donut", reduceOptions={"calcs": ["lastNotNull"]}),
        panel("stat", "Fallback rate",
              [("tiermesh:router_fallback:ratio_rate5m", "fallbacks per request")], 6, y, w=6,
              unit="percentunit", description="Fallbacks per request over 5m (alert over 25%).",
              reduceOptions={"calcs": ["lastNotNull"]}),
        panel("timeseries", "Fallbacks by reason",
              [(f"sum by (from_tier, to_tier, reason) "
                f"(rate(tiermesh_router_fallbacks_total{{{f}}}[{RATE}]))",
                "{{from_tier}} → {{to_tier}} ({{reason}})")], 12, y, w=6, unit="reqps"),
        panel("timeseries", "Escalations",
              [(f"sum by (from_tier, to_tier) "
                f"(rate(tiermesh_router_escalations_total{{{f}}}[{RATE}]))",
                "{{from_tier}} → {{to_tier}}")], 18, y, w=6, unit="reqps",
              description="Chat calls with escalate_from: re-runs at the next tier up."),
    ]
    y += 8
    ps.append(row("Spend and budget", y)); y += 1
    ps += [
        panel("timeseries", "Spend per hour by tier",
              [(f'sum by (tier) (increase(tiermesh_router_cost_usd_total{{{f}}}[1h]))',
                "{{tier}}")], 0, y, w=8, unit="currencyUSD"),
        panel("timeseries", "Spend per hour by backend",
              [(f'sum by (backend) (increase(tiermesh_router_cost_usd_total{{{f}}}[1h]))',
                "{{backend}}")], 8, y, w=8, unit="currencyUSD"),
        panel("timeseries", "Projected spend vs budget left today",
              [("tiermesh:router_cost_usd:projected_rest_of_day",
                "projected spend to midnight UTC"),
               (f'min by (scope) (tiermesh_router_budget_remaining_usd{{{f}}})',
                "budget left ({{scope}})")], 16, y, w=8, unit="currencyUSD",
              description="When the projection crosses the budget left, the daily cap runs "
                          "out before midnight UTC (alert TiermeshSpendWouldExceedDailyCap)."),
    ]
    y += 8
    ps += [
        panel("stat", "Spend last 24h",
              [(f"sum(increase(tiermesh_router_cost_usd_total{{{f}}}[24h]))", "USD")],
              0, y, w=6, h=6, unit="currencyUSD", reduceOptions={"calcs": ["lastNotNull"]}),
        panel("stat", "Budget remaining",
              [(f"min by (scope) (tiermesh_router_budget_remaining_usd{{{f}}})", "{{scope}}")],
              6, y, w=6, h=6, unit="currencyUSD", reduceOptions={"calcs": ["lastNotNull"]}),
        panel("timeseries", "Cloud spend per hour by provider",
              [(f"sum by (provider, model) "
                f"(increase(tiermesh_cloud_cost_usd_total{{{f}}}[1h]))",
                "{{provider}} {{model}}")], 12, y, w=12, h=6, unit="currencyUSD",
              description="Operator spend seen by the cloud-proxy (BYOK calls excluded)."),
    ]
    y += 6
    ps.append(row("Latency", y)); y += 1
    for i, (metric, title) in enumerate([
            ("tiermesh_router_request_duration_seconds", "Latency p50/p99 by tier"),
            ("tiermesh_router_time_to_first_token_seconds", "Time to first token p50/p99")]):
        ps.append(panel("timeseries", title, [
            (f"histogram_quantile({q}, sum by (tier, le) "
             f"(rate({metric}_bucket{{{f}}}[{RATE}])))", f"p{int(q * 100)} {{{{tier}}}}")
            for q in (0.5, 0.99)], 12 * i, y, unit="s"))
    y += 8
    ps.append(row("Errors and resilience", y)); y += 1
    ps += [
        panel("timeseries", "Errors by code",
              [(f'sum by (job, code) (rate(tiermesh_grpc_server_requests_total'
                f'{{{f}, code!="OK"}}[{RATE}]))', "{{job}} {{code}}"),
               (f'sum by (outcome) (rate(tiermesh_router_requests_total'
                f'{{{f}, outcome!="ok"}}[{RATE}]))', "router outcome {{outcome}}")],
              0, y, w=8, unit="reqps"),
        panel("state-timeline", "Circuit breakers",
              [(f"max by (backend) (tiermesh_router_backend_circuit_open{{{f}}})",
                "{{backend}}")], 8, y, w=8,
              description="1: the backend's breaker is open (its traffic falls back)."),
        panel("state-timeline", "Degraded mode",
              [(f"max by (reason) (tiermesh_router_degraded{{{f}}})", "{{reason}}")],
              16, y, w=8, description="1: a degraded mode is in force (offline, budget "
                                      "local-only steps, cloud fallback limit)."),
    ]
    y += 8
    ps.append(row("Services", y)); y += 1
    ps += [
        panel("timeseries", "Cloud requests by provider and code",
              [(f"sum by (provider, code) (rate(tiermesh_cloud_requests_total{{{f}}}[{RATE}]))",
                "{{provider}} {{code}}"),
               (f"sum by (provider) (rate(tiermesh_cloud_rate_limited_total{{{f}}}[{RATE}]))",
                "{{provider}} rate limited")], 0, y, w=8, unit="reqps"),
        panel("timeseries", "Cloud upstream p99",
              [(f"histogram_quantile(0.99, sum by (provider, le) "
                f"(rate(tiermesh_cloud_upstream_duration_seconds_bucket{{{f}}}[{RATE}])))",
                "{{provider}}")], 8, y, w=8, unit="s"),
        panel("timeseries", "Classifier requests by task",
              [(f"sum by (task) (rate(tiermesh_classifier_requests_total{{{f}}}[{RATE}]))",
                "{{task}}"),
               (f"histogram_quantile(0.99, sum by (le) "
                f"(rate(tiermesh_classifier_duration_seconds_bucket{{{f}}}[{RATE}])))",
                "classify p99 (s)")], 16, y, w=8, unit="short"),
    ]
    y += 8
    ps += [
        panel("heatmap", "Classifier complexity",
              [(f"sum by (le) (increase(tiermesh_classifier_complexity_bucket{{{f}}}[{RATE}]))",
                "{{le}}")], 0, y, unit="short",
              description="Distribution of the complexity scores (0..1) the classifier returns."),
        panel("timeseries", "gRPC in flight by service",
              [(f"sum by (job) (tiermesh_grpc_server_in_flight{{{f}}})", "{{job}}"),
               (f"histogram_quantile(0.99, sum by (job, le) "
                f"(rate(tiermesh_grpc_server_request_duration_seconds_bucket{{{f}}}[{RATE}])))",
                "{{job}} p99 (s)")], 12, y, unit="short"),
    ]
    variables = [
        datasource_var(),
        query_var("job", "Service", "label_values(up, job)"),
        query_var("instance", "Instance", 'label_values(up{job=~"$job"}, instance)'),
    ]
    return dashboard("tiermesh-overview", "tiermesh / Overview",
                     "Tier split, fallbacks, escalations, spend against the caps, latency, "
                     "errors, breakers and degraded mode of the tiermesh mesh.", variables, ps)


def local_inference():
    w = 'instance=~"$instance"'
    m = f'{w}, model=~"$model"'
    g = f'{w}, gpu=~"$gpu"'
    ps = []
    y = 0
    ps.append(row("GPU", y)); y += 1
    ps += [
        panel("timeseries", "GPU utilization",
              [(f"tiermesh_worker_gpu_utilization_ratio{{{g}}}", "{{instance}} gpu {{gpu}}")],
              0, y, unit="percentunit", description="Empty without an NVIDIA GPU (NVML)."),
        panel("timeseries", "GPU memory used",
              [(f"tiermesh_worker_gpu_memory_used_bytes{{{g}}}", "{{instance}} gpu {{gpu}} used"),
               (f"tiermesh_worker_gpu_memory_total_bytes{{{g}}}",
                "{{instance}} gpu {{gpu}} total")],
              12, y, unit="bytes", description="Empty without an NVIDIA GPU (NVML)."),
    ]
    y += 8
    ps.append(row("Slots and queue", y)); y += 1
    ps += [
        panel("stat", "Worker ready",
              [(f"min by (instance) (tiermesh_worker_ready{{{w}}})", "{{instance}}")],
              0, y, w=4, unit="bool_yes_no", reduceOptions={"calcs": ["lastNotNull"]},
              description="0: the worker reports NOT_SERVING (alert TiermeshLocalTierDown)."),
        panel("timeseries", "Slots busy",
              [(f"sum by (model) (tiermesh_worker_slots_busy{{{m}}})", "{{model}} busy"),
               (f"sum by (model) (tiermesh_worker_slots_total{{{m}}})", "{{model}} total"),
               (f'tiermesh:worker_slots_busy:ratio{{{m}}}', "{{instance}} {{model}} busy share")],
              4, y, w=10),
        panel("timeseries", "Deferred requests",
              [(f"sum by (model) (tiermesh_worker_queue_depth{{{m}}})",
                "{{model}} queued in worker"),
               (f"sum by (model) (tiermesh_worker_deferred_requests{{{m}}})",
                "{{model}} deferred by llama-server"),
               ('sum by (instance) (llamacpp:requests_deferred)',
                "{{instance}} llama-server"),
               (f"sum by (model) (rate(tiermesh_worker_admission_rejected_total{{{m}}}[{RATE}]))",
                "{{model}} rejected/s")],
              14, y, w=10, description="Requests waiting for a slot (the worker HPA scales on "
                                       "the queue); rejected: admission refused "
                                       "(RESOURCE_EXHAUSTED, the router spills to cloud)."),
    ]
    y += 8
    ps += [
        panel("timeseries", "KV-cache use",
              [(f"tiermesh_worker_kv_cache_usage_ratio{{{m}}}", "{{instance}} {{model}}")],
              0, y, w=8, unit="percentunit"),
        panel("timeseries", "Tokens/s",
              [(f"sum by (model, kind) (rate(tiermesh_worker_tokens_total{{{m}}}[{RATE}]))",
                "{{model}} {{kind}}")], 8, y, w=8, unit="short"),
        panel("timeseries", "llama-server requests processing",
              [('sum by (instance) (llamacpp:requests_processing)',
                "{{instance}}")], 16, y, w=8, unit="short",
              description="From llama-server's own /metrics (--metrics)."),
    ]
    y += 8
    ps += [
        panel("timeseries", "Worker requests by code",
              [(f"sum by (model, code) (rate(tiermesh_worker_requests_total{{{m}}}[{RATE}]))",
                "{{model}} {{code}}")], 0, y, unit="reqps"),
        panel("timeseries", "Worker time to first token p50/p99",
              [(f"histogram_quantile({q}, sum by (model, le) "
                f"(rate(tiermesh_worker_time_to_first_token_seconds_bucket{{{m}}}[{RATE}])))",
                f"p{int(q * 100)} {{{{model}}}}") for q in (0.5, 0.99)], 12, y, unit="s"),
    ]
    y += 8
    ps.append(row("Models", y)); y += 1
    ps += [
        panel("state-timeline", "Models loaded",
              [(f"max by (instance, model) (tiermesh_worker_model_loaded{{{m}}})",
                "{{instance}} {{model}}")], 0, y, w=12,
              description="Model residency: 1 while the model is loaded in llama-server."),
        panel("timeseries", "llama-server restarts",
              [(f"sum by (instance, model) "
                f"(increase(tiermesh_worker_llama_restarts_total{{{m}}}[1h]))",
                "{{instance}} {{model}}")], 12, y, w=6, unit="short"),
        panel("timeseries", "Worker gRPC p99",
              [(f'histogram_quantile(0.99, sum by (method, le) (rate('
                f'tiermesh_grpc_server_request_duration_seconds_bucket{{job="worker", {w}}}'
                f'[{RATE}])))', "{{method}}")], 18, y, w=6, unit="s"),
    ]
    variables = [
        datasource_var(),
        query_var("instance", "Worker", "label_values(tiermesh_worker_ready, instance)"),
        query_var("model", "Model",
                  'label_values(tiermesh_worker_model_loaded{instance=~"$instance"}, model)'),
        query_var("gpu", "GPU",
                  "label_values(tiermesh_worker_gpu_utilization_ratio"
                  '{instance=~"$instance"}, gpu)'),
    ]
    return dashboard("tiermesh-local-inference", "tiermesh / Local inference",
                     "GPU utilization and memory, slots, KV cache, deferred requests, tokens/s, "
                     "model residency and llama-server restarts of the tiermesh workers.",
                     variables, ps)


def render():
    return {"overview.json": overview(), "local-inference.json": local_inference()}


def main():
    check = sys.argv[1:] == ["--check"]
    if sys.argv[1:] not in ([], ["--check"]):
        print("usage: dashboards.py [--check]", file=sys.stderr)
        return 2
    stale = []
    for name, dash in render().items():
        text = json.dumps(dash, indent=2, ensure_ascii=False) + "\n"
        path = os.path.join(OUT, name)
        if check:
            try:
                with open(path, encoding="utf-8") as f:
                    if f.read() != text:
                        stale.append(path)
            except FileNotFoundError:
                stale.append(path)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if stale:
        print("dashboards.py: out of date (run deploy/grafana/dashboards.py): " + ", ".join(stale),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
