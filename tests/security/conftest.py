"""Fixtures for the security suites: the extension binary, a database, and sidecars started
with the settings a test needs. Helpers live in secsupport.py.

Run (from the repository root):

    MONGO_SIDECAR_BIN=target/debug/mongo-sidecar PYTHONPATH=tests \\
        .tools/venv/bin/python -m harness.ferretdb run -- .tools/venv/bin/python -m pytest tests/security

Without MONGO_SIDECAR_BIN the debug binary is built first; without MONGO_SIDECAR_TEST_URI a
FerretDB of the suite's own is started.
"""

import os
import subprocess

import pytest

from harness import REPO_ROOT, HarnessError, sidecar_binary
from harness.ferretdb import URI_ENV_VAR, FerretDB
from harness.sidecar import Sidecar
from secsupport import TALLIES


def pytest_terminal_summary(terminalreporter):
    if not TALLIES:
        return
    terminalreporter.section("security suite tallies")
    for title, counts in TALLIES.items():
        if isinstance(counts, str):
            terminalreporter.write_line(f"{title}: {counts}")
            continue
        total = sum(counts.values())
        parts = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: str(kv[0])))
        terminalreporter.write_line(f"{title}: {total} ({parts})")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture(scope="session")
def sidecar_bin():
    """The extension: $MONGO_SIDECAR_BIN as given, or else the debug build, built now."""
    if not os.environ.get("MONGO_SIDECAR_BIN"):
        build = subprocess.run(["cargo", "build", "-p", "mongo-sidecar"], cwd=REPO_ROOT)
        if build.returncode != 0:
            pytest.fail("cargo build -p mongo-sidecar failed", pytrace=False)
        os.environ["MONGO_SIDECAR_BIN"] = str(REPO_ROOT / "target" / "debug" / "mongo-sidecar")
    try:
        return sidecar_binary()
    except HarnessError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def mongo_uri():
    """The server under test: $MONGO_SIDECAR_TEST_URI (from `harness.ferretdb run`) or one
    started for the session."""
    uri = os.environ.get(URI_ENV_VAR)
    if uri:
        yield uri
        return
    with FerretDB() as db:
        yield db.uri


@pytest.fixture(scope="session")
def mongo(mongo_uri):
    """A direct client, to check what reached the database without going through the sidecar."""
    from pymongo import MongoClient

    with MongoClient(mongo_uri, directConnection=True, serverSelectionTimeoutMS=5000) as client:
        yield client


@pytest.fixture
def start_sidecar(request, sidecar_bin):
    """start_sidecar(uri, env, **kwargs) -> a started Sidecar, stopped after the test; on a
    failure its log is attached to the report."""
    started: list[Sidecar] = []

    def start(uri, env=None, **kwargs) -> Sidecar:
        sc = Sidecar(uri, env or {}, **kwargs)
        started.append(sc)
        return sc.start()

    yield start
    report = getattr(request.node, "rep_call", None)
    for sc in started:
        sc.stop()
        if report is not None and report.failed:
            request.node.add_report_section("call", f"sidecar log (port {sc.port})", sc.log_text()[-20000:])
