"""A fleet of Lambda execution environments on one server: connection counts seen by the server.

N environments, each its own emulator, runtime, function and (for the sidecar) extension, in its
own mount namespace, share one FerretDB. The same function runs with one of two data paths:

- `sidecar`: the layer's client; the extension holds the environment's connections;
- `driver`: the MongoDB Node.js driver in-process, one client made outside the handler, at its
  defaults (MongoDB's advice for Lambda).

Each fleet goes through: a first (cold) invocation everywhere; at rest; a load where every
environment is invoked concurrently with the others, alternating an API request (a read then a
write) and an SQS batch of 10 records (all at once, each a read then a write); after the load; a rest
of REST_SECONDS (longer than the sidecar's maxIdleTimeMS of 60 s); SHUTDOWN of every environment
at once. Connections are counted from the server's side (FerretDB's own sockets on its port in
/proc), and from each environment's side to check that they add up.

    python -m reliability.fleet --environments 100 --out .tools/reliability/fleet.json

Both data paths run at once by default, each fleet on its own FerretDB (--one-at-a-time runs them
in turn, for half the memory). The JSON feeds `python -m reliability.model`.
"""

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from pymongo import MongoClient

from harness import TOOLS_DIR
from harness.ferretdb import FerretDB
from harness.lambda_env import ExecutionEnvironment
from harness.layer import layer_dir
from harness.netstat import established_on, established_to
from harness.node_driver import node_modules
from harness.procs import exit_on_sigterm

FUNCTION_DIR = Path(__file__).resolve().parent / "functions" / "fleet"
DATA_PATHS = ("sidecar", "driver")
DATABASE = "fleet"
SKUS = 50
#: Longer than the sidecar's maxIdleTimeMS (60 s) plus its pool's maintenance tick.
REST_SECONDS = 65.0
#: How long the server may take to drop every connection after SHUTDOWN before it is a failure
#: (Lambda's own shutdown deadline: past it, the processes are killed anyway).
SHUTDOWN_BOUND_MS = 2000.0
DEFAULT_OUT = TOOLS_DIR / "reliability" / "fleet.json"
#: A hundred environments start and run on two shared cores, where Lambda gives each its own: the
#: function's timeout is set far above what an invocation needs, so that only a real failure fails.
FUNCTION_TIMEOUT_S = 300


@dataclass
class Workload:
    environments: int = 20
    invocations: int = 10  # per environment during the load, after the first (cold) one
    batch_size: int = 10  # SQS records per batch invocation, processed at once
    rest_seconds: float = REST_SECONDS


def api_event(n: int) -> dict:
    return {"sku": f"sku-{n % SKUS}", "qty": 1}


def sqs_event(n: int, batch_size: int) -> dict:
    records = [{"messageId": str(uuid.uuid4()), "eventSource": "aws:sqs",
                "body": json.dumps({"sku": f"sku-{(n + i) % SKUS}", "qty": 1})}
               for i in range(batch_size)]
    return {"Records": records}


def succeeded(event: dict, result) -> bool:
    """The function answered, and found every item it was asked for."""
    body = result.body
    if result.status != 200 or not isinstance(body, dict) or result.function_error:
        return False
    if "Records" in event:
        return body.get("processed") == len(event["Records"])
    return body.get("statusCode") == 201


class ServerConnections:
    """The server's established connections on its port, read from its own sockets in /proc."""

    def __init__(self, db: FerretDB):
        self.db = db
        self.peak = 0

    def count(self) -> int:
        return established_on(self.db.pid, self.db.port)

    @contextmanager
    def sampled(self):
        """Samples the count every 20 ms while the block runs; `peak` is then the highest seen."""
        self.peak = self.count()
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                self.peak = max(self.peak, self.count())
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield
        finally:
            done.set()
            sampler.join()


