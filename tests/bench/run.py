"""The benchmark's entry point: `PYTHONPATH=tests python -m bench [--quick|--smoke] [--callgrind]`.

Starts one FerretDB, fills it, lays out the layer (the binary under test plus the thin clients,
as Lambda mounts it at /opt), then runs each section in turn. A section that breaks is reported
and the next one runs; the exit code is 1 only when a measurement could not be made, never
because a figure missed its goal.
"""

import argparse
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from harness import REPO_ROOT, HarnessError
from harness.ferretdb import FerretDB
from harness.layer import layer_dir
from harness.procs import exit_on_sigterm

from . import chart, coldstart, cpu, emulator, environment, java_coldstart, memory, python_runtimes, sizes, startup
from .context import BENCH_OUT, Context, Workload, binary_kind, resolve_binary
from .report import Report

# key -> (title, function(ctx, section)); run in this order.
SECTIONS = {
    "sizes": ("1. Sizes", sizes.run),
    "startup": ("2. Start-up, standalone", startup.run),
    "environment": ("3. Per operation: environment CPU and p50, thin client + sidecar against the driver",
                    environment.run),
    "cpu": ("4. The sidecar's own CPU per findOne, next to a bare hyper echo server", cpu.run),
    "memory": ("5. Memory (kernel's VmRSS / VmHWM)", memory.run),
    "coldstart": ("6. Cold start of a handler: loading the driver vs the thin client", coldstart.run),
    "lambda": ("7. Under the Lambda emulator: Node.js sample function with the layer", emulator.run),
    "java": ("8. Java handler cold start under the emulator: sidecar vs mongodb-driver-sync", java_coldstart.run),
    "pythons": ("9. Importing the Python client on each Python runtime, with and without bytecode",
                python_runtimes.run),
    "callgrind": ("4b. Instructions per findOne under callgrind (--callgrind)", cpu.run_callgrind),
}
OPTIONAL = {"callgrind"}
#: Where the full run draws its chart, for the README; shorter runs draw theirs beside their JSON.
README_CHART = REPO_ROOT / "docs" / "bench.svg"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    sizes_group = parser.add_mutually_exclusive_group()
    sizes_group.add_argument("--quick", action="store_true", help="smaller workloads (a few minutes): rough figures")
    sizes_group.add_argument("--smoke", action="store_true",
                             help="tiny workloads (under a minute): checks that every figure can be measured")
    parser.add_argument("--callgrind", action="store_true", help="also count instructions per request under valgrind")
    parser.add_argument("--only", default="", help=f"comma-separated sections: {', '.join(SECTIONS)}")
    parser.add_argument("--skip", default="", help="comma-separated sections to leave out")
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE",
                        help=f"override a workload size: {', '.join(asdict(Workload()))}")
    parser.add_argument("--bin", help="the sidecar binary (default: $MONGO_SIDECAR_BIN, else the layer's, "
                                      "release, debug build)")
    parser.add_argument("--out", type=Path, help="where the JSON goes (default .tools/bench/RUN.json)")
    parser.add_argument("--chart", type=Path, help="where the SVG chart goes (default: docs/bench.svg for a full "
                                                   "run, else beside the JSON)")
    args = parser.parse_args(argv)
    run_name = "smoke" if args.smoke else "quick" if args.quick else "results"
    args.out = args.out or BENCH_OUT / f"{run_name}.json"
    args.chart = args.chart or (README_CHART if run_name == "results" else args.out.with_suffix(".svg"))
    for name in filter(None, (args.only + "," + args.skip).split(",")):
        if name not in SECTIONS:
            parser.error(f"unknown section {name!r}: one of {', '.join(SECTIONS)}")
    return args


def chosen_sections(args: argparse.Namespace) -> list[str]:
    only = [s for s in args.only.split(",") if s]
    skip = {s for s in args.skip.split(",") if s}
    wanted = only or [k for k in SECTIONS if k not in OPTIONAL or (k == "callgrind" and args.callgrind)]
    return [k for k in SECTIONS if k in wanted and k not in skip]


