"""7. What a handler's cold start pays to load a MongoDB driver, against the layer's thin client
and a bare interpreter: whole-process wall time and peak RSS, medians of alternating runs
(A B C A B C ...), after warm-ups. The peak RSS is each command's own (see spawn_and_wait).
"""

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from harness import TOOLS_DIR

from harness.node_driver import node_driver

from .context import BENCH_OUT, Context, node
from .report import Section
from .stats import median

WARMUPS = 2
TIME_BIN = "/usr/bin/time"


@dataclass
class Command:
    key: str
    label: str
    argv: list[str]
    env: dict[str, str]
    cwd: Path


def spawn_and_wait(command: Command) -> tuple[float, float]:
    """Runs the command to its end: (wall ms, peak RSS MiB). Fails on a non-zero exit.

    The peak RSS must be the command's own. A child forked from this (large) Python process
    inherits its resident size as the starting point of its own peak (exec keeps the old
    image's high-water mark), so wait4's ru_maxrss would say 35 MiB for `python -c 0`. Through
    /usr/bin/time (1 MiB) the command's peak is its own; without it, the figure is an upper bound.
    """
    time_v = TIME_BIN if os.access(TIME_BIN, os.X_OK) else None
    argv = [TIME_BIN, "-v", *command.argv] if time_v else command.argv
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=command.env, cwd=command.cwd, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE if time_v else subprocess.DEVNULL)
    stderr = proc.stderr.read().decode(errors="replace") if time_v else ""
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = (time.perf_counter() - started) * 1000
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        raise RuntimeError(f"{command.label} exited with {proc.returncode}: {stderr[-500:]}")
    if time_v:
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
        if not found:
            raise RuntimeError(f"{TIME_BIN} -v printed no maximum resident set size")
        return elapsed, int(found.group(1)) / 1024
    return elapsed, usage.ru_maxrss / 1024


def commands(ctx: Context, section: Section) -> list[Command]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
            "LANG": "C.UTF-8"}
    found = []
    node_bin = node()
    try:
        node_driver()  # require('mongodb') resolves from .tools/bench/node_modules (the cwd)
        found.append(Command("node_mongodb", "node -e \"require('mongodb')\"", [node_bin, "-e", "require('mongodb')"],
                             base, BENCH_OUT))
    except Exception as e:  # noqa: BLE001
        section.error("Node mongodb driver", e)
    client = ctx.node_client
    found.append(Command("node_client", "node -e \"require('<layer>/.../mongo-sidecar')\"",
                         [node_bin, "-e", f"require({str(client)!r})"], base, BENCH_OUT))
    found.append(Command("node_bare", "node -e 0", [node_bin, "-e", "0"], base, BENCH_OUT))
    # The venv's interpreter has pymongo (with its bytecode, as pip installs it). /opt is
    # read-only in Lambda: no bytecode may be written during the runs.
    python = TOOLS_DIR / "venv" / "bin" / "python"
    python = str(python) if python.exists() else sys.executable
    py_env = base | {"PYTHONDONTWRITEBYTECODE": "1"}
    found.append(Command("python_pymongo", "python -c \"import pymongo\"", [python, "-c", "import pymongo"], py_env, BENCH_OUT))
    found.append(Command("python_client", "python -c \"import mongo_sidecar\" (layer python/)",
                         [python, "-c", "import mongo_sidecar"], py_env | {"PYTHONPATH": str(ctx.python_client)}, BENCH_OUT))
    found.append(Command("python_bare", "python -c 0", [python, "-c", "0"], py_env, BENCH_OUT))
    return found


def run(ctx: Context, section: Section) -> None:
    BENCH_OUT.mkdir(parents=True, exist_ok=True)
    found = commands(ctx, section)
    times: dict[str, list[float]] = {c.key: [] for c in found}
    rss: dict[str, list[float]] = {c.key: [] for c in found}
    for round_number in range(WARMUPS + ctx.workload.coldstart_runs):
        for command in found:
            elapsed, peak = spawn_and_wait(command)
            if round_number >= WARMUPS:
                times[command.key].append(elapsed)
                rss[command.key].append(peak)
    results = {c.key: {"label": c.label, "ms": median(times[c.key]), "rss_mib": median(rss[c.key]),
                       "runs": len(times[c.key]), "all_ms": times[c.key]} for c in found}
    for language, bare in (("node", "node_bare"), ("python", "python_bare")):
        for c in found:
            if not c.key.startswith(language):
                continue
            r = results[c.key]
            note = f"peak RSS {r['rss_mib']:.1f} MiB"
            if c.key != bare and bare in results:
                b = results[bare]
                note = f"+{r['ms'] - b['ms']:.0f} ms, {r['rss_mib'] - b['rss_mib']:+.1f} MiB over the bare interpreter; " + note
            section.add(c.label, r["ms"], "ms", note=note)
    section.details.update(commands=results, peak_rss_from="/usr/bin/time -v" if os.access(TIME_BIN, os.X_OK)
                           else "wait4 (an upper bound: includes this process' image)",
                           baseline="require('mongodb') +174 ms +22 MiB; import pymongo +257 ms +18.5 MiB; "
                                    "thin client +19 ms (Node), +68 ms (Python)")