class Fleet:
    """N started environments of one data path, on one server."""

    def __init__(self, data_path: str, workload: Workload, db: FerretDB, opt: Path):
        self.data_path = data_path
        self.workload = workload
        self.db = db
        env = {"MONGODB_URI": db.uri, "MONGODB_DATABASE": DATABASE}
        self.envs = [
            ExecutionEnvironment("node", FUNCTION_DIR, env=env, layer_dir=opt, handler=f"{data_path}.handler",
                                 name=f"fleet-{data_path}-{i}", with_extension=data_path == "sidecar",
                                 timeout_s=FUNCTION_TIMEOUT_S)
            for i in range(workload.environments)
        ]

    def start(self) -> None:
        for fn in self.envs:
            fn.start()

    def invoke_everywhere(self, events_of: Callable[[int], list[dict]]) -> tuple[int, list]:
        """Every environment runs its own events, one after the other, all environments at
        once; returns (invocations, failures)."""

        def run(index: int) -> tuple[int, list]:
            fn = self.envs[index]
            failures = []
            events = events_of(index)
            for event in events:
                result = fn.invoke(event, timeout=FUNCTION_TIMEOUT_S + 30)
                if not succeeded(event, result):
                    failures.append({"environment": index, "answer": result.body})
            return len(events), failures

        with ThreadPoolExecutor(len(self.envs)) as pool:
            outcomes = list(pool.map(run, range(len(self.envs))))
        return sum(n for n, _ in outcomes), [f for _, fs in outcomes for f in fs]

    def per_environment(self) -> list[int]:
        """Each environment's connections to the server, counted from its own processes."""
        return [sum(established_to(pid, self.db.port) for pid in fn.pids()) for fn in self.envs]

    def settled_counts(self, server: ServerConnections, tries: int = 20) -> tuple[int, list[int]]:
        """(the server's count, each environment's count), read while the server's count stays
        the same and both sides agree, so that a connection opening or closing between the reads
        does not count: a client's socket is ESTABLISHED as soon as the kernel completes the
        handshake, the server's only once it has accepted it, which a loaded server does late.
        After `tries` readings 0.1 s apart, the last stable reading, agreeing or not."""
        stable = None
        for _ in range(tries):
            before = server.count()
            each = self.per_environment()
            if server.count() == before:
                stable = (before, each)
                if sum(each) == before:
                    break
            time.sleep(0.1)
        return stable or (server.count(), self.per_environment())

    def stop_all(self, server: ServerConnections) -> dict:
        """SIGTERM (SHUTDOWN) to every environment at once; how long after the last SIGTERM the
        server holds none of their connections."""
        with ThreadPoolExecutor(len(self.envs)) as pool:
            stopping = [pool.submit(fn.stop) for fn in self.envs]
            deadline = time.perf_counter() + 30
            zero_at = None
            while time.perf_counter() < deadline:
                if server.count() == 0:
                    zero_at = time.perf_counter()
                    break
                time.sleep(0.002)
            results = [s.result() for s in stopping]
        last_sigterm = max(r.sigterm_at for r in results)
        exits = [r.extension_exit_ms for r in results if r.extension_exit_ms is not None]
        return {
            # Never below 0: the last environment's connections stay until its own SIGTERM.
            "server_zero_after_last_sigterm_ms": None if zero_at is None else (zero_at - last_sigterm) * 1000,
            "sigterms_spread_ms": (last_sigterm - min(r.sigterm_at for r in results)) * 1000,
            "extensions_exited_by_themselves": sum(r.extension_exited_by_itself for r in results),
            "extensions_killed": sum(r.extension_killed for r in results),
            "extension_exit_ms_max": max(exits) if exits else None,
        }

    def close(self) -> None:
        for fn in self.envs:
            fn.close()


def _distribution(counts: list[int]) -> dict:
    return {"min": min(counts), "median": statistics.median(counts), "max": max(counts), "sum": sum(counts)}


def log_line(line: str) -> None:
    print(line, flush=True)


def run_fleet(data_path: str, workload: Workload, opt: Path, log=log_line) -> dict:
    """One fleet of one data path through every phase, on a FerretDB of its own."""
    n = workload.environments
    with FerretDB() as db:
        with MongoClient(db.uri, directConnection=True) as mongo:
            mongo[DATABASE]["stock"].insert_many([{"_id": f"sku-{i}", "price": i} for i in range(SKUS)])
        server = ServerConnections(db)
        fleet = Fleet(data_path, workload, db, opt)
        try:
            fleet.start()
            log(f"[{data_path}] {n} environments started; first invocations (cold starts)")
            cold_started = time.perf_counter()
            cold_count, cold_failures = fleet.invoke_everywhere(lambda i: [api_event(i)])
            cold_s = time.perf_counter() - cold_started
            time.sleep(1.0)
            at_rest, at_rest_each = fleet.settled_counts(server)
            log(f"[{data_path}] at rest: server holds {at_rest}; per environment {_distribution(at_rest_each)}")

            def load_events(index: int) -> list[dict]:
                return [sqs_event(index + k, workload.batch_size) if k % 2 == 0 else api_event(index + k)
                        for k in range(workload.invocations)]

            load_started = time.perf_counter()
            with server.sampled():
                load_count, load_failures = fleet.invoke_everywhere(load_events)
            load_s = time.perf_counter() - load_started
            after_load, after_load_each = fleet.settled_counts(server)
            for failure in (cold_failures + load_failures)[:3]:
                log(f"[{data_path}] failed: {json.dumps(failure)[:600]}")
            log(f"[{data_path}] load: {load_count} invocations in {load_s:.1f} s, {len(load_failures)} failed; "
                f"server peak {server.peak}, after {after_load}; per environment {_distribution(after_load_each)}")

            rest_started = time.perf_counter()
            back_to_rest_s = None
            while time.perf_counter() - rest_started < workload.rest_seconds:
                if back_to_rest_s is None and server.count() <= at_rest:
                    back_to_rest_s = time.perf_counter() - rest_started
                time.sleep(0.5)
            after_rest, after_rest_each = fleet.settled_counts(server)
            back = "never" if back_to_rest_s is None else f"after {back_to_rest_s:.1f} s"
            log(f"[{data_path}] after {workload.rest_seconds:.0f} s of rest: server holds {after_rest} "
                f"(back to the at-rest count: {back})")

            shutdown = fleet.stop_all(server)
            log(f"[{data_path}] SHUTDOWN of all {n} (SIGTERMs over {shutdown['sigterms_spread_ms']:.0f} ms): the "
                f"server held none of their connections {shutdown['server_zero_after_last_sigterm_ms']} ms after the last")
        finally:
            fleet.close()
    return {
        "data_path": data_path,
        "environments": n,
        "invocations": cold_count + load_count,
        "failures": cold_failures + load_failures,
        "cold_invocations_s": round(cold_s, 1),
        "load_s": round(load_s, 1),
        "server": {
            "at_rest": at_rest,
            "peak_under_load": server.peak,
            "after_load": after_load,
            "after_rest": after_rest,
            "back_to_at_rest_after_s": None if back_to_rest_s is None else round(back_to_rest_s, 1),
        },
        "per_environment": {
            "at_rest": _distribution(at_rest_each),
            "after_load": _distribution(after_load_each),
            "after_rest": _distribution(after_rest_each),
            "peak_under_load": server.peak / n,
        },
        "shutdown": shutdown,
    }


