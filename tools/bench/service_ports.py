"""Ports of a tiermesh service started on port 0 (no race for a "free" port), and the first line
of a helper that prints its address (tiermesh-fake-provider's base URL).

    argv += ["--grpc_address", "127.0.0.1:0", "--metrics_address", "127.0.0.1:0",
             "--ports_file", path]
    proc = subprocess.Popen(argv, ...)
    grpc_port, metrics_port = wait_ports(path, proc, log_path)

The service writes {"service", "grpc_port", "metrics_port"} atomically once it listens
(--ports_file, services/common/server/server.h); health may still be NOT_SERVING then.
"""
import json
import os
import time


def wait_ports(path, proc, log_path=None, timeout=60):
    """(grpc_port, metrics_port) from `path`, once the process wrote it. RuntimeError (with the
    end of its log) when it exits first or does not write it within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                ports = json.load(f)
            return ports["grpc_port"], ports["metrics_port"]
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    tail = ""
    if log_path:
        with open(log_path, errors="replace") as f:
            tail = f.read()[-3000:]
    state = f"exited with {proc.returncode}" if proc.poll() is not None else "wrote no ports file"
    raise RuntimeError(f"{os.path.basename(str(proc.args[0]))} {state}:\n{tail}")


def first_line(out, proc, timeout=10):
    """The first line `proc` wrote to `out` (a file opened "w+" as its stdout), stripped.
    RuntimeError when it exits first or writes nothing within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        out.seek(0)
        line = out.readline().strip()
        if line:
            return line
        if proc.poll() is not None or time.monotonic() >= deadline:
            raise RuntimeError(f"{os.path.basename(str(proc.args[0]))} printed nothing")
        time.sleep(0.05)
