"""5. Memory, from the kernel (/proc/PID/status): resident idle after start, the peak under 32
concurrent findOne clients, and the peak's growth while one `find` streams ~50 MB.

Each measurement gets a fresh sidecar, so that one peak does not hide another.
"""

import http.client
import json
import time

from . import data
from .context import TOKEN, Context
from .cpu import findone_request
from .proc import memory_kib, mib
from .rawhttp import Target, concurrent, sequential
from .report import Goal, Section

STREAM_GROWTH_GOAL_MIB = 16
IDLE_GOAL_MIB = 8
UNDER_LOAD_GOAL_MIB = 12
SETTLE_S = 0.5
READ_BYTES = 64 * 1024


def _idle_and_concurrent(ctx: Context, section: Section) -> None:
    w = ctx.workload
    with ctx.sidecar(unix_socket=False) as sidecar:
        time.sleep(SETTLE_S)
        idle = memory_kib(sidecar.pid())
        section.add("RSS idle after start", mib(idle["VmRSS"]), "MiB", Goal(IDLE_GOAL_MIB),
                    note="prototype 7.5 MiB; axum echo 3-6 MiB")
        target = Target(port=sidecar.port)
        request = findone_request(ctx)
        sequential(target, request, 100)
        load = concurrent(target, request, w.concurrent_clients, w.concurrent_seconds)
        peak = memory_kib(sidecar.pid())
        time.sleep(SETTLE_S)
        after = memory_kib(sidecar.pid())
    rate = load["ok"] / load["seconds"]
    note = f"{load['ok']:,} findOne in {load['seconds']:.1f} s ({rate:,.0f}/s)"
    if load["other"]:
        note += f"; other answers {load['other']}"
    section.add(f"peak RSS (VmHWM) under {w.concurrent_clients} concurrent clients", mib(peak["VmHWM"]), "MiB",
                Goal(UNDER_LOAD_GOAL_MIB), note=note + "; prototype 10.1 MiB")
    section.add("RSS after the load, settled", mib(after["VmRSS"]), "MiB")
    section.details.update(idle_kib=idle, under_load_kib=peak, after_load_kib=after, load=load)


def _stream_once(ctx: Context, accept: str | None) -> dict:
    """One fresh sidecar, one `find` of the whole STREAM collection, read and discarded chunk by
    chunk as it arrives; the sidecar's memory before and after."""
    # A slow machine must not cut the stream at the default 30 s operation limit.
    with ctx.sidecar(env={"MONGO_SIDECAR_MAX_TIME_MS": "600000"}, unix_socket=False) as sidecar:
        conn = http.client.HTTPConnection("127.0.0.1", sidecar.port, timeout=600)
        headers = {"Content-Type": "application/json", "apiKey": TOKEN} | ({"Accept": accept} if accept else {})
        # A small read first, so the connection and the pool are as a handler would find them.
        conn.request("POST", "/action/findOne", json.dumps({"database": data.DATABASE, "collection": data.STREAM}),
                     headers)
        conn.getresponse().read()
        time.sleep(SETTLE_S)
        before = memory_kib(sidecar.pid())
        started = time.perf_counter()
        conn.request("POST", "/action/find", json.dumps({"database": data.DATABASE, "collection": data.STREAM}),
                     headers)
        response = conn.getresponse()
        received = lines = 0
        first_byte_ms = (time.perf_counter() - started) * 1000
        tail = b""
        while chunk := response.read1(READ_BYTES):
            received += len(chunk)
            lines += chunk.count(b"\n")
            tail = (tail + chunk)[-2:]
        seconds = time.perf_counter() - started
        after = memory_kib(sidecar.pid())
        conn.close()
        return {
            "status": response.status,
            "content_type": response.getheader("Content-Type"),
            "chunked": (response.getheader("Transfer-Encoding") or "") == "chunked",
            "bytes": received,
            "lines": lines,
            "complete": tail == b"]}" if not accept else lines == ctx.stream_count,
            "seconds": seconds,
            "first_byte_ms": first_byte_ms,
            "before_kib": before,
            "after_kib": after,
            "hwm_growth_kib": after["VmHWM"] - before["VmHWM"],
        }


def run(ctx: Context, section: Section) -> None:
    _idle_and_concurrent(ctx, section)
    count = ctx.workload.stream_documents
    started = time.perf_counter()
    ctx.fill_stream(count)
    section.details["stream_insert"] = {"documents": count, "document_bson_bytes": data.bson_size(data.LARGE_BYTES),
                                        "seconds": time.perf_counter() - started}
    for label, accept in (("JSON", None), ("NDJSON", "application/x-ndjson")):
        try:
            m = _stream_once(ctx, accept)
        except Exception as e:  # noqa: BLE001 - report, go on with the next
            section.error(f"stream {label}", e)
            continue
        section.details[f"stream {label}"] = m
        mb = m["bytes"] / 1e6
        note = (f"{count:,} docs, {mb:.1f} MB in {m['seconds']:.2f} s ({mb / m['seconds']:.0f} MB/s), "
                f"idle VmHWM {mib(m['before_kib']['VmHWM']):.1f} MiB -> {mib(m['after_kib']['VmHWM']):.1f} MiB")
        if m["status"] != 200 or not m["complete"]:
            note += f"; INCOMPLETE (status {m['status']})"
        section.add(f"peak RSS growth streaming one find, {label}", mib(m["hwm_growth_kib"]), "MiB",
                    Goal(STREAM_GROWTH_GOAL_MIB), note=note)
