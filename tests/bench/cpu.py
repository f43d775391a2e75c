"""4. The sidecar's own CPU per findOne: N requests from the cheapest keep-alive client
(rawhttp, one request in flight), with the sidecar's utime+stime read from /proc before and after;
next to its two floors, measured in the same turns: a bare hyper echo server (tests/bench/echo)
answering the same client and request, and the driver alone (tests/bench/driver-floor: the same
`mongodb` crate sending the same find command N times, no HTTP, its CPU from getrusage); and the
cost of metrics, a second sidecar with MONGO_SIDECAR_METRICS=emf in the same turns.

And, with --callgrind, instructions per request under valgrind's callgrind for a fixed workload:
slow, but the same count on a busy machine as on a quiet one.
"""

import json
import os
import re
import shutil
import subprocess
import time

from pathlib import Path

from harness.procs import free_port, terminate, wait_for_port

from . import data
from .context import BENCH_OUT, TOKEN, Context, driver_floor_binary, echo_binary
from .proc import cpu_seconds, cpu_times
from .rawhttp import Target, post, sequential
from .report import Goal, Section
from .stats import ratio

CPU_GOAL_US = 40.0
ECHO_RATIO_GOAL = 1.5
METRICS_RATIO_GOAL = 1.05
WARMUP_REQUESTS = 500
ROUNDS = 2


def findone_request(ctx: Context) -> bytes:
    body = {"database": data.DATABASE, "collection": data.SMALL, "filter": {"sku": ctx.small_sku}}
    return post("/action/findOne", body, TOKEN)


def _per_request(pid: int, target: Target, request: bytes, count: int, database_pid: int | None) -> dict:
    """CPU per request of the server `pid` (and of FerretDB, and of this client) over `count`
    sequential requests, after a warm-up."""
    sequential(target, request, min(WARMUP_REQUESTS, count))
    server_before = cpu_times(pid)
    database_before = cpu_seconds(database_pid) if database_pid else None
    client_before = time.process_time()
    result = sequential(target, request, count)
    client_cpu = time.process_time() - client_before
    user, system = (after - before for after, before in zip(cpu_times(pid), server_before))
    if result["other"]:
        raise RuntimeError(f"non-200 answers: {result['other']}")
    out = {
        "cpu_us": (user + system) / count * 1e6,
        "user_us": user / count * 1e6,
        "system_us": system / count * 1e6,
        "client_cpu_us": client_cpu / count * 1e6,
        "wall_us": result["seconds"] / count * 1e6,
        "requests_per_s": count / result["seconds"],
        "requests": count,
    }
    if database_before is not None:
        out["database_cpu_us"] = (cpu_seconds(database_pid) - database_before) / count * 1e6
    return out


def _pooled(turns: list[dict]) -> dict:
    """Turns of the same server summed: CPU per request over all of them."""
    n = sum(t["requests"] for t in turns)
    pooled = {k: sum(t[k] * t["requests"] for t in turns) / n for k in turns[0] if k.endswith("_us")}
    return pooled | {"requests": n, "turns": turns}


def _driver_alone_command(ctx: Context, count: int, *calls: str) -> list[str]:
    """tests/bench/driver-floor's command line: `count` findOne by the same sku as the sidecar's
    request; `calls` picks "cursor" or "command" (default both)."""
    return [str(driver_floor_binary()), ctx.db.uri, data.DATABASE, data.SMALL, "sku", ctx.small_sku, str(count),
            *calls]


