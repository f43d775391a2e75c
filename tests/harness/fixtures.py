"""pytest fixtures shared by the suites that run standalone sidecars against FerretDB. A suite's
conftest imports the ones it uses:

    from harness.fixtures import database, ferretdb, mongo, proxy, pytest_runtest_makereport, start_sidecar

A failing test's report carries the log of each sidecar it started.
"""

import re
import shutil

import pytest
from pymongo import MongoClient

from . import HarnessError
from .faultproxy import FaultProxy
from .ferretdb import FerretDB
from .layer import layer_dir
from .sidecar import Sidecar


@pytest.fixture(scope="session")
def ferretdb():
    with FerretDB() as db:
        yield db


@pytest.fixture(scope="session")
def mongo(ferretdb):
    """A direct client, to see what the server holds without going through the sidecar."""
    with MongoClient(ferretdb.uri, directConnection=True) as client:
        yield client


@pytest.fixture(scope="session")
def layer():
    """The layer as Lambda mounts it at /opt: the built zip unpacked (or, with
    MONGO_SIDECAR_BIN set, the same layout assembled from that binary and the client sources)."""
    try:
        opt = layer_dir()
    except HarnessError as e:
        pytest.fail(str(e), pytrace=False)
    yield opt
    shutil.rmtree(opt.parent, ignore_errors=True)


@pytest.fixture
def database(request, mongo):
    """A database of the test's own, named after it and empty at the start."""
    name = "t_" + re.sub(r"[^A-Za-z0-9]+", "_", request.node.name).strip("_")[:60]
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
def start_sidecar(request):
    """start_sidecar(uri, env={...}, **Sidecar kwargs) -> a started standalone Sidecar, stopped
    after the test."""
    started: list[Sidecar] = []
    request.node.sidecars = started

    def start(uri, **kwargs) -> Sidecar:
        sidecar = Sidecar(uri, **kwargs)
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
