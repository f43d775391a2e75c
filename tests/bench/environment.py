"""3. What the whole execution environment pays per operation: the handler's process plus the
sidecar, against the in-process driver. In Lambda the handler and the extension share the CPU the
function's memory buys, so the sum is the figure that matters.

Each path is one long-lived handler process (node_worker.js, py_worker.py): the layer's thin
client through one standalone sidecar, or the language's driver in-process. For every scenario
the paths take turns in rounds (A B C D A B C D ...), each turn after its own short warm-up, so
that a burst of load elsewhere falls on all of them alike. Around each turn the benchmark reads
utime + stime of the handler's process and of the sidecar from /proc/PID/stat; the handler
times each operation itself.
"""

import json
import select
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field

from harness.node_driver import node_driver

from . import data
from .context import BENCH_SRC, TOKEN, Context, node
from .proc import cpu_seconds
from .report import Goal, Section
from .stats import median, ratio

WORKER_TIMEOUT_S = 300
WRITES = "writes"  # insertOne's collection, emptied at the start


@dataclass
class Path:
    key: str
    label: str
    language: str  # "node" or "python"
    via_sidecar: bool
    spec: dict


@dataclass
class Scenario:
    key: str  # the worker's op
    label: str
    requests: int  # per path and round
    warmup: int  # per path and round
    unix: bool  # also the thin clients over the Unix socket


@dataclass
class Turn:
    """One path's share of one round: n operations, their latencies (µs), the CPU seconds spent."""

    n: int
    samples: list[float]
    handler_s: float
    sidecar_s: float

    def figures(self) -> dict:
        return {"p50": median(self.samples), "handler": self.handler_s / self.n * 1e6,
                "sidecar": self.sidecar_s / self.n * 1e6}


@dataclass
class PathResult:
    turns: list[Turn] = field(default_factory=list)

    def pooled(self, via_sidecar: bool) -> dict:
        """Over all rounds: p50 of every sample, CPU per operation (µs), and each round's range."""
        n = sum(t.n for t in self.turns)
        handler = sum(t.handler_s for t in self.turns) / n * 1e6
        sidecar = sum(t.sidecar_s for t in self.turns) / n * 1e6 if via_sidecar else 0.0
        rounds = [t.figures() for t in self.turns]
        for r in rounds:
            r["environment"] = r["handler"] + (r["sidecar"] if via_sidecar else 0.0)
        return {"n": n, "p50": median([s for t in self.turns for s in t.samples]), "handler": handler,
                "sidecar": sidecar if via_sidecar else None, "environment": handler + sidecar, "rounds": rounds}


