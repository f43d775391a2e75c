"""Soak, the short version (`make soak` runs ten minutes): mixed reads, writes and streamed finds
for 60 s, with the sidecar's RSS and open file descriptors sampled every second.

The goals (RSS growth after warm-up <= 2 MiB, no FD growth) are reported, not enforced; what fails
the test is what no noise explains: a crash, a failed request, descriptors or memory that climb
far past what the clients hold."""

import pytest

from harness import TOOLS_DIR
from reliability import soak

SECONDS = 60
#: More descriptors than this after warm-up is a leak: the clients hold a fixed number of
#: connections, the pool at most 4 more.
FD_LEAK = 8
#: Thirty-two times the goal: growth this large is a leak, not allocator noise.
RSS_LEAK_MIB = 64


@pytest.fixture(scope="module")
def figures():
    return soak.run_soak(SECONDS, TOOLS_DIR / "reliability" / f"soak-{SECONDS}")


def test_the_sidecar_serves_a_minute_of_mixed_load_without_an_error_or_a_crash(figures, record_figure):
    record_figure("soak", "\n" + soak.table(figures) + "\n" + soak.summary(figures))
    assert not figures["crashed"], figures.get("sidecar_log_tail")
    assert figures["exit_code"] == 0, "the sidecar did not drain and exit cleanly at SIGTERM"
    assert figures["errors"] == 0, figures["first_errors"]
    assert figures["requests"] > 0


def test_descriptors_and_memory_do_not_climb_after_warm_up(figures):
    assert figures["fd_growth_after_warmup"] is not None, "too few samples"
    assert figures["fd_growth_after_warmup"] <= FD_LEAK, figures["samples"][-5:]
    assert figures["fds_max"] - figures["fds_at_warmup"] <= FD_LEAK, figures["fds_max"]
    assert figures["rss_growth_after_warmup_mib"] <= RSS_LEAK_MIB, figures["rss_growth_after_warmup_mib"]