def _driver_alone(ctx: Context, count: int) -> dict:
    """The driver alone: findOne `count` times as the sidecar sends it, in a process of its own
    that measures itself (tests/bench/driver-floor)."""
    done = subprocess.run(_driver_alone_command(ctx, count), capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"bench-driver-floor failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    figures = json.loads(done.stdout)
    cursor, command = figures["cursor"], figures["command"]
    return {"cpu_us": cursor["cpu_us"], "user_us": cursor["user_us"], "system_us": cursor["system_us"],
            "wall_us": cursor["wall_us"], "command_cpu_us": command["cpu_us"], "requests": figures["requests"]}


class EchoServer:
    """The bare hyper echo server (tests/bench/echo), on a free port, while in `with`."""

    def __init__(self, binary: Path):
        self.port = free_port()
        self.proc = subprocess.Popen([str(binary), str(self.port)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def __enter__(self) -> "EchoServer":
        try:
            wait_for_port(self.port, 10, self.proc)
        except Exception:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        terminate(self.proc, 5)
        self.proc.stderr.close()


def run(ctx: Context, section: Section) -> None:
    request = findone_request(ctx)
    per_turn = max(1, ctx.workload.cpu_requests // ROUNDS)
    database_pid = ctx.db._proc.pid if getattr(ctx.db, "_proc", None) else None  # FerretDB's own CPU, for scale
    turns: dict[str, list[dict]] = {"TCP": [], "Unix socket": [], "echo": [], "TCP, metrics emf": [],
                                    "driver alone": []}
    with ctx.sidecar() as sidecar, EchoServer(echo_binary()) as echo, \
            ctx.sidecar(env={"MONGO_SIDECAR_METRICS": "emf"}, unix_socket=False) as measured:
        servers = {"TCP": (sidecar.pid(), Target(port=sidecar.port), database_pid),
                   "Unix socket": (sidecar.pid(), Target(unix_path=sidecar.env["MONGO_SIDECAR_SOCKET"]), database_pid),
                   "echo": (echo.proc.pid, Target(port=echo.port), None),
                   "TCP, metrics emf": (measured.pid(), Target(port=measured.port), database_pid)}
        for _ in range(ROUNDS):  # alternating, so that a burst of load falls on all three alike
            for name, (pid, target, db_pid) in servers.items():
                turns[name].append(_per_request(pid, target, request, per_turn, db_pid))
            turns["driver alone"].append(_driver_alone(ctx, per_turn))
    figures = {name: _pooled(t) for name, t in turns.items()}
    section.details.update(figures)
    echo_us = figures["echo"]["cpu_us"]
    for name in ("TCP", "Unix socket"):
        m = figures[name]
        note = (f"user {m['user_us']:.0f} + system {m['system_us']:.0f} µs; {m['requests']:,} requests; "
                f"wall {m['wall_us']:.0f} µs/req; FerretDB {m.get('database_cpu_us', 0):.0f} µs, "
                f"this client {m['client_cpu_us']:.0f} µs")
        section.add(f"sidecar CPU per findOne, {name}", m["cpu_us"], "µs", Goal(CPU_GOAL_US), note=note)
    section.add("bare hyper echo server CPU per request, TCP", echo_us, "µs",
                note=f"the same client and request; wall {figures['echo']['wall_us']:.0f} µs/req")
    section.add("sidecar CPU per findOne / bare hyper echo server, TCP", ratio(figures["TCP"]["cpu_us"], echo_us),
                "×", Goal(ECHO_RATIO_GOAL), note=f"{figures['TCP']['cpu_us'] - echo_us:+.0f} µs over the echo")
    alone = figures["driver alone"]
    sidecar_us = figures["TCP"]["cpu_us"]
    section.add("the driver alone, CPU per findOne (no HTTP)", alone["cpu_us"], "µs",
                note=f"user {alone['user_us']:.0f} + system {alone['system_us']:.0f} µs; the same crate and find "
                     f"command, {alone['requests']:,} requests; through run_raw_command, no cursor: "
                     f"{alone['command_cpu_us']:.0f} µs")
    section.add("the driver alone / the sidecar, TCP", ratio(alone["cpu_us"], sidecar_us), "×",
                note=f"the sidecar's CPU less the driver's and the echo server's: "
                     f"{sidecar_us - alone['cpu_us'] - echo_us:.0f} µs (routing, the token, request decoding, EJSON)")
    with_metrics = figures["TCP, metrics emf"]["cpu_us"]
    section.add("sidecar CPU per findOne with MONGO_SIDECAR_METRICS=emf / without", ratio(with_metrics, figures["TCP"]["cpu_us"]),
                "×", Goal(METRICS_RATIO_GOAL),
                note=f"{with_metrics:.0f} µs against {figures['TCP']['cpu_us']:.0f} µs, two sidecars in the same turns")


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
    # Kept after the run, for callgrind_annotate (useful with a binary built with symbols).
    dumps = BENCH_OUT / "callgrind"
    shutil.rmtree(dumps, ignore_errors=True)
    dumps.mkdir(parents=True)
    plain = _callgrind_sidecar(ctx, section, dumps, {}, ["TCP", "Unix socket"])
    # The same count of instructions with EMF metrics on: unlike CPU time, not moved by the machine's load.
    emf = _callgrind_sidecar(ctx, section, dumps, {"MONGO_SIDECAR_METRICS": "emf"}, ["TCP"],
                             label=", MONGO_SIDECAR_METRICS=emf")
    if plain.get("TCP") and emf.get("TCP"):
        section.add("instructions per findOne with MONGO_SIDECAR_METRICS=emf / without", emf["TCP"] / plain["TCP"],
                    "×", goal=Goal(METRICS_RATIO_GOAL), note=f"{emf['TCP'] / 1000:,.0f} k against {plain['TCP'] / 1000:,.0f} k")
    alone = _callgrind_driver_alone(ctx, dumps)
    section.details["callgrind driver alone"] = {"instructions_per_request": alone}
    section.add("instructions per findOne under callgrind, the driver alone", alone / 1000, "k instr",
                note=f"{ratio(alone, plain.get('TCP')):.2f} of the sidecar's" if plain.get("TCP") else None)


def _callgrind_driver_alone(ctx: Context, dumps: Path) -> float:
    """The driver alone's instructions per findOne: two runs under callgrind that differ only in
    the number of findOne they time (the same start-up and warm-up), their difference divided by
    that number."""
    count = ctx.workload.callgrind_requests
    totals = []
    for n in (WARMUP_REQUESTS, WARMUP_REQUESTS + count):
        out_file = dumps / f"callgrind.driver-alone.{n}"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_file}",
                        *_driver_alone_command(ctx, n, "cursor")], check=True, capture_output=True, timeout=600)
        totals.append(_callgrind_total(str(out_file)))
    return (totals[1] - totals[0]) / count


def _callgrind_sidecar(ctx: Context, section: Section, dumps, extra_env: dict, paths: list[str],
                       label: str = "") -> dict[str, float]:
    """One sidecar under callgrind: instructions per findOne over each path in `paths`."""
    count = ctx.workload.callgrind_requests
    port = free_port()
    socket_path = str(ctx.scratch / "callgrind.sock")
    out_prefix = str(dumps / "callgrind.out")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "MONGODB_URI": ctx.db.uri, "MONGO_SIDECAR_PORT": str(port),
           "MONGO_SIDECAR_SOCKET": socket_path, "MONGO_SIDECAR_TOKEN": TOKEN, "AWS_LAMBDA_LOG_LEVEL": "info",
           # Under valgrind everything is ~50x slower: no timeout may fire during the workload.
           "MONGO_SIDECAR_READY_TIMEOUT_MS": "60000", "MONGO_SIDECAR_HEADER_TIMEOUT_MS": "60000", **extra_env}
    targets = {"TCP": Target(port=port), "Unix socket": Target(unix_path=socket_path)}
    found: dict[str, float] = {}
    log = open(dumps / f"sidecar{label.replace(' ', '_').replace(',', '')}.log", "wb")
    proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out_prefix}.%p",
                             str(ctx.binary)], env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        _wait_listening(Target(port=port), proc, timeout=120)
        request = findone_request(ctx)
        for name in paths:
            target = targets[name]
            sequential(target, request, 50)  # warm this path
            subprocess.run(["callgrind_control", "--zero", str(proc.pid)], check=True, capture_output=True)
            started = time.perf_counter()
            result = sequential(target, request, count)
            seconds = time.perf_counter() - started
            listed = subprocess.run(["callgrind_control", f"--dump={name}", str(proc.pid)], check=True,
                                    capture_output=True, text=True)
            dump = _newest_dump(out_prefix, proc.pid)
            instructions = _callgrind_total(dump) / count
            found[name] = instructions
            section.details[f"callgrind {name}{label}"] = {
                "requests": count, "ok": result["ok"], "seconds": seconds, "instructions_per_request": instructions,
                "dump": dump, "control": listed.stdout.strip()[-300:]}
            section.add(f"instructions per findOne under callgrind, {name}{label}", instructions / 1000, "k instr",
                        note=f"{count:,} requests, all threads, user space only; dump {dump}")
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    return found


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
