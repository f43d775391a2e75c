"""3. Warm per-request latency of findOne by _id (~200 B), and 6. find of 1,000 documents
(~500 B each): the layer's clients through the sidecar against each language's driver in-process.

Each path runs in its own process (node_latency.js, py_latency.py). The paths alternate in rounds
(A B C A B C ...), each round with its own warm-up, so that a burst of load elsewhere on the
machine falls on all of them alike; the samples of a path's rounds are pooled.
"""

import json
import subprocess
import sys
from dataclasses import dataclass

from . import data
from .context import BENCH_SRC, TOKEN, Context, node, node_driver
from .report import Section
from .stats import ratio, summary

ROUNDS = 3
RUN_TIMEOUT_S = 300


@dataclass
class Route:
    key: str
    label: str
    language: str  # "node" or "python"
    spec: dict  # the script's spec, without op, n, warmup


def _run_script(language: str, spec: dict) -> dict:
    if language == "node":
        command = [node(), str(BENCH_SRC / "node_latency.js"), json.dumps(spec)]
    else:
        command = [sys.executable, str(BENCH_SRC / "py_latency.py"), json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    if done.returncode != 0:
        raise RuntimeError(f"{command[1]} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def routes(ctx: Context, sidecar, unix: bool) -> list[Route]:
    """The sidecar paths (TCP, and the Unix socket if `unix`) and the in-process drivers."""
    tcp = {"port": sidecar.port}
    sock = {"socketPath": sidecar.env.get("MONGO_SIDECAR_SOCKET")}
    node_side = {"path": "sidecar", "client": str(ctx.node_client), "token": TOKEN}
    py_side = {"path": "sidecar", "client": str(ctx.python_client), "token": TOKEN}
    found = [Route("node_tcp", "Node client -> sidecar (TCP)", "node", node_side | tcp)]
    if unix:
        found.append(Route("node_unix", "Node client -> sidecar (Unix socket)", "node", node_side | sock))
    found.append(Route("node_driver", "Node mongodb driver in-process", "node", {"path": "driver", "uri": ctx.db.uri}))
    found.append(Route("python_tcp", "Python client -> sidecar (TCP)", "python", py_side | tcp))
    if unix:
        found.append(Route("python_unix", "Python client -> sidecar (Unix socket)", "python", py_side | sock))
    found.append(Route("python_driver", "pymongo in-process", "python", {"path": "pymongo", "uri": ctx.db.uri}))
    return found


def measure(section: Section, found: list[Route], common: dict, n: int, warmup: int) -> dict[str, dict]:
    """Runs every path in ROUNDS alternating rounds; returns each path's pooled summary (µs).
    A path that fails is reported and left out; the others go on."""
    if any(p.spec.get("path") == "driver" for p in found):
        try:
            mongodb = str(node_driver())
        except Exception as e:  # noqa: BLE001 - no driver (no npm, no network): the rest still runs
            section.error("Node mongodb driver", e)
            found = [p for p in found if p.spec.get("path") != "driver"]
        else:
            for p in found:
                if p.spec.get("path") == "driver":
                    p.spec["mongodb"] = mongodb
    samples: dict[str, list[float]] = {p.key: [] for p in found}
    extra: dict[str, dict] = {}
    failed: set[str] = set()
    per_round = max(1, n // ROUNDS)
    for _ in range(ROUNDS):
        for p in found:
            if p.key in failed:
                continue
            try:
                out = _run_script(p.language, p.spec | common | {"n": per_round, "warmup": warmup})
            except Exception as e:  # noqa: BLE001
                section.error(p.label, e)
                failed.add(p.key)
                continue
            samples[p.key] += out.pop("samples")
            extra[p.key] = {k: v for k, v in out.items() if k.endswith("Bytes")}
    return {p.key: summary(samples[p.key]) | extra.get(p.key, {}) | {"label": p.label}
            for p in found if p.key not in failed}


def _report_ratios(section: Section, results: dict, pairs: list[tuple[str, str, str]], unit: str, scale: float):
    for label, sidecar_key, driver_key in pairs:
        if sidecar_key in results and driver_key in results:
            a, b = results[sidecar_key]["p50"], results[driver_key]["p50"]
            section.add(label, ratio(a, b), "x", note=f"{(a - b) * scale:+.0f} {unit} over the driver")


def run_findone(ctx: Context, section: Section) -> None:
    w = ctx.workload
    with ctx.sidecar() as sidecar:
        found = routes(ctx, sidecar, unix=True)
        common = {"op": "findOne", "db": data.DATABASE, "collection": data.SMALL, "id": ctx.small_id}
        results = measure(section, found, common, w.latency_requests, w.latency_warmup)
    for key, s in results.items():
        section.add(f"{s['label']}, p50", s["p50"], "µs", note=f"p99 {s['p99']:.0f} µs, n={s['n']}")
    _report_ratios(section, results, [
        ("ratio Node sidecar TCP / Node driver (p50)", "node_tcp", "node_driver"),
        ("ratio Node sidecar Unix / Node driver (p50)", "node_unix", "node_driver"),
        ("ratio Python sidecar TCP / pymongo (p50)", "python_tcp", "python_driver"),
        ("ratio Python sidecar Unix / pymongo (p50)", "python_unix", "python_driver"),
    ], "µs", 1)
    section.details.update(paths=results, document_bson_bytes=data.bson_size(data.SMALL_BYTES),
                           note="baseline prototype: Node +165-190 µs over the driver (TCP), +110-150 µs (Unix)")


def run_large(ctx: Context, section: Section) -> None:
    w = ctx.workload
    with ctx.sidecar(unix_socket=False) as sidecar:
        found = routes(ctx, sidecar, unix=False)
        common = {"op": "find", "db": data.DATABASE, "collection": data.LARGE, "expect": data.LARGE_COUNT}
        results = measure(section, found, common, w.large_iterations, warmup=3)
    for key, s in results.items():
        section.add(f"{s['label']}, p50", s["p50"] / 1000, "ms", note=f"p99 {s['p99'] / 1000:.1f} ms, n={s['n']}")
    _report_ratios(section, results, [
        ("ratio Node sidecar / Node driver (p50; < 1: sidecar faster)", "node_tcp", "node_driver"),
        ("ratio Python sidecar / pymongo (p50; < 1: sidecar faster)", "python_tcp", "python_driver"),
    ], "ms", 1 / 1000)
    section.details.update(paths=results, documents=data.LARGE_COUNT,
                           document_bson_bytes=data.bson_size(data.LARGE_BYTES))
