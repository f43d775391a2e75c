"""Helpers for the fault suites: timed requests, JSON answers, and waiting for a condition."""

import json
import threading
import time


def action(sidecar, name: str, body: dict, timeout: float = 30.0, headers: dict | None = None):
    """POST /action/NAME; returns (status, headers, JSON body or None, elapsed seconds)."""
    started = time.perf_counter()
    status, answer_headers, raw = sidecar.request("POST", f"/action/{name}", body, headers=headers,
                                                  timeout=timeout)
    elapsed = time.perf_counter() - started
    return status, answer_headers, json.loads(raw) if raw else None, elapsed


def health(sidecar, timeout: float = 5.0):
    """GET /health; returns (status, JSON body, elapsed seconds)."""
    started = time.perf_counter()
    status, _, raw = sidecar.request("GET", "/health", timeout=timeout)
    return status, json.loads(raw), time.perf_counter() - started


def wait_until(condition, timeout: float, interval: float = 0.05, what: str = "the condition"):
    """Polls `condition()` until it returns something truthy; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(interval)


def in_background(function, *args, **kwargs) -> tuple[threading.Thread, dict]:
    """Runs function(*args) in a thread; the dict gets "result" or "error" when it ends."""
    outcome: dict = {}

    def run():
        try:
            outcome["result"] = function(*args, **kwargs)
        except BaseException as e:  # noqa: BLE001 - handed to the test
            outcome["error"] = e

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome
