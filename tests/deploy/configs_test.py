#!/usr/bin/env python3
"""Starts each service binary with each deployment config to prove the configs load.

Usage: configs_test.py --root REPO_ROOT --router BIN --classifier BIN --worker BIN
                       --cloud-proxy BIN

The configs of docker-compose.yml (deploy/config/) and of the Kubernetes base
(k8s/base/config/) are written for containers, so each is loaded here by the real
binary, with the environment compose/Kubernetes give it, on loopback port 0
until it logs `server started`. A config passes when the service starts, or stops
for a reason that is not its config (the worker exits when its external
llama-server is not there, which is expected here); it fails on
`<service>: error: <config file>: ...`, the services' config error. The k8s
classifier config names the model path inside the image; the copy used here points
at the repo's model instead. A self-test adds an unknown key to each config and
asserts that the binary rejects it.
"""
import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procs import Service  # noqa: E402

TIMEOUT_SECONDS = 40
COMPOSE_ROUTER_ENV = {"TIERMESH_CLASSIFIER_ADDR": "classifier:50051",
                      "TIERMESH_WORKER_ADDR": "worker:50052",
                      "TIERMESH_CLOUD_PROXY_ADDR": "cloud-proxy:50053"}
K8S_ROUTER_ENV = {"TIERMESH_CLASSIFIER_ADDR": "dns:///classifier:50051",
                  "TIERMESH_WORKER_ADDR": "dns:///worker:50052",
                  "TIERMESH_CLOUD_PROXY_ADDR": "dns:///cloud-proxy:50053"}


def cases(root, bins, tmp):
    k8s_classifier = os.path.join(tmp, "k8s-classifier.yaml")
    with open(os.path.join(root, "k8s/base/config/classifier.yaml"), encoding="utf-8") as f:
        text = f.read()
    with open(k8s_classifier, "w", encoding="utf-8") as f:
        f.write(text.replace("/opt/tiermesh/models/", os.path.join(root, "models") + "/"))
    return [
        ("router (compose)", bins["router"], "deploy/config/router.yaml", COMPOSE_ROUTER_ENV),
        ("router (k8s)", bins["router"], "deploy/config/router.yaml", K8S_ROUTER_ENV),
        ("classifier (compose)", bins["classifier"], "deploy/config/classifier.yaml", {}),
        ("classifier (k8s)", bins["classifier"], k8s_classifier, {}),
        ("worker (compose)", bins["worker"], "deploy/config/worker-external.yaml",
         {"TIERMESH_LLAMA_URL": "http://llama-server:8080"}),
        ("worker (k8s)", bins["worker"], "k8s/base/config/worker.yaml", {}),
        ("cloud-proxy (compose)", bins["cloud-proxy"], "deploy/config/cloud-proxy.yaml", {}),
        ("cloud-proxy (k8s)", bins["cloud-proxy"], "k8s/base/config/cloud-proxy.yaml", {}),
    ]


def start(what, binary, config, env, root):
    return Service(what, [binary, "--config", config, "--grpc_address", "127.0.0.1:0",
                          "--metrics_address", "127.0.0.1:0", "--log_level", "info",
                          "--drain_timeout", "1s"], env, root)


def config_error(service, config, deadline):
    """The config error line, or None once the service serves or stops for another reason."""
    name = os.path.basename(config)
    line = service.wait_line(
        lambda ln: (": error: " in ln and name in ln) or '"server started"' in ln, deadline)
    if line is None and service.proc.poll() is None:
        raise RuntimeError(f"{service.name}: neither started nor failed in time: "
                           + "\n".join(service.lines[-5:]))
    return line if line is not None and '"server started"' not in line else None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    for name in ("router", "classifier", "worker", "cloud-proxy"):
        ap.add_argument(f"--{name}", required=True)
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    bins = {"router": args.router, "classifier": args.classifier, "worker": args.worker,
            "cloud-proxy": args.cloud_proxy}
    missing = [b for b in bins.values() if not os.access(b, os.X_OK)]
    if missing:
        print(f"configs_test: error: not built: {', '.join(missing)}", file=sys.stderr)
        return 1
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        all_cases = cases(root, bins, tmp)
        # Every config as given, and (self-test) with an unknown key that must be rejected.
        runs = []
        for what, binary, config, env in all_cases:
            runs.append((what, config, False, start(what, binary, config, env, root)))
            broken = os.path.join(tmp, "broken-" + os.path.basename(config))
            with open(os.path.join(root, config), encoding="utf-8") as f:
                text = f.read()
            with open(broken, "w", encoding="utf-8") as f:
                f.write(text + "\nno_such_key_for_the_test: 1\n")
            runs.append((what, broken, True, start(what, binary, broken, env, root)))
        deadline = time.monotonic() + TIMEOUT_SECONDS
        for what, config, expect_error, service in runs:
            try:
                err = config_error(service, config, deadline)
            except RuntimeError as e:
                print(f"configs_test: {e}", file=sys.stderr)
                failed = True
                continue
            finally:
                service.stop()
            if expect_error and not err:
                print(f"configs_test: self-test: {what} accepted an unknown key", file=sys.stderr)
                failed = True
            elif not expect_error and err:
                print(f"configs_test: {what}: {config} is rejected: {err}", file=sys.stderr)
                failed = True
            elif not expect_error:
                state = "serving" if service.proc.returncode in (0, -15) else \
                    f"exited {service.proc.returncode}, not for its config"
                print(f"configs_test: {what}: {config} loads ({state})")
    if not failed:
        print(f"configs_test: {len(all_cases)} deployment configs load; unknown keys are rejected")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
