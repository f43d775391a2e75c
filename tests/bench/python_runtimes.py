"""What `import mongo_sidecar` costs on each Python runtime the layer serves (3.9 to 3.13, the
interpreters of .tools/python-runtimes): from the layer's python/ with the bytecode it ships for
that version, and from the same sources with no bytecode at all, which is what a runtime pays when
the layer has none for it (/opt is read-only: it compiles the client at every cold start).

Timed inside the process (perf_counter around the import), so the interpreter's own start is left
out; -B, so nothing is written. Runs alternate (with, without, with, ...) after warm-ups; medians.
"""

import os
import shutil
import subprocess

from harness import TOOLS_DIR
from harness.layer import python_versions

from .context import Context
from .report import Section
from .stats import median

WARMUPS = 2
TIMED_IMPORT = "import time; t = time.perf_counter(); import mongo_sidecar; print((time.perf_counter() - t) * 1000)"


def import_ms(python: str, path: str) -> float:
    run = subprocess.run([python, "-B", "-c", TIMED_IMPORT], capture_output=True, text=True, check=True,
                         env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": path})
    return float(run.stdout)


def run(ctx: Context, section: Section) -> None:
    with_bytecode = str(ctx.python_client)
    without = ctx.scratch / "python-sources-only"
    shutil.copytree(ctx.python_client, without, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True)
    results = {}
    for version in python_versions():
        python = TOOLS_DIR / "python-runtimes" / version / "bin" / "python"
        if not python.exists():
            section.error(f"Python {version}", f"{python} not found: run `make tools`")
            continue
        times = {"bytecode": [], "sources": []}
        for round_number in range(WARMUPS + ctx.workload.coldstart_runs):
            for kind, path in (("bytecode", with_bytecode), ("sources", str(without))):
                elapsed = import_ms(str(python), path)
                if round_number >= WARMUPS:
                    times[kind].append(elapsed)
        shipped, compiled = median(times["bytecode"]), median(times["sources"])
        results[version] = {"bytecode_ms": shipped, "no_bytecode_ms": compiled, "runs": len(times["bytecode"])}
        section.add(f"Python {version}: import mongo_sidecar, layer bytecode", shipped, "ms",
                    note=f"with no bytecode {compiled:.1f} ms (+{compiled - shipped:.1f} ms compiling the client)")
    section.details.update(imports=results)
