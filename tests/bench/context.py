"""What every section needs: the binary under test, the layer's clients, the database, the
workload sizes, the comparison drivers, and a way to start a sidecar."""

import os
import shutil
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path

from harness import REPO_ROOT, TOOLS_DIR, HarnessError
from harness.ferretdb import FerretDB
from harness.node_driver import node_driver  # noqa: F401 - used by the sections through this module
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
    """How much each section does. `--quick` takes the second value of each pair."""

    startup_runs: int = 20  # standalone start-ups, after 2 warm-ups
    latency_requests: int = 3000  # sequential findOne per path
    latency_warmup: int = 300
    cpu_requests: int = 20000  # findOne per transport for the sidecar's CPU per request
    concurrent_clients: int = 32
    concurrent_seconds: float = 4.0
    stream_documents: int = 100_000  # ~500 B each: ~50 MB
    large_iterations: int = 60  # find of 1,000 documents, per path
    coldstart_runs: int = 20  # per command, after 2 warm-ups, alternating
    lambda_environments: int = 5
    lambda_warm_invocations: int = 20
    callgrind_requests: int = 2000

    @classmethod
    def quick(cls) -> "Workload":
        return cls(startup_runs=5, latency_requests=500, latency_warmup=100, cpu_requests=3000,
                   concurrent_seconds=1.0, stream_documents=20_000, large_iterations=10,
                   coldstart_runs=5, lambda_environments=2, lambda_warm_invocations=5,
                   callgrind_requests=500)

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
    def __init__(self, workload: Workload, binary: Path, db: FerretDB, layer: Path, quick: bool):
        self.workload = workload
        self.binary = binary
        self.db = db
        self.layer = layer  # laid out like /opt: extensions/, nodejs/node_modules/, python/
        self.quick = quick
        self.scratch = Path(tempfile.mkdtemp(prefix="mongo-sidecar-bench-"))
        self._sockets = 0
        self.mongo = MongoClient(db.uri)
        self.small_id: str | None = None  # a document of data.SMALL
        self.stream_count = 0

    def fill(self) -> None:
        """The small and large collections every read section uses."""
        self.small_id = str(data.fill(self.mongo, data.SMALL, 100, data.SMALL_BYTES)[50])
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


def node() -> str:
    path = shutil.which("node")
    if not path:
        raise HarnessError("node not found: install Node.js 20")
    return path
