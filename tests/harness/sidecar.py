"""The extension binary in standalone mode: a plain localhost sidecar process for API tests.

    with Sidecar(uri=db.uri, env={"MONGO_SIDECAR_TOKEN": "t"}) as sc:
        status, headers, body = sc.request("POST", "/action/findOne", {...}, token="t")

Standalone mode is the same binary without AWS_LAMBDA_RUNTIME_API; SIGTERM drains and exits.

`resolv_conf=PATH` runs it (as root) in a private mount namespace where PATH is /etc/resolv.conf, so
a test decides which DNS server it asks, or that none answers.
"""

import http.client
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from . import HarnessError, sidecar_binary
from .procs import die_with_parent, free_port, terminate


class Sidecar:
    """One sidecar process on a free loopback port; its stderr (the log) goes to a file."""

    def __init__(self, uri: str | None, env: dict[str, str] | None = None, start_timeout: float = 15.0,
                 wait_ready: bool = True, resolv_conf: str | os.PathLike | None = None):
        self.binary = sidecar_binary()
        self.port = free_port()
        self._tmp = Path(tempfile.mkdtemp(prefix="mongo-sidecar-standalone-"))
        self.log_path = self._tmp / "sidecar.log"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "MONGO_SIDECAR_PORT": str(self.port),
            "AWS_LAMBDA_LOG_LEVEL": "debug",
        }
        if uri is not None:
            self.env["MONGODB_URI"] = uri
        self.env.update(env or {})
        self.start_timeout = start_timeout
        self.wait_ready = wait_ready
        self.resolv_conf = resolv_conf
        self.proc: subprocess.Popen | None = None
        self.exit_code: int | None = None
        self._log: str | None = None  # the log's text, once stopped

    def start(self) -> "Sidecar":
        command = [str(self.binary)]
        if self.resolv_conf is not None:
            if os.geteuid() != 0:
                raise HarnessError("a private /etc/resolv.conf needs root (unshare -m)")
            # unshare and sh exec in turn, so the pid is the sidecar's own.
            script = 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"'
            command = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                       str(self.resolv_conf), *command]
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(command, env=self.env, stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL, preexec_fn=die_with_parent)
        log.close()
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.proc.poll() is not None:
                self.stop()
                raise HarnessError(f"sidecar exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                status, _, _ = self.request("GET", "/health")
                if status == 200 or not self.wait_ready:
                    return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise HarnessError(f"sidecar not ready after {self.start_timeout} s:\n{self.log_text()}")
            time.sleep(0.02)

    def request(self, method: str, path: str, body=None, token: str | None = None,
                headers: dict[str, str] | None = None, timeout: float = 30.0):
        """One request on a fresh connection: (status, headers as a lowercase dict, body bytes)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            sent = dict(headers or {})
            if body is not None and not isinstance(body, (bytes, str)):
                body = json.dumps(body)
                sent.setdefault("Content-Type", "application/json")
            if token is not None:
                sent["apiKey"] = token
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def action(self, name: str, body: dict, token: str | None = None, headers=None):
        """POST /action/NAME; returns (status, parsed JSON body)."""
        status, _, raw = self.request("POST", f"/action/{name}", body, token=token, headers=headers)
        return status, json.loads(raw) if raw else None

    def log_text(self) -> str:
        if self._log is not None:
            return self._log
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def pid(self) -> int:
        if self.proc is None:
            raise HarnessError("sidecar not started")
        return self.proc.pid

    def stop(self, timeout: float = 5.0) -> int:
        """SIGTERM (the drain), then SIGKILL after `timeout`; returns the exit code.

        The log stays readable through log_text(); the temporary directory is removed.
        """
        if self.proc is not None and self.exit_code is None:
            self.exit_code = terminate(self.proc, timeout)
        if self._log is None:
            self._log = self.log_text()
            shutil.rmtree(self._tmp, ignore_errors=True)
        return self.exit_code if self.exit_code is not None else -1

    def __enter__(self) -> "Sidecar":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
