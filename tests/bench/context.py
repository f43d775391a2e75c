"""What every section needs: the binary under test, the layer's clients, the database, the
workload sizes, the comparison drivers, and a way to start a sidecar."""

import os
import shutil
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

from harness import REPO_ROOT, TOOLS_DIR, HarnessError
from harness.ferretdb import FerretDB
from harness.sidecar import Sidecar
from pymongo import MongoClient

from . import data

BENCH_SRC = Path(__file__).resolve().parent
BENCH_OUT = TOOLS_DIR / "bench"  # node_modules (harness.node_driver), results.json, scratch
TOKEN = "bench-token"

#: Where a binary is looked for when neither --bin nor MONGO_SIDECAR_BIN names one: the layer's
#: (what ships), then a host release build, then a debug build (only good to check the bench).
BINARY_CANDIDATES = [
    REPO_ROOT / "target" / "lambda" / "x86_64" / "extensions" / "mongo-sidecar",
    REPO_ROOT / "target" / "release" / "mongo-sidecar",
    REPO_ROOT / "target" / "debug" / "mongo-sidecar",
]


@dataclass
class Workload:
    """How much each section does: the full run's sizes; `quick()` and `smoke()` are smaller."""

    startup_runs: int = 20  # standalone start-ups, after 2 warm-ups
    rounds: int = 2  # environment section: the paths take turns this many times per scenario
    findone_requests: int = 3000  # sequential findOne per path and round
    findone_warmup: int = 300
    find_requests: int = 30  # find of 1,000 documents per path and round
    find_warmup: int = 3
    write_requests: int = 1000  # insertOne, and updateOne, per path and round
    write_warmup: int = 100
    cpu_requests: int = 20000  # findOne per transport for the sidecar's CPU per request
    concurrent_clients: int = 32
    concurrent_seconds: float = 4.0
    stream_documents: int = 100_000  # ~500 B each: ~50 MB
    coldstart_runs: int = 20  # per command, after 2 warm-ups, alternating
    lambda_environments: int = 5
    lambda_warm_invocations: int = 20
    callgrind_requests: int = 2000

    @classmethod
    def quick(cls) -> "Workload":
        """About two minutes: figures good enough to compare two builds roughly."""
        return cls(startup_runs=5, findone_requests=1000, findone_warmup=100, find_requests=10,
                   write_requests=300, write_warmup=30, cpu_requests=5000, concurrent_seconds=1.0,
                   stream_documents=20_000, coldstart_runs=5, lambda_environments=2, lambda_warm_invocations=5,
                   callgrind_requests=500)

    @classmethod
    def smoke(cls) -> "Workload":
        """Every code path with tiny workloads (`make bench-smoke`): it proves the benchmark still
        measures everything; its figures mean nothing."""
        return cls(startup_runs=1, findone_requests=30, findone_warmup=5, find_requests=2, find_warmup=1,
                   write_requests=20, write_warmup=2, cpu_requests=200,
                   concurrent_seconds=0.3, stream_documents=2000, coldstart_runs=1, lambda_environments=1,
                   lambda_warm_invocations=2, callgrind_requests=50)

    def override(self, assignments: list[str]) -> "Workload":
        """Applies NAME=VALUE pairs (--set latency_requests=10000)."""
        known = {f.name: f.type for f in fields(self)}
        for assignment in assignments:
            name, _, value = assignment.partition("=")
            if name not in known or not value:
                raise SystemExit(f"--set {assignment}: expected NAME=VALUE with NAME one of {', '.join(known)}")
            setattr(self, name, float(value) if known[name] in (float, "float") else int(value))
        return self


def resolve_binary(explicit: str | None) -> Path:
    """--bin, else $MONGO_SIDECAR_BIN, else the first candidate that exists."""
    named = explicit or os.environ.get("MONGO_SIDECAR_BIN")
    if named:
        path = Path(named) if Path(named).is_absolute() else REPO_ROOT / named
        if not os.access(path, os.X_OK):
            raise HarnessError(f"sidecar binary {path} not found or not executable")
        return path
    for path in BINARY_CANDIDATES:
        if os.access(path, os.X_OK):
            return path
    raise HarnessError("no sidecar binary: run `make build` (or cargo build --release), or set MONGO_SIDECAR_BIN")


