"""Fixtures for the fault suites: a real FerretDB, fault-injecting proxies in front of it, and
standalone sidecars started with the settings a test needs. A failing test shows each sidecar's log.

Run (from the repository root, after `make tools layer`):

    make test-faults
    MONGO_SIDECAR_BIN=target/debug/mongo-sidecar .tools/venv/bin/python -m pytest tests/faults
"""

import re

import pytest
from pymongo import MongoClient

from harness import HarnessError, sidecar_binary
from harness.faultproxy import FaultProxy
from harness.ferretdb import FerretDB
from harness.sidecar import Sidecar


@pytest.fixture(scope="session")
def sidecar_bin():
    try:
        return sidecar_binary()
    except HarnessError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture(scope="session")
def ferretdb():
    with FerretDB() as db:
        yield db


@pytest.fixture(scope="session")
def mongo(ferretdb):
    """A direct client, to see what the server holds without going through the sidecar."""
    with MongoClient(ferretdb.uri, directConnection=True) as client:
        yield client


@pytest.fixture
def database(request, mongo):
    """A database of the test's own, named after it and empty at the start."""
    name = "f_" + re.sub(r"[^A-Za-z0-9]+", "_", request.node.name).strip("_")[:60]
    mongo.drop_database(name)
    return name


@pytest.fixture
def proxy(ferretdb):
    """proxy() -> a started FaultProxy in front of the test's FerretDB."""
    proxies: list[FaultProxy] = []

    def start() -> FaultProxy:
        p = FaultProxy(ferretdb.port).start()
        proxies.append(p)
        return p

    yield start
    for p in proxies:
        p.close()


@pytest.fixture
def start_sidecar(request, sidecar_bin):
    """start_sidecar(uri, env={...}, **kwargs) -> a started standalone Sidecar, stopped after the test."""
    started: list[Sidecar] = []
    request.node.sidecars = started

    def start(uri, env=None, **kwargs) -> Sidecar:
        sidecar = Sidecar(uri, env=env, **kwargs)
        started.append(sidecar)
        return sidecar.start()

    yield start
    for sidecar in started:
        sidecar.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for i, sidecar in enumerate(getattr(item, "sidecars", [])):
            report.sections.append((f"sidecar {i} log", sidecar.log_text()[-20000:]))
    return report
