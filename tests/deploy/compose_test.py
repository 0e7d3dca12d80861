#!/usr/bin/env python3
"""Static checks of docker-compose.yml, deploy/docker/Dockerfile and the files they use.

Usage: compose_test.py --root REPO_ROOT

No Docker engine runs here, so the files are parsed and cross-checked:
  - only router and grafana publish ports; the internal `mesh` network has no route
    out and only cloud-proxy joins the `egress` network;
  - every tiermesh service has a restart policy, a read-only root filesystem,
    dropped capabilities, and a healthcheck running `tiermesh-cli health` against
    the gRPC port its --grpc_address names (the ports of scripts/run.sh), and takes
    the common flags (--config, --grpc_address, --metrics_address, --log_level,
    --drain_timeout);
  - secrets are files (top-level `secrets` with `file`), and no environment
    variable that looks like a credential carries a value;
  - every file compose references exists (configs, secrets' defaults, bind mounts,
    build contexts and Dockerfiles), and each build target is a Dockerfile stage;
  - the router gets its backends' addresses from TIERMESH_*_ADDR;
  - prometheus.yml scrapes each service at its compose name and metrics port, and
    llama-server; the OTel collector config is consistent and the services export
    to it; Grafana's datasource points at the compose Prometheus;
  - the Dockerfile has a stage per service, a non-root numeric USER inherited by
    every service stage, a debian:12 builder installing only (and all of the
    library) packages of scripts/bootstrap.sh, a debian:12-slim runtime, and every
    COPY source exists.
Then a self-test mutates the parsed compose file once per rule and asserts each
mutation is reported. Exits non-zero listing every problem.
"""
import argparse
import copy
import os
import re
import sys

import yaml

TIERMESH = {"router": (50050, 9460), "classifier": (50051, 9461), "worker": (50052, 9462),
            "cloud-proxy": (50053, 9463)}
PUBLISHERS = {"router", "grafana"}
COMMON_FLAGS = ["--config", "--grpc_address", "--metrics_address", "--log_level",
                "--drain_timeout"]
CREDENTIAL_WORDS = ("KEY", "TOKEN", "PASSWORD", "SECRET")
# Bind-mount sources the user provides (the GGUF model directory).
USER_PROVIDED = {"./models/gguf"}
DEFAULT_RE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def expand_default(text):
    """${VAR:-default} -> default (what compose uses when VAR is unset)."""
    return DEFAULT_RE.sub(lambda m: m.group(2) or "", text)


def env_map(service):
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return env


def arg_after(command, flag):
    if flag in command:
        i = command.index(flag)
        return str(command[i + 1]) if i + 1 < len(command) else None
    return None