def driver_layer() -> Path:
    """An /opt with the pinned MongoDB Node.js driver at nodejs/node_modules (linked, not copied,
    so a hundred environments share one copy), as a layer that ships the driver would lay it out."""
    opt = Path(tempfile.mkdtemp(prefix="mongo-sidecar-driver-layer-")) / "opt"
    (opt / "nodejs").mkdir(parents=True)
    (opt / "nodejs" / "node_modules").symlink_to(node_modules())
    return opt


def run(workload: Workload, together: bool = True, log=log_line) -> dict:
    """Both data paths, at once (each on its own server) or in turn."""
    opts = {"sidecar": layer_dir(), "driver": driver_layer()}
    results: dict[str, dict] = {}
    try:
        def one(data_path: str) -> None:
            results[data_path] = run_fleet(data_path, workload, opts[data_path], log)

        if together:
            with ThreadPoolExecutor(len(DATA_PATHS)) as pool:
                for done in [pool.submit(one, p) for p in DATA_PATHS]:
                    done.result()
        else:
            for data_path in DATA_PATHS:
                one(data_path)
    finally:
        for opt in opts.values():
            shutil.rmtree(opt.parent, ignore_errors=True)
    return {"workload": asdict(workload), "together": together,
            "fleets": {p: results[p] for p in DATA_PATHS}}


def _ms(value: float | None) -> str:
    return "not within 30 s" if value is None else f"{value:.0f} ms"


def summary(figures: dict) -> str:
    """The comparison, one line per figure."""
    rows = [("connections at the server", "sidecar", "driver")]
    fleets = figures["fleets"]
    n = figures["workload"]["environments"]
    for label, key in [("at rest (after one invocation)", "at_rest"), ("peak under load", "peak_under_load"),
                       ("right after the load", "after_load"),
                       (f"after {figures['workload']['rest_seconds']:.0f} s of rest", "after_rest")]:
        rows.append((label, *(f"{fleets[p]['server'][key]} ({fleets[p]['server'][key] / n:.1f}/env)"
                              for p in DATA_PATHS)))
    rows.append(("SHUTDOWN of all: none left, after the last SIGTERM",
                 *(_ms(fleets[p]["shutdown"]["server_zero_after_last_sigterm_ms"]) for p in DATA_PATHS)))
    rows.append(("invocations (failed)", *(f"{fleets[p]['invocations']} ({len(fleets[p]['failures'])})"
                                           for p in DATA_PATHS)))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"{n} environments, {figures['workload']['invocations']} invocations each under load "
             f"(API request / SQS batch of {figures['workload']['batch_size']}, alternating)"]
    lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--environments", type=int, default=Workload.environments)
    parser.add_argument("--invocations", type=int, default=Workload.invocations)
    parser.add_argument("--rest-seconds", type=float, default=Workload.rest_seconds)
    parser.add_argument("--one-at-a-time", action="store_true", help="run the two fleets in turn, not at once")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    exit_on_sigterm()
    workload = Workload(environments=args.environments, invocations=args.invocations,
                        rest_seconds=args.rest_seconds)
    figures = run(workload, together=not args.one_at_a_time)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print()
    print(summary(figures))
    print(f"\nfigures: {args.out}")
    failed = sum(len(f["failures"]) for f in figures["fleets"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
