"""4. The sidecar's own CPU per findOne: N requests from the cheapest keep-alive client
(rawhttp, one request in flight), with the sidecar's utime+stime read from /proc before and after.

And, with --callgrind, instructions per request under valgrind's callgrind for a fixed workload:
slow, but the same count on a busy machine as on a quiet one.
"""

import os
import re
import shutil
import subprocess
import time

from harness.procs import free_port

from . import data
from .context import BENCH_OUT, TOKEN, Context
from .proc import cpu_seconds, cpu_times
from .rawhttp import Target, post, sequential
from .report import Goal, Section

CPU_GOAL_US = 40.0
WARMUP_REQUESTS = 500


def findone_request(ctx: Context) -> bytes:
    body = {"database": data.DATABASE, "collection": data.SMALL, "filter": {"_id": {"$oid": ctx.small_id}}}
    return post("/action/findOne", body, TOKEN)


def _per_request(ctx: Context, pid: int, target: Target, request: bytes, count: int,
                 database_pid: int | None) -> dict:
    sequential(target, request, WARMUP_REQUESTS)
    sidecar_before = cpu_times(pid)
    database_before = cpu_seconds(database_pid) if database_pid else None
    client_before = time.process_time()
    result = sequential(target, request, count)
    client_cpu = time.process_time() - client_before
    user, system = (after - before for after, before in zip(cpu_times(pid), sidecar_before))
    if result["other"]:
        raise RuntimeError(f"non-200 answers: {result['other']}")
    out = {
        "sidecar_cpu_us": (user + system) / count * 1e6,
        "sidecar_user_us": user / count * 1e6,
        "sidecar_system_us": system / count * 1e6,
        "client_cpu_us": client_cpu / count * 1e6,
        "wall_us": result["seconds"] / count * 1e6,
        "requests_per_s": count / result["seconds"],
        "requests": count,
    }
    if database_before is not None:
        out["database_cpu_us"] = (cpu_seconds(database_pid) - database_before) / count * 1e6
    return out


def run(ctx: Context, section: Section) -> None:
    request = findone_request(ctx)
    count = ctx.workload.cpu_requests
    database_pid = ctx.db._proc.pid if getattr(ctx.db, "_proc", None) else None  # FerretDB's own CPU, for scale
    with ctx.sidecar() as sidecar:
        targets = {"TCP": Target(port=sidecar.port), "Unix socket": Target(unix_path=sidecar.env["MONGO_SIDECAR_SOCKET"])}
        for name, target in targets.items():
            m = _per_request(ctx, sidecar.pid(), target, request, count, database_pid)
            section.details[name] = m
            note = (f"user {m['sidecar_user_us']:.0f} + system {m['sidecar_system_us']:.0f} µs; {count:,} requests; "
                    f"wall {m['wall_us']:.0f} µs/req")
            if "database_cpu_us" in m:
                note += f"; FerretDB {m['database_cpu_us']:.0f} µs, this client {m['client_cpu_us']:.0f} µs"
            section.add(f"sidecar CPU per findOne, {name}", m["sidecar_cpu_us"], "µs", Goal(CPU_GOAL_US), note=note)
    section.details["baseline"] = "prototype ~101 µs; minimal axum echo 25-34 µs"


# --- callgrind ---------------------------------------------------------------------------------

def _callgrind_total(out_file: str) -> int:
    """The Ir total of a callgrind dump ("summary:" or "totals:" line)."""
    with open(out_file) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no totals in {out_file}")


def run_callgrind(ctx: Context, section: Section) -> None:
    if not shutil.which("valgrind") or not shutil.which("callgrind_control"):
        section.error("callgrind", "valgrind / callgrind_control not found")
        return
    count = ctx.workload.callgrind_requests
    port = free_port()
    socket_path = str(ctx.scratch / "callgrind.sock")
    # Kept after the run, for callgrind_annotate (useful with a binary built with symbols).
    dumps = BENCH_OUT / "callgrind"
    shutil.rmtree(dumps, ignore_errors=True)
    dumps.mkdir(parents=True)
    out_prefix = str(dumps / "callgrind.out")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MONGODB_URI": ctx.db.uri, "MONGO_SIDECAR_PORT": str(port),
           "MONGO_SIDECAR_SOCKET": socket_path, "MONGO_SIDECAR_TOKEN": TOKEN, "AWS_LAMBDA_LOG_LEVEL": "info",
           # Under valgrind everything is ~50x slower: no timeout may fire during the workload.
           "MONGO_SIDECAR_READY_TIMEOUT_MS": "60000", "MONGO_SIDECAR_HEADER_TIMEOUT_MS": "60000"}
    log = open(dumps / "sidecar.log", "wb")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_prefix}.%p",
                             str(ctx.binary)], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        _wait_listening(Target(port=port), proc, timeout=120)
        request = findone_request(ctx)
        for name, target in {"TCP": Target(port=port), "Unix socket": Target(unix_path=socket_path)}.items():
            sequential(target, request, 50)  # warm this path
            subprocess.run(["callgrind_control", "--zero", str(proc.pid)], check=True, capture_output=True)
            started = time.perf_counter()
            result = sequential(target, request, count)
            seconds = time.perf_counter() - started
            listed = subprocess.run(["callgrind_control", f"--dump={name}", str(proc.pid)], check=True,
                                    capture_output=True, text=True)
            dump = _newest_dump(out_prefix, proc.pid)
            instructions = _callgrind_total(dump) / count
            section.details[f"callgrind {name}"] = {"requests": count, "ok": result["ok"], "seconds": seconds,
                                                    "instructions_per_request": instructions, "dump": dump,
                                                    "control": listed.stdout.strip()[-300:]}
            section.add(f"instructions per findOne under callgrind, {name}", instructions / 1000, "k instr",
                        note=f"{count:,} requests, all threads, user space only; dump {dump}")
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _wait_listening(target: Target, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = sequential(target, b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 1)
            if result["ok"]:
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the sidecar under valgrind did not become ready (exit code {proc.poll()})")
        time.sleep(0.2)


def _newest_dump(prefix: str, pid: int) -> str:
    """callgrind names each dump PREFIX.PID.N; the newest is the one just requested."""
    directory, base = os.path.split(prefix)
    found = [f for f in os.listdir(directory) if re.fullmatch(re.escape(f"{base}.{pid}") + r"\.\d+", f)]
    if not found:
        raise RuntimeError(f"callgrind wrote no dump {prefix}.{pid}.N")
    return os.path.join(directory, max(found, key=lambda f: int(f.rsplit(".", 1)[1])))