def check_compose(compose, root, dockerfile_stages):
    problems = []
    services = compose.get("services") or {}
    for name in list(TIERMESH) + ["llama-server", "prometheus", "grafana", "jaeger",
                                  "otel-collector"]:
        if name not in services:
            problems.append(f"no service {name}")
    for name, svc in services.items():
        if svc.get("ports") and name not in PUBLISHERS:
            problems.append(f"{name} publishes ports (only {sorted(PUBLISHERS)} may)")
        if not svc.get("restart"):
            problems.append(f"{name}: no restart policy")
        for var, value in env_map(svc).items():
            if any(w in var.upper() for w in CREDENTIAL_WORDS) and value \
                    and not var.upper().endswith("_FILE"):
                problems.append(f"{name}: credential-like environment variable {var} has a value")
        nets = svc.get("networks") or []
        if "egress" in nets and name != "cloud-proxy":
            problems.append(f"{name}: on the egress network (only cloud-proxy may reach out)")
        for vol in svc.get("volumes") or []:
            src = expand_default(vol.split(":")[0]) if isinstance(vol, str) else None
            if src and src.startswith((".", "/")) and src not in USER_PROVIDED \
                    and not os.path.exists(os.path.join(root, src)):
                problems.append(f"{name}: bind mount source {src} does not exist")
        build = svc.get("build")
        if build:
            ctx = os.path.join(root, build.get("context", "."))
            dockerfile = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
            if not os.path.isfile(dockerfile):
                problems.append(f"{name}: Dockerfile {dockerfile} does not exist")
            if build.get("target") not in dockerfile_stages:
                problems.append(f"{name}: build target {build.get('target')} is not a stage")
    nets = compose.get("networks") or {}
    if not (nets.get("mesh") or {}).get("internal"):
        problems.append("network mesh is not internal")
    if "egress" not in (services.get("cloud-proxy", {}).get("networks") or []):
        problems.append("cloud-proxy is not on the egress network")

    for name, (grpc_port, metrics_port) in TIERMESH.items():
        svc = services.get(name)
        if svc is None:
            continue
        command = [str(c) for c in svc.get("command") or []]
        for flag in COMMON_FLAGS:
            if flag not in command:
                problems.append(f"{name}: command lacks {flag}")
        if arg_after(command, "--grpc_address") != f"0.0.0.0:{grpc_port}":
            problems.append(f"{name}: --grpc_address is not 0.0.0.0:{grpc_port}")
        if arg_after(command, "--metrics_address") != f"0.0.0.0:{metrics_port}":
            problems.append(f"{name}: --metrics_address is not 0.0.0.0:{metrics_port}")
        test = [str(t) for t in (svc.get("healthcheck") or {}).get("test") or []]
        if test[:4] != ["CMD", "tiermesh-cli", "health", "--address"] \
                or arg_after(test, "--address") != f"127.0.0.1:{grpc_port}":
            problems.append(f"{name}: healthcheck is not tiermesh-cli health on "
                            f"127.0.0.1:{grpc_port}")
        if not svc.get("read_only"):
            problems.append(f"{name}: root filesystem not read-only")
        if "ALL" not in (svc.get("cap_drop") or []):
            problems.append(f"{name}: capabilities not dropped")
        config_target = arg_after(command, "--config")
        mounted = [c.get("target") for c in svc.get("configs") or []]
        if config_target not in mounted:
            problems.append(f"{name}: --config {config_target} is not a mounted config")
    router_env = env_map(services.get("router", {}))
    for var, host in (("TIERMESH_WORKER_ADDR", "worker:50052"),
                      ("TIERMESH_CLOUD_PROXY_ADDR", "cloud-proxy:50053"),
                      ("TIERMESH_CLASSIFIER_ADDR", "classifier:50051")):
        if router_env.get(var) != host:
            problems.append(f"router: {var} is not {host}")

    for kind in ("configs", "secrets"):
        for key, spec in (compose.get(kind) or {}).items():
            if "file" not in (spec or {}):
                problems.append(f"{kind} {key} is not a file")
                continue
            path = expand_default(spec["file"])
            if not os.path.isfile(os.path.join(root, path)):
                problems.append(f"{kind} {key}: file {path} does not exist")
    for name, svc in services.items():
        for ref in svc.get("configs") or []:
            if ref.get("source") not in (compose.get("configs") or {}):
                problems.append(f"{name}: unknown config {ref.get('source')}")
        for ref in svc.get("secrets") or []:
            source = ref if isinstance(ref, str) else ref.get("source")
            if source not in (compose.get("secrets") or {}):
                problems.append(f"{name}: unknown secret {ref}")
    return problems