class Worker:
    """A handler process speaking the workers' line protocol (see node_worker.js)."""

    def __init__(self, path: Path):
        self.path = path
        script = "node_worker.js" if path.language == "node" else "py_worker.py"
        interpreter = node() if path.language == "node" else sys.executable
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([interpreter, str(BENCH_SRC / script), json.dumps(path.spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, bufsize=1)
        self._expect("ready")

    def _send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def _expect(self, key: str):
        ready, _, _ = select.select([self.proc.stdout], [], [], WORKER_TIMEOUT_S)
        line = self.proc.stdout.readline() if ready else ""
        message = json.loads(line) if line.strip() else {}
        if key not in message:
            self._stderr.seek(0)
            error = self._stderr.read().decode(errors="replace").strip()[-800:]
            raise RuntimeError(f"{self.path.label}: no {key!r} from the worker "
                               f"({'exit code ' + str(self.proc.poll()) if ready else 'timed out'}): {error}")
        return message[key]

    def turn(self, scenario: Scenario, sidecar_pid: int) -> Turn:
        self._send(json.dumps({"op": scenario.key, "n": scenario.requests, "warmup": scenario.warmup}))
        self._expect("warm")
        handler_before, sidecar_before = cpu_seconds(self.proc.pid), cpu_seconds(sidecar_pid)
        self._send("go")
        self._expect("done")
        handler_after, sidecar_after = cpu_seconds(self.proc.pid), cpu_seconds(sidecar_pid)
        self._send("report")
        samples = self._expect("samples")
        return Turn(scenario.requests, samples, handler_after - handler_before, sidecar_after - sidecar_before)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()


def paths(ctx: Context, sidecar) -> list[Path]:
    """Per language: the driver in-process, the thin client over TCP and over the Unix socket."""
    common = {"db": data.DATABASE, "small": data.SMALL, "large": data.LARGE, "writes": WRITES,
              "sku": ctx.small_sku, "expect": data.LARGE_COUNT}
    tcp = {"port": sidecar.port}
    unix = {"socketPath": sidecar.env["MONGO_SIDECAR_SOCKET"]}
    node_client = common | {"path": "client", "client": str(ctx.node_client), "token": TOKEN}
    py_client = common | {"path": "client", "client": str(ctx.python_client), "token": TOKEN}
    driver = common | {"path": "driver", "uri": ctx.db.uri}
    return [
        Path("node_driver", "Node mongodb driver", "node", False, driver),
        Path("node_tcp", "Node client + sidecar", "node", True, node_client | tcp),
        Path("node_unix", "Node client + sidecar (Unix socket)", "node", True, node_client | unix),
        Path("python_driver", "pymongo", "python", False, driver),
        Path("python_tcp", "Python client + sidecar", "python", True, py_client | tcp),
        Path("python_unix", "Python client + sidecar (Unix socket)", "python", True, py_client | unix),
    ]


def scenarios(ctx: Context) -> list[Scenario]:
    w = ctx.workload
    return [
        Scenario("findOne", "findOne by a field (~200 B)", w.findone_requests, w.findone_warmup, unix=True),
        Scenario("find", f"find of {data.LARGE_COUNT:,} documents (~500 B)", w.find_requests, w.find_warmup,
                 unix=False),
        Scenario("insertOne", "insertOne (~150 B)", w.write_requests, w.write_warmup, unix=False),
        Scenario("updateOne", "updateOne by a field ($inc)", w.write_requests, w.write_warmup, unix=False),
    ]


def start_workers(section: Section, found: list[Path]) -> dict[str, Worker]:
    """A worker per path; a path whose worker cannot start is reported and left out."""
    workers = {}
    for path in found:
        try:
            if path.language == "node" and not path.via_sidecar:
                path.spec["mongodb"] = str(node_driver())
            workers[path.key] = Worker(path)
        except Exception as e:  # noqa: BLE001 - no driver (no npm...): the other paths still run
            section.error(path.label, e)
    return workers


def measure(ctx: Context, section: Section) -> dict[str, dict[str, dict]]:
    """{scenario: {path: pooled figures}} for every scenario, the paths interleaved in rounds."""
    ctx.mongo[data.DATABASE][WRITES].drop()
    results: dict[str, dict[str, dict]] = {}
    with ctx.sidecar() as sidecar:
        found = paths(ctx, sidecar)
        workers = start_workers(section, found)
        try:
            for scenario in scenarios(ctx):
                taking_part = [p for p in found if p.key in workers and (scenario.unix or not p.key.endswith("_unix"))]
                per_path = {p.key: PathResult() for p in taking_part}
                for _ in range(ctx.workload.rounds):
                    for path in taking_part:
                        if path.key in workers:
                            try:
                                per_path[path.key].turns.append(workers[path.key].turn(scenario, sidecar.pid()))
                            except Exception as e:  # noqa: BLE001 - a broken path: report it, go on
                                section.error(f"{scenario.key}, {path.label}", e)
                                workers.pop(path.key).close()
                results[scenario.key] = {p.key: per_path[p.key].pooled(p.via_sidecar) | {"label": p.label}
                                         for p in taking_part if per_path[p.key].turns}
        finally:
            for worker in workers.values():
                worker.close()
    return results


def _range(rounds: list[dict], key: str, scale: float) -> str:
    values = [r[key] * scale for r in rounds]
    low, high = min(values), max(values)
    text = f"{low:,.0f}" if scale == 1 else f"{low:.1f}"
    return text if round(low, 1) == round(high, 1) else text + "–" + (f"{high:,.0f}" if scale == 1 else f"{high:.1f}")


def comparison_table(scenario: Scenario, results: dict[str, dict]) -> list[str]:
    """The issue's table for one scenario, in Markdown: each figure as its range over the rounds."""
    unit, scale = ("ms", 1e-3) if scenario.key == "find" else ("µs", 1)
    columns = [k for k in ("node_driver", "node_tcp", "node_unix", "python_driver", "python_tcp", "python_unix")
               if k in results]
    lines = [f"| {scenario.label} | " + " | ".join(results[k]["label"] for k in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for key, name in (("p50", "p50"), ("handler", "handler CPU"), ("sidecar", "sidecar CPU"),
                      ("environment", "**environment CPU**")):
        cells = []
        for k in columns:
            r = results[k]
            if key == "sidecar" and r["sidecar"] is None:
                cells.append("—")
                continue
            cell = f"{_range(r['rounds'], key, scale)} {unit}"
            driver = results.get(k.split("_")[0] + "_driver")
            if key in ("p50", "environment") and r["sidecar"] is not None and driver:
                if key == "p50":
                    cell += f" ({(r['p50'] - driver['p50']) * scale:+,.{0 if scale == 1 else 1}f} {unit})"
                else:
                    # None when the driver's turns spent less than a clock tick (a smoke run).
                    times = ratio(r["environment"], driver["environment"])
                    cell += f" ({times:.2f}×)" if times is not None else " (n/a)"
            cells.append(f"**{cell}**" if key == "environment" else cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


# Goals of issue 14, per scenario: (figure, limit, strict "<" instead of "≤").
CPU_RATIO_GOALS = {
    "findOne": {"node": 0.8, "python": 1.0},
    "find": {"node": (1.0, True), "python": (1.0, True)},
    "insertOne": {"node": 0.8, "python": 0.8},
    "updateOne": {"node": 0.8, "python": 0.8},
}
ADDED_P50_GOAL_US = 80.0
FIND_P50_RATIO_GOAL = 1.0  # strictly below


def _goal(spec) -> Goal:
    limit, strict = spec if isinstance(spec, tuple) else (spec, False)
    return Goal(limit, strict=strict)


def run(ctx: Context, section: Section) -> None:
    results = measure(ctx, section)
    tables = {}
    for scenario in scenarios(ctx):
        found = results.get(scenario.key, {})
        if not found:
            continue
        tables[scenario.key] = comparison_table(scenario, found)
        print("\n  " + "\n  ".join(tables[scenario.key]) + "\n")
        for language, name in (("node", "Node.js"), ("python", "Python")):
            driver, sidecar = found.get(f"{language}_driver"), found.get(f"{language}_tcp")
            if not driver or not sidecar:
                section.error(f"{scenario.key}, {name}", "no figure for the driver or the client to compare")
                continue
            note = (f"{sidecar['environment']:,.0f} µs ({sidecar['handler']:,.0f} handler + {sidecar['sidecar']:,.0f} "
                    f"sidecar) against {driver['environment']:,.0f} µs; n={sidecar['n']:,}")
            section.add(f"{scenario.key}: environment CPU, {name} client + sidecar / driver",
                        ratio(sidecar["environment"], driver["environment"]), "×",
                        _goal(CPU_RATIO_GOALS[scenario.key][language]), note=note)
            if scenario.key == "findOne":
                section.add(f"findOne: added p50, {name} client + sidecar over the driver",
                            sidecar["p50"] - driver["p50"], "µs", Goal(ADDED_P50_GOAL_US),
                            note=f"p50 {sidecar['p50']:,.0f} µs against {driver['p50']:,.0f} µs")
                unix = found.get(f"{language}_unix")
                if unix:
                    section.add(f"findOne: environment CPU, {name} client + sidecar over the Unix socket / driver",
                                ratio(unix["environment"], driver["environment"]), "×",
                                note=f"p50 {unix['p50'] - driver['p50']:+,.0f} µs over the driver")
            if scenario.key == "find":
                section.add(f"find: p50, {name} client + sidecar / driver", ratio(sidecar["p50"], driver["p50"]),
                            "×", Goal(FIND_P50_RATIO_GOAL, strict=True),
                            note=f"{sidecar['p50'] / 1000:.1f} ms against {driver['p50'] / 1000:.1f} ms")
    section.details.update(scenarios=results, tables=tables, rounds=ctx.workload.rounds,
                           document_bson_bytes={"small": data.bson_size(data.SMALL_BYTES),
                                                "large": data.bson_size(data.LARGE_BYTES)})
