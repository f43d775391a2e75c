"""The Java sample function's cold start under the Lambda emulator: the handler calling the
sidecar (the layer in /opt, `make sample-functions`' jar) against the same handler over the MongoDB
Java driver (tests/bench/java, built here with Maven into .tools/bench/java-driver; no extension).

Each environment is fresh: the first invoke starts the JVM, the runtime interface client and the
handler (with its HttpClient or its MongoClient), then reads one seeded item; a few warm invokes
follow. Environments alternate between the two (A B A B ...); medians over them. The emulator's
own INIT REPORT splits the cold invocation into init (JVM + runtime client + handler constructor)
and the first invoke, where the driver connects and the sidecar's connection is already warm.
"""

import hashlib
import re
import shutil
import statistics
import subprocess
from pathlib import Path

from harness import HarnessError
from harness.demo import http_event
from harness.lambda_env import SAMPLE_FUNCTIONS, ExecutionEnvironment, sample_function_dir

from .context import BENCH_OUT, BENCH_SRC, Context
from .emulator import seed
from .report import Section

DATABASE = "bench_java"
COLLECTION = "items"
DRIVER_SOURCE = BENCH_SRC / "java"
SAMPLE_SOURCE = SAMPLE_FUNCTIONS / "java" / "src"
DRIVER_OUT = BENCH_OUT / "java-driver"
DRIVER_HANDLER = "items.DriverItemsHandler::handleRequest"


def driver_function() -> Path:
    """The driver variant's jar directory, built with Maven the first time and again only when its
    sources or the sample's change."""
    sources = sorted(DRIVER_SOURCE.rglob("*.java")) + sorted(SAMPLE_SOURCE.rglob("*.java"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in [DRIVER_SOURCE / "pom.xml", *sources])).hexdigest()
    stamp = DRIVER_OUT / ".bench-stamp"
    function_dir = DRIVER_OUT / "function"
    if not (stamp.is_file() and stamp.read_text() == digest):
        mvn = shutil.which("mvn")
        if not mvn:
            raise HarnessError("mvn not found: it builds the Java handler over the MongoDB driver to compare against")
        print("building the Java handler over the MongoDB driver (mvn package)", flush=True)
        subprocess.run([mvn, "-q", "-B", "-f", str(DRIVER_SOURCE / "pom.xml"), "package"], check=True,
                       stdout=subprocess.DEVNULL)
        stamp.write_text(digest)
    return function_dir


def one_environment(ctx: Context, variant: str, event: dict, driver_dir) -> dict:
    env = {"MONGODB_URI": ctx.db.uri, "MONGODB_DATABASE": DATABASE, "ITEMS_COLLECTION": COLLECTION}
    if variant == "sidecar":
        fn = ExecutionEnvironment("java", sample_function_dir("java"), env=env, layer_dir=ctx.layer)
    else:
        fn = ExecutionEnvironment("java", driver_dir, env=env, with_extension=False, handler=DRIVER_HANDLER)
    with fn:
        cold = fn.invoke(event)
        warm = [fn.invoke(event) for _ in range(ctx.workload.lambda_warm_invocations)]
        log = fn.log_text()
    failures = [r.body for r in [cold, *warm]
                if r.status != 200 or not isinstance(r.body, dict) or r.body.get("statusCode") != 200]
    init = re.search(r"INIT REPORT\(durationMs: ([\d.]+)\)", log)
    return {"cold_ms": cold.elapsed_ms, "init_ms": float(init.group(1)) if init else None,
            "warm_ms": [r.elapsed_ms for r in warm], "failures": failures[:2], "failure_count": len(failures),
            "log_tail": log[-1500:] if failures else ""}


def run(ctx: Context, section: Section) -> None:
    driver_dir = driver_function()
    item_id = seed(ctx, DATABASE)
    event = http_event("GET", f"/items/{item_id}")
    runs: dict[str, list[dict]] = {"sidecar": [], "driver": []}
    for _ in range(ctx.workload.lambda_environments):
        for variant in runs:
            try:
                runs[variant].append(one_environment(ctx, variant, event, driver_dir))
            except Exception as e:  # noqa: BLE001 - one broken environment: report it, try the next
                section.error(f"{variant} environment", e)
    section.details.update(event=event, environments=runs)
    labels = {"sidecar": "Java handler + sidecar (HttpClient)", "driver": "Java handler + mongodb-driver-sync"}
    cold = {}
    for variant, results in runs.items():
        if not results:
            continue
        failed = sum(r["failure_count"] for r in results)
        if failed:
            section.error(variant, f"{failed} invocation(s) did not answer 200; first: {results[0]['failures'][:1]}")
        n = f"median of {len(results)} fresh environments"
        cold[variant] = statistics.median(r["cold_ms"] for r in results)
        section.add(f"{labels[variant]}: cold invocation", cold[variant], "ms", note=n)
        inits = [r["init_ms"] for r in results if r["init_ms"] is not None]
        if inits:
            init = statistics.median(inits)
            section.add(f"{labels[variant]}: of which init (JVM, runtime client, handler)", init, "ms",
                        note=f"{n}; the first invoke: {cold[variant] - init:.0f} ms")
        warm = [ms for r in results for ms in r["warm_ms"]]
        if warm:
            section.add(f"{labels[variant]}: warm invocation", statistics.median(warm), "ms",
                        note=f"median of {len(warm)}")
    if len(cold) == 2:
        section.add("cold invocation saved by the sidecar", cold["driver"] - cold["sidecar"], "ms",
                    note=f"the driver's {cold['driver']:.0f} ms against the sidecar's {cold['sidecar']:.0f} ms "
                         f"({cold['driver'] / cold['sidecar']:.2f}x)")
