"""Soak: mixed reads, writes and streamed finds against one sidecar for a long time, with the
sidecar's RSS and open file descriptors sampled every second.

    python -m reliability.soak --seconds 600      # make soak
    python -m reliability.soak --seconds 60       # what `make test` runs

A few clients, each on its own kept-alive connection, loop over a mix of insertOne, updateOne,
findOne, a small find, a streamed find of a 500-document collection (~230 KB, chunked, as NDJSON, checked
complete) and a deleteMany that keeps the written collection small. Prints a table, writes the
samples (CSV and JSON) and an SVG plot to the output directory.

Figures: requests and errors; RSS growth after warm-up (median of the last 5 samples less the
median of the 5 ending at warm-up; goal <= 2 MiB); FD growth the same way (goal: none).
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from pymongo import MongoClient

from harness import TOOLS_DIR
from harness.ferretdb import FerretDB
from harness.procs import exit_on_sigterm, pid_alive
from harness.sidecar import Sidecar

from .svgplot import Plot

TOKEN = "soak-token"
DATABASE = "soak"
CATALOG_DOCUMENTS = 500
CLIENTS = 4
RSS_GOAL_MIB = 2.0
DEFAULT_OUT = TOOLS_DIR / "reliability" / "soak"
#: Samples each end of the comparison takes the median of, so that one sample's noise is not growth.
WINDOW = 5


@dataclass
class Sample:
    second: int
    rss_kib: int
    fds: int
    requests: int  # in total so far
    errors: int


def warmup_seconds(seconds: float) -> int:
    """A tenth of the run, at least 15 s and at most 60 s."""
    return int(min(60, max(15, seconds / 10)))


def _process_figures(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


class Load:
    """The client threads and their counters."""

    def __init__(self, port: int):
        self.port = port
        self.requests = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._client, args=(i,), daemon=True) for i in range(CLIENTS)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def _client(self, index: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        n = 0
        try:
            while not self._stop.is_set():
                name, body, accept, check = self._operation(index, n)
                error = self._call(conn, name, body, accept, check)
                if error is not None:
                    conn.close()  # start the next request on a fresh connection
                with self._lock:
                    self.requests += 1
                    if error is not None:
                        self.errors.append(error)
                n += 1
        finally:
            conn.close()

    @staticmethod
    def _operation(index: int, n: int):
        """The n-th request of client `index`: (action, body, Accept, check of the answer)."""
        base = {"database": DATABASE}
        marker = f"c{index}-{n}"
        mix = [
            ("insertOne", base | {"collection": "events", "document": {"client": index, "n": n, "marker": marker}},
             None, lambda r: "insertedId" in json.loads(r)),
            ("findOne", base | {"collection": "catalog", "filter": {"_id": n % CATALOG_DOCUMENTS}},
             None, lambda r: json.loads(r)["document"] is not None),
            ("updateOne", base | {"collection": "catalog", "filter": {"_id": n % CATALOG_DOCUMENTS},
                                  "update": {"$inc": {"views": 1}}},
             None, lambda r: json.loads(r)["matchedCount"] == 1),
            ("find", base | {"collection": "events", "filter": {"client": index}, "sort": {"n": -1}, "limit": 20},
             None, lambda r: isinstance(json.loads(r)["documents"], list)),
            ("find", base | {"collection": "catalog", "filter": {}},
             "application/x-ndjson", lambda r: r.count(b"\n") == CATALOG_DOCUMENTS),
            ("deleteMany", base | {"collection": "events", "filter": {"client": index, "n": {"$lt": n - 50}}},
             None, lambda r: "deletedCount" in json.loads(r)),
        ]
        return mix[n % len(mix)]

    def _call(self, conn, name, body, accept, check) -> str | None:
        headers = {"Content-Type": "application/json", "apiKey": TOKEN}
        if accept:
            headers["Accept"] = accept
        try:
            conn.request("POST", f"/action/{name}", body=json.dumps(body), headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as e:
            return f"{name}: {type(e).__name__}: {e}"
        if response.status != 200:
            return f"{name}: {response.status} {raw[:200]!r}"
        try:
            ok = check(raw)
        except (ValueError, KeyError, TypeError) as e:
            return f"{name}: unreadable answer: {e}: {raw[:200]!r}"
        return None if ok else f"{name}: unexpected answer {raw[:200]!r}"


def growth(samples: list[Sample], warmup: int, field: str) -> float:
    """Median of the last WINDOW samples less the median of the WINDOW ending at warm-up."""
    at_warmup = [getattr(s, field) for s in samples if warmup - WINDOW < s.second <= warmup]
    at_end = [getattr(s, field) for s in samples[-WINDOW:]]
    return statistics.median(at_end) - statistics.median(at_warmup)


def run_soak(seconds: float, out_dir: Path, log=print) -> dict:
    warmup = warmup_seconds(seconds)
    with FerretDB() as db:
        with MongoClient(db.uri, directConnection=True) as mongo:
            padding = "x" * 400
            mongo[DATABASE]["catalog"].insert_many(
                [{"_id": i, "sku": f"sku-{i}", "views": 0, "padding": padding} for i in range(CATALOG_DOCUMENTS)])
        with Sidecar(db.uri, env={"MONGO_SIDECAR_TOKEN": TOKEN, "AWS_LAMBDA_LOG_LEVEL": "warn"}) as sidecar:
            pid = sidecar.pid()
            load = Load(sidecar.port)
            samples: list[Sample] = []
            started = time.monotonic()
            load.start()
            crashed = False
            try:
                for second in range(1, int(seconds) + 1):
                    time.sleep(max(0.0, started + second - time.monotonic()))
                    if not pid_alive(pid):
                        crashed = True
                        break
                    rss, fds = _process_figures(pid)
                    samples.append(Sample(second, rss, fds, load.requests, len(load.errors)))
                    if second % 10 == 0:
                        log(f"  {second:4d} s  RSS {rss / 1024:6.2f} MiB  FDs {fds:3d}  requests {load.requests}")
            finally:
                load.stop()
            exit_code = sidecar.stop()
            sidecar_log = sidecar.log_text()
    figures = {
        "seconds": seconds,
        "warmup_seconds": warmup,
        "clients": CLIENTS,
        "requests": load.requests,
        "errors": len(load.errors),
        "first_errors": load.errors[:10],
        "crashed": crashed,
        "exit_code": exit_code,
        "requests_per_second": round(load.requests / seconds, 1),
        "rss_start_mib": round(samples[0].rss_kib / 1024, 2) if samples else None,
        "rss_at_warmup_mib": None,
        "rss_peak_mib": round(max(s.rss_kib for s in samples) / 1024, 2) if samples else None,
        "rss_growth_after_warmup_mib": None,
        "rss_goal_mib": RSS_GOAL_MIB,
        "fds_at_warmup": None,
        "fds_max": max(s.fds for s in samples) if samples else None,
        "fd_growth_after_warmup": None,
        "samples": [asdict(s) for s in samples],
    }
    if len(samples) >= warmup + WINDOW:
        figures["rss_at_warmup_mib"] = round(samples[warmup - 1].rss_kib / 1024, 2)
        figures["rss_growth_after_warmup_mib"] = round(growth(samples, warmup, "rss_kib") / 1024, 2)
        figures["fds_at_warmup"] = samples[warmup - 1].fds
        figures["fd_growth_after_warmup"] = growth(samples, warmup, "fds")
    if crashed:
        figures["sidecar_log_tail"] = sidecar_log[-4000:]
    write_outputs(figures, out_dir)
    return figures


def write_outputs(figures: dict, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "soak.json").write_text(json.dumps(figures, indent=2))
    rows = ["second,rss_kib,fds,requests,errors"] + [
        f"{s['second']},{s['rss_kib']},{s['fds']},{s['requests']},{s['errors']}" for s in figures["samples"]]
    (out_dir / "soak.csv").write_text("\n".join(rows) + "\n")
    (out_dir / "soak.svg").write_text(plot(figures))


def plot(figures: dict) -> str:
    samples = figures["samples"]
    chart = Plot(f"Sidecar under a {figures['seconds']:.0f} s soak: RSS and open FDs, every second",
                 x_label="seconds", y_label="RSS (MiB)", y2_label="open file descriptors")
    chart.series("RSS (MiB)", [(s["second"], s["rss_kib"] / 1024) for s in samples], "#1f77b4")
    chart.series("open FDs", [(s["second"], s["fds"]) for s in samples], "#ff7f0e", axis="right")
    chart.mark_x(figures["warmup_seconds"])
    return chart.svg()


def table(figures: dict, every: int = 10) -> str:
    lines = ["second  RSS MiB  FDs  requests  errors"]
    for s in figures["samples"]:
        if s["second"] % every == 0 or s["second"] == 1:
            lines.append(f"{s['second']:6d}  {s['rss_kib'] / 1024:7.2f}  {s['fds']:3d}  {s['requests']:8d}  {s['errors']:6d}")
    return "\n".join(lines)


def summary(figures: dict) -> str:
    rss_growth = figures["rss_growth_after_warmup_mib"]
    goal = "met" if rss_growth is not None and rss_growth <= figures["rss_goal_mib"] else "NOT met"
    fd_growth = figures["fd_growth_after_warmup"]
    return "\n".join([
        f"{figures['seconds']:.0f} s, {figures['clients']} clients: {figures['requests']} requests "
        f"({figures['requests_per_second']}/s), {figures['errors']} errors, crashed: {figures['crashed']}",
        f"RSS: {figures['rss_start_mib']} MiB at 1 s, {figures['rss_at_warmup_mib']} MiB at warm-up "
        f"({figures['warmup_seconds']} s), peak {figures['rss_peak_mib']} MiB; growth after warm-up "
        f"{rss_growth} MiB (goal <= {figures['rss_goal_mib']} MiB: {goal})",
        f"FDs: {figures['fds_at_warmup']} at warm-up, max {figures['fds_max']}; growth after warm-up {fd_growth} "
        f"(goal none: {'met' if fd_growth is not None and fd_growth <= 0 else 'NOT met'})",
    ])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reliability.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for soak.json, soak.csv, soak.svg")
    args = parser.parse_args(argv)
    exit_on_sigterm()
    figures = run_soak(args.seconds, args.out)
    print()
    print(table(figures, every=10 if args.seconds <= 120 else 60))
    print()
    print(summary(figures))
    print(f"\nsamples and plot: {args.out}/soak.csv, soak.json, soak.svg")
    return 1 if figures["crashed"] or figures["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