def _version(command: list[str]) -> str | None:
    try:
        return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout.strip() or None
    except OSError:
        return None


def meta(args: argparse.Namespace, binary: Path, workload: Workload) -> dict:
    git = ["git", "-C", str(REPO_ROOT)]
    return {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "commit": _version(git + ["rev-parse", "--short", "HEAD"]),
        "work_tree_dirty": bool(_version(git + ["status", "--porcelain", "--", "extension", "layer"])),
        "binary": str(binary),
        "binary_kind": binary_kind(binary),
        "run": "smoke" if args.smoke else "quick" if args.quick else "full",
        "workload": asdict(workload),
        "cpus": os.cpu_count(),
        "load_average_at_start": os.getloadavg(),
        "kernel": platform.release(),
        "node": _version(["node", "--version"]),
        "python": platform.python_version(),
    }


def skip_reason(key: str) -> str | None:
    """Why a section cannot run on this machine (not a failure: a missing prerequisite)."""
    if key in ("lambda", "java") and os.geteuid() != 0:
        return "needs root (the emulator runs in a private mount namespace)"
    if key == "callgrind" and not shutil.which("valgrind"):
        return "valgrind not installed"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    exit_on_sigterm()
    workload = (Workload.smoke() if args.smoke else Workload.quick() if args.quick else Workload()).override(args.set)
    try:
        binary = resolve_binary(args.bin)
    except HarnessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # The harness (Sidecar, layer_dir) takes the binary from here.
    os.environ["MONGO_SIDECAR_BIN"] = str(binary)
    report = Report(meta(args, binary, workload))
    kind = " (--smoke)" if args.smoke else " (--quick)" if args.quick else ""
    print(f"mongo-sidecar benchmark{kind}: {binary}\n  {binary_kind(binary)}")
    print(f"  load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs: "
          "figures taken on a busy machine are noisy")

    opt = layer_dir()
    started = time.perf_counter()
    try:
        with FerretDB() as db:
            ctx = Context(workload, binary, db, opt)
            try:
                ctx.fill()
                print(f"  FerretDB {db.uri}, data ready in {time.perf_counter() - started:.1f} s")
                for key in chosen_sections(args):
                    run_section(report, ctx, key)
            finally:
                ctx.close()
    finally:
        shutil.rmtree(opt.parent, ignore_errors=True)
        report.meta["load_average_at_end"] = os.getloadavg()
        report.write(args.out)
    report.print_goals()
    draw_chart(report, args.chart)
    failed = report.failed_sections()
    total = time.perf_counter() - started
    print(f"\n{len(report.sections)} sections in {total:.0f} s; JSON: {args.out}")
    if failed:
        print(f"could not measure everything in: {', '.join(failed)} (see the !! lines above)")
    # A closing line test runners' readers know: sections measured in full, and not.
    print(f"bench: {len(report.sections) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def draw_chart(report: Report, path: Path) -> None:
    found = [s for s in report.sections if s.key == "environment" and s.details.get("scenarios")]
    if not found:
        return
    meta = report.meta
    subtitle = (f"{meta['commit']}{' (modified)' if meta['work_tree_dirty'] else ''}, {meta['started']}, "
                f"{meta['run']} run, {meta['cpus']} CPUs, load {meta['load_average_at_start'][0]:.2f}; "
                f"Node {meta['node']}, Python {meta['python']}; FerretDB (SQLite) as the database")
    if chart.write(path, found[0].details["scenarios"], subtitle):
        print(f"chart: {path}")


def run_section(report: Report, ctx: Context, key: str) -> None:
    title, function = SECTIONS[key]
    section = report.section(key, title)
    reason = skip_reason(key)
    if reason:
        section.details["skipped"] = reason
        print(f"  skipped: {reason}")
        return
    started = time.perf_counter()
    try:
        function(ctx, section)
    except Exception as e:  # noqa: BLE001 - one broken section must not hide the others
        section.error("section", e)
    section.seconds = round(time.perf_counter() - started, 1)
    print(f"  ({section.seconds:.1f} s)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
