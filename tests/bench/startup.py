"""2. Start-up in standalone mode: exec -> the port accepts connections, and exec -> /health
answers 200 (connected to the database). Also SIGTERM -> exit (the drain, with nothing in flight).

The harness' Sidecar polls every 20 ms, too coarse here: this polls every 0.2 ms.
"""

import http.client
import json
import os
import signal
import socket
import subprocess
import time

from harness.procs import free_port

from .context import TOKEN, Context
from .report import Section
from .stats import summary

WARMUPS = 2
POLL_S = 0.0002
TIMEOUT_S = 15.0


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def _health_ready(port: int) -> bool:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    try:
        conn.request("GET", "/health")
        response = conn.getresponse()
        body = response.read()
        return response.status == 200 and json.loads(body).get("status") == "ready"
    except (OSError, ValueError):
        return False
    finally:
        conn.close()


def one_start(ctx: Context) -> tuple[float, float, float]:
    """(exec -> listening, exec -> /health 200, SIGTERM -> exit), in ms."""
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MONGODB_URI": ctx.db.uri,
           "MONGO_SIDECAR_PORT": str(port), "MONGO_SIDECAR_TOKEN": TOKEN, "AWS_LAMBDA_LOG_LEVEL": "info"}
    started = time.perf_counter()
    proc = subprocess.Popen([str(ctx.binary)], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = started + TIMEOUT_S
        while not _port_open(port):
            if proc.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError(f"sidecar did not listen (exit code {proc.poll()})")
            time.sleep(POLL_S)
        listening = time.perf_counter()
        while not _health_ready(port):
            if proc.poll() is not None or time.perf_counter() > deadline:
                raise RuntimeError(f"sidecar never answered /health 200 (exit code {proc.poll()})")
            time.sleep(POLL_S)
        ready = time.perf_counter()
        proc.send_signal(signal.SIGTERM)
        proc.wait(TIMEOUT_S)
        exited = time.perf_counter()
        if proc.returncode != 0:
            raise RuntimeError(f"sidecar exited with {proc.returncode} after SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return (listening - started) * 1000, (ready - started) * 1000, (exited - ready) * 1000


def run(ctx: Context, section: Section) -> None:
    runs = [one_start(ctx) for _ in range(WARMUPS + ctx.workload.startup_runs)][WARMUPS:]
    listening, ready, stop = (summary([r[i] for r in runs]) for i in range(3))
    n = f"median of {len(runs)}"
    section.add("exec -> port accepting connections", listening["p50"], "ms", note=n)
    section.add("exec -> /health 200 (connected)", ready["p50"], "ms",
                note=f"{n}; baseline prototype 6-9 ms, axum echo 3-6 ms")
    section.add("SIGTERM -> exit (idle drain)", stop["p50"], "ms", note=n)
    section.details.update(listening_ms=listening, ready_ms=ready, sigterm_exit_ms=stop)
