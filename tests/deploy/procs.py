"""A service process for the deploy tests: output collected by a thread, waits bounded."""
import json
import os
import subprocess
import threading
import time


class Service:
    """A process whose output lines are collected as they come."""

    def __init__(self, name, argv, env, cwd):
        self.name, self.lines = name, []
        self.proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env},
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, predicate, deadline):
        """The first line for which predicate holds, or None once the process has exited
        (all its output read) or the deadline has passed."""
        while True:
            for line in list(self.lines):
                if predicate(line):
                    return line
            if time.monotonic() >= deadline:
                return None
            if self.proc.poll() is not None and not self._reader.is_alive():
                return None
            time.sleep(0.05)

    def first_line(self, deadline):
        line = self.wait_line(lambda _: True, deadline)
        if line is None:
            raise RuntimeError(f"{self.name} printed nothing")
        return line

    def port(self, deadline):
        """The gRPC port from the service's `server started` log line."""
        line = self.wait_line(lambda ln: '"server started"' in ln, deadline)
        if line is None:
            raise RuntimeError(f"{self.name} did not start: " + "\n".join(self.lines[-5:]))
        return json.loads(line)["port"]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
