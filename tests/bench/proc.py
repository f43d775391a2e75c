"""What the kernel accounts for a process: CPU time (all threads) and memory."""

import os

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of every thread of the process so far (/proc/PID/stat), in seconds.

    The kernel counts in clock ticks (usually 10 ms): measure over enough work that a tick is
    small against it (20,000 requests of ~50 µs is about 100 ticks).
    """
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    fields = stat[stat.rindex(b")") + 2 :].split()
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """utime + stime, in seconds."""
    return sum(cpu_times(pid))


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS (resident now) and VmHWM (the peak resident so far), in KiB (/proc/PID/status)."""
    found = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                found[key] = int(rest.split()[0])
    return found


def mib(kib: float | None) -> float | None:
    return None if kib is None else kib / 1024