def check_observability(compose, root):
    problems = []
    services = compose.get("services") or {}
    with open(os.path.join(root, "deploy/prometheus/prometheus.yml"), encoding="utf-8") as f:
        prom = yaml.safe_load(f)
    targets = {job["job_name"]: [t for sc in job.get("static_configs", []) for t in sc["targets"]]
               for job in prom.get("scrape_configs", [])}
    for name, (_, metrics_port) in TIERMESH.items():
        if targets.get(name) != [f"{name}:{metrics_port}"]:
            problems.append(f"prometheus.yml: job {name} does not scrape {name}:{metrics_port}")
    llama = targets.get("llama-server") or [""]
    if llama[0].split(":")[0] != "llama-server":
        problems.append("prometheus.yml: llama-server is not scraped")
    llama_cmd = [str(c) for c in services.get("llama-server", {}).get("command") or []]
    if "--metrics" not in llama_cmd:
        problems.append("llama-server runs without --metrics")
    elif llama[0] != f"llama-server:{arg_after(llama_cmd, '--port')}":
        problems.append("prometheus.yml: llama-server target port is not its --port")

    with open(os.path.join(root, "deploy/otel/collector.yaml"), encoding="utf-8") as f:
        otel = yaml.safe_load(f)
    for pname, pipe in (otel.get("service", {}).get("pipelines") or {}).items():
        for part in ("receivers", "processors", "exporters"):
            for comp in pipe.get(part, []):
                if comp not in (otel.get(part) or {}):
                    problems.append(f"otel: pipeline {pname} uses undefined {part[:-1]} {comp}")
    http = (otel.get("receivers", {}).get("otlp", {}).get("protocols", {}).get("http") or {})
    http_port = str(http.get("endpoint", "")).rsplit(":", 1)[-1]
    for name in TIERMESH:
        endpoint = env_map(services.get(name, {})).get("OTEL_EXPORTER_OTLP_ENDPOINT", "")
        if endpoint != f"http://otel-collector:{http_port}":
            problems.append(f"{name}: OTEL_EXPORTER_OTLP_ENDPOINT is not the collector's "
                            f"OTLP/HTTP receiver (port {http_port})")
    for ename, exporter in (otel.get("exporters") or {}).items():
        host = str((exporter or {}).get("endpoint", "")).split("://")[-1].split(":")[0]
        if host and host not in services:
            problems.append(f"otel: exporter {ename} sends to {host}, not a compose service")

    with open(os.path.join(root, "deploy/grafana/provisioning/datasources/prometheus.yaml"),
              encoding="utf-8") as f:
        ds = yaml.safe_load(f)
    for d in ds.get("datasources", []):
        host = d.get("url", "").split("://")[-1].split(":")[0]
        if host not in services:
            problems.append(f"grafana datasource {d.get('name')} points at {host}, "
                            "not a compose service")
    return problems


def bootstrap_packages(root):
    text = open(os.path.join(root, "scripts/bootstrap.sh"), encoding="utf-8").read()
    block = re.search(r"PACKAGES=\((.*?)\n\)", text, re.S).group(1)
    words = []
    for line in block.splitlines():
        words += line.split("#", 1)[0].split()
    return set(words)


def check_dockerfile(root):
    problems = []
    path = os.path.join(root, "deploy/docker/Dockerfile")
    text = open(path, encoding="utf-8").read()
    joined = re.sub(r"\\\n", " ", text)
    stages = {}  # name -> (base, lines)
    current = None
    for line in joined.splitlines():
        m = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line.strip(), re.I)
        if m:
            current = m.group(2) or f"stage{len(stages)}"
            stages[current] = (m.group(1), [])
        elif current and line.strip() and not line.strip().startswith("#"):
            stages[current][1].append(line.strip())
    args = dict(re.findall(r"^ARG\s+(\w+)=(\S+)", text, re.M))

    def base_image(stage):
        base = stages[stage][0]
        return args.get(base.strip("${}"), base)

    for svc in TIERMESH:
        if svc not in stages:
            problems.append(f"Dockerfile: no stage (target) {svc}")
    if base_image("build") != "debian:12":
        problems.append("Dockerfile: the builder is not debian:12")
    if base_image("runtime") != "debian:12-slim":
        problems.append("Dockerfile: the runtime is not debian:12-slim")

    def user_of(stage):
        user = None
        while stage in stages:
            users = [ln.split()[1] for ln in stages[stage][1] if ln.startswith("USER ")]
            if users:
                return users[-1]
            stage = stages[stage][0]
        return user

    for svc in TIERMESH:
        if svc in stages:
            user = user_of(svc)
            uid = (user or "").split(":")[0]
            if not uid.isdigit() or int(uid) == 0:
                problems.append(f"Dockerfile: stage {svc} does not run as a numeric non-root USER")
            if not any(ln.startswith("ENTRYPOINT") for ln in stages[svc][1]):
                problems.append(f"Dockerfile: stage {svc} has no ENTRYPOINT")
    builder = " ".join(stages.get("build", ("", []))[1])
    m = re.search(r"apt-get install[^&]*?--no-install-recommends(.*?)(&&|$)", builder)
    installed = set(m.group(1).split()) if m else set()
    bootstrap = bootstrap_packages(root)
    for p in sorted(installed - bootstrap):
        problems.append(f"Dockerfile: builder installs {p}, which scripts/bootstrap.sh does not")
    for p in sorted(p for p in bootstrap if p.endswith("-dev") and p.startswith("lib")
                    and p not in ("libgtest-dev", "libgmock-dev", "libbenchmark-dev",
                                  "libclang-rt-14-dev")):
        if p not in installed:
            problems.append(f"Dockerfile: builder lacks bootstrap library {p}")
    for stage, (_, lines) in stages.items():
        for ln in lines:
            if ln.startswith("COPY") and "--from=" not in ln:
                for src in ln.split()[1:-1]:
                    if not os.path.exists(os.path.join(root, src)):
                        problems.append(f"Dockerfile: COPY source {src} does not exist")
    return problems, set(stages)


