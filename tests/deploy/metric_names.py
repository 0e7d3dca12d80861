"""Metric names the tiermesh services export, and the names a PromQL expression uses.

Shared by the deploy tests. The known names are derived from the service sources at
test time (string literals "tiermesh_..." and metrics::MetricName("sub", "name")
calls), plus the names in the metrics contract whose code is still being written
(CONTRACT_ONLY), llama-server's own names and Prometheus's `up`.
"""
import glob
import os
import re

import yaml

# Agreed in DESIGN.md's metrics contract and with the worker and router engineers;
# allowed until their code lands (the test reports which are not in the sources yet).
CONTRACT_ONLY = {
    "tiermesh_worker_gpu_utilization_ratio", "tiermesh_worker_gpu_memory_used_bytes",
    "tiermesh_worker_model_loaded", "tiermesh_worker_slots_busy",
    "tiermesh_worker_kv_cache_usage_ratio", "tiermesh_worker_llama_restarts_total",
    "tiermesh_worker_tokens_total", "tiermesh_worker_slots_total",
    "tiermesh_worker_deferred_requests", "tiermesh_worker_ready",
    "tiermesh_worker_admission_rejected_total", "tiermesh_router_escalations_total",
}
# llama-server's own /metrics (DESIGN.md, "Facts about the upstreams").
LLAMA_SERVER = {"llamacpp:requests_processing", "llamacpp:requests_deferred"}
PROMETHEUS = {"up"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

PROMQL_WORDS = {
    # aggregations, keywords and set operators
    "sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile",
    "count_values", "group", "by", "without", "on", "ignoring", "group_left", "group_right",
    "bool", "and", "or", "unless", "offset", "atan2",
}
LITERAL_RE = re.compile(r'"(?:[^"\\]|\\.)*"' + r"|'(?:[^'\\]|\\.)*'" + r"|`[^`]*`")
MATCHERS_RE = re.compile(r"\{[^{}]*\}")
LABEL_LIST_RE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
RANGE_RE = re.compile(r"\[[^\]]*\]")
VARIABLE_RE = re.compile(r"\$\{?\w+\}?")
IDENT_RE = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def source_metric_names(services_dir):
    """Names the C++ sources register: literals, MetricName("sub", "name") and a
    local helper `auto name = [](...) { return metrics::MetricName("sub", n); }`
    called as name("metric")."""
    names = set()
    literal = re.compile(r'"(tiermesh_[a-z0-9_]+)"')
    built = re.compile(r'MetricName\(\s*"([a-z0-9_]+)"\s*,\s*"([a-z0-9_]+)"\s*\)')
    helper = re.compile(r'auto\s+(\w+)\s*=\s*\[[^\]]*\]\s*\([^)]*\)\s*\{\s*return\s+'
                        r'(?:\w+::)*MetricName\(\s*"([a-z0-9_]+)"\s*,\s*\w+\s*\)')
    for path in glob.glob(os.path.join(services_dir, "**", "*.*"), recursive=True):
        if not path.endswith((".cc", ".h")):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
        names.update(literal.findall(text))
        names.update(f"tiermesh_{sub}_{name}" for sub, name in built.findall(text))
        for fn, sub in helper.findall(text):
            calls = re.findall(r"\b" + re.escape(fn) + r'\(\s*"([a-z0-9_]+)"\s*\)', text)
            names.update(f"tiermesh_{sub}_{name}" for name in calls)
    return names


def recorded_names(rules_paths):
    names = set()
    for path in rules_paths:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                if "record" in rule:
                    names.add(rule["record"])
    return names


def rule_exprs(rules_paths):
    """(where, expr) for every recording and alerting rule."""
    out = []
    for path in rules_paths:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        for group in doc.get("groups", []):
            for rule in group.get("rules", []):
                name = rule.get("record") or rule.get("alert")
                out.append((f"{os.path.basename(path)}: {name}", rule["expr"]))
    return out


def metric_names_in(expr):
    """Metric names a PromQL expression selects (functions, keywords and labels removed)."""
    names = set(re.findall(r'__name__\s*=\s*"([^"]+)"', expr))
    text = LITERAL_RE.sub(" ", expr)
    text = MATCHERS_RE.sub(" ", text)
    text = LABEL_LIST_RE.sub(" ", text)
    text = RANGE_RE.sub(" ", text)
    text = VARIABLE_RE.sub(" ", text)
    for m in IDENT_RE.finditer(text):
        word = m.group(0)
        rest = text[m.end():].lstrip()
        if rest.startswith("("):  # a function call
            continue
        if word in PROMQL_WORDS or word.lower() in ("inf", "nan"):
            continue
        if m.start() > 0 and (text[m.start() - 1].isdigit() or text[m.start() - 1] == "."):
            continue  # exponent or unit of a number such as 1e3
        names.add(word)
    return names


def is_known(name, known):
    if name in known:
        return True
    return any(name.endswith(s) and name[: -len(s)] in known for s in HISTOGRAM_SUFFIXES)