def binary_kind(path: Path) -> str:
    """What the binary is, from where cargo put it: the figures mean little for a debug build."""
    text = str(path)
    if "/target/lambda/" in text or "/extensions/" in text:
        return "layer build (cargo-lambda, glibc 2.17)"
    if "/target/release/" in text:
        return "host release build (not the layer's: compare sizes and glibc with care)"
    if "/target/debug/" in text:
        return "DEBUG build: only checks that the benchmark works; its figures mean nothing"
    return "unknown build"


class Context:
    def __init__(self, workload: Workload, binary: Path, db: FerretDB, layer: Path):
        self.workload = workload
        self.binary = binary
        self.db = db
        self.layer = layer  # laid out like /opt: extensions/, nodejs/node_modules/, python/
        self.scratch = Path(tempfile.mkdtemp(prefix="mongo-sidecar-bench-"))
        self._sockets = 0
        self.mongo = MongoClient(db.uri)
        self.small_sku: str | None = None  # what findOne and updateOne look for in data.SMALL
        self.stream_count = 0

    def fill(self) -> None:
        """The small and large collections every read section uses."""
        data.fill(self.mongo, data.SMALL, data.SMALL_COUNT, data.SMALL_BYTES)
        # FerretDB (SQLite) pushes down only _id: a filter on another field scans in insertion
        # order, so the first document keeps the database's share as small as a lookup by _id.
        self.small_sku = data.sku(0)
        data.fill(self.mongo, data.LARGE, data.LARGE_COUNT, data.LARGE_BYTES)

    def fill_stream(self, count: int) -> None:
        if self.stream_count != count:
            data.fill(self.mongo, data.STREAM, count, data.LARGE_BYTES)
            self.stream_count = count

    @property
    def node_client(self) -> Path:
        return self.layer / "nodejs" / "node_modules" / "mongo-sidecar"

    @property
    def python_client(self) -> Path:
        return self.layer / "python"

    def sidecar(self, env: dict[str, str] | None = None, unix_socket: bool = True) -> Sidecar:
        """A standalone sidecar to start with `with` (its own port, and a Unix socket unless told
        not to), with a token, logging at INFO as it would in Lambda."""
        settings = {"AWS_LAMBDA_LOG_LEVEL": "info", "MONGO_SIDECAR_TOKEN": TOKEN}
        if unix_socket:
            self._sockets += 1
            settings["MONGO_SIDECAR_SOCKET"] = str(self.scratch / f"sidecar-{self._sockets}.sock")
        return Sidecar(self.db.uri, env=settings | (env or {}))

    def close(self) -> None:
        self.mongo.close()
        shutil.rmtree(self.scratch, ignore_errors=True)


#: Built by `make bench-echo` (cargo, its own workspace under tests/bench/echo).
ECHO_BINARY = REPO_ROOT / "target" / "bench-echo" / "release" / "bench-echo"


def echo_binary() -> Path:
    if not os.access(ECHO_BINARY, os.X_OK):
        raise HarnessError(f"{ECHO_BINARY} not found: run `make bench-echo`")
    return ECHO_BINARY


#: Built by `make bench-driver-floor` (cargo, its own workspace under tests/bench/driver-floor).
DRIVER_FLOOR_BINARY = REPO_ROOT / "target" / "bench-driver-floor" / "release" / "bench-driver-floor"


def driver_floor_binary() -> Path:
    if not os.access(DRIVER_FLOOR_BINARY, os.X_OK):
        raise HarnessError(f"{DRIVER_FLOOR_BINARY} not found: run `make bench-driver-floor`")
    return DRIVER_FLOOR_BINARY


def node() -> str:
    path = shutil.which("node")
    if not path:
        raise HarnessError("node not found: install Node.js 20")
    return path