def mutations():
    def publish(c):
        c["services"]["classifier"]["ports"] = ["50051:50051"]

    def no_health(c):
        del c["services"]["worker"]["healthcheck"]

    def wrong_health(c):
        c["services"]["router"]["healthcheck"]["test"] = ["CMD", "true"]

    def no_restart(c):
        del c["services"]["cloud-proxy"]["restart"]

    def env_secret(c):
        c["services"]["cloud-proxy"]["environment"]["OPENROUTER_API_KEY"] = "sk-123"

    def secret_not_file(c):
        c["secrets"]["openrouter_api_key"] = {"environment": "OPENROUTER_API_KEY"}

    def missing_file(c):
        c["configs"]["router"]["file"] = "./deploy/config/nope.yaml"

    def router_egress(c):
        c["services"]["router"]["networks"].append("egress")

    def bad_port(c):
        cmd = c["services"]["classifier"]["command"]
        cmd[cmd.index("--grpc_address") + 1] = "0.0.0.0:6000"

    return [("classifier publishes a port", publish), ("worker without healthcheck", no_health),
            ("router healthcheck not tiermesh-cli", wrong_health),
            ("cloud-proxy without restart", no_restart), ("key in env", env_secret),
            ("secret not a file", secret_not_file), ("missing config file", missing_file),
            ("router on egress", router_egress), ("classifier on a wrong port", bad_port)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    args = ap.parse_args()
    root = args.root
    with open(os.path.join(root, "docker-compose.yml"), encoding="utf-8") as f:
        compose = yaml.safe_load(f)
    problems, stages = check_dockerfile(root)
    problems += check_compose(compose, root, stages)
    problems += check_observability(compose, root)
    gpu_path = os.path.join(root, "deploy/docker/compose.gpu.yml")
    with open(gpu_path, encoding="utf-8") as f:
        gpu = yaml.safe_load(f)
    for name in gpu.get("services", {}):
        if name not in compose.get("services", {}):
            problems.append(f"compose.gpu.yml: service {name} is not in docker-compose.yml")
    for p in problems:
        print(f"compose_test: {p}", file=sys.stderr)
    if problems:
        return 1
    for what, mutate in mutations():
        broken = copy.deepcopy(compose)
        mutate(broken)
        if not check_compose(broken, root, stages):
            print(f"compose_test: self-test: mutation '{what}' was not detected", file=sys.stderr)
            return 1
    print(f"compose_test: docker-compose.yml ({len(compose['services'])} services) and the "
          f"Dockerfile ({len(stages)} stages) hold; all {len(mutations())} mutations detected")
    return 0


if __name__ == "__main__":
    sys.exit(main())
