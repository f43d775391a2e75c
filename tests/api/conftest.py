"""Fixtures for the API tests: a MongoDB-compatible server, the sidecar in standalone mode with a
token (`sidecar.token`), and the OpenAPI document."""

import json
import os

import pytest

from harness import REPO_ROOT, HarnessError, sidecar_binary
from harness.ferretdb import URI_ENV_VAR, FerretDB
from harness.sidecar import Sidecar

DOCUMENT = REPO_ROOT / "extension" / "openapi.json"
TOKEN = "api-test-token"

_summary: list[str] = []


@pytest.fixture(scope="session")
def openapi_path():
    return DOCUMENT


@pytest.fixture(scope="session")
def openapi(openapi_path):
    return json.loads(openapi_path.read_text())


@pytest.fixture(scope="session")
def mongo_uri():
    """$MONGO_SIDECAR_TEST_URI (set by `harness.ferretdb run`), else a FerretDB of our own."""
    uri = os.environ.get(URI_ENV_VAR)
    if uri:
        yield uri
        return
    with FerretDB() as db:
        yield db.uri


@pytest.fixture(scope="session")
def sidecar_bin():
    """$MONGO_SIDECAR_BIN, or target/release/mongo-sidecar. Never built here: a release build
    is slow on a small machine; set MONGO_SIDECAR_BIN=target/debug/mongo-sidecar locally."""
    try:
        return sidecar_binary()
    except HarnessError as e:
        pytest.fail(str(e), pytrace=False)


@pytest.fixture
def start_sidecar(request, mongo_uri, sidecar_bin):
    """start_sidecar(uri=None, wait_ready=True, **env) -> a started standalone sidecar that checks
    TOKEN, on the test server unless `uri` names another; its log is attached to a failing
    test's report, and it is stopped after the test."""
    started: list[Sidecar] = []
    request.node.sidecars = started

    def start(uri: str | None = None, wait_ready: bool = True, **env) -> Sidecar:
        sidecar = Sidecar(uri or mongo_uri, env={"MONGO_SIDECAR_TOKEN": TOKEN, **env}, wait_ready=wait_ready)
        sidecar.token = TOKEN
        started.append(sidecar)
        return sidecar.start()

    yield start
    for sidecar in started:
        sidecar.stop()


@pytest.fixture(scope="session")
def shared_sidecar(request, mongo_uri, sidecar_bin):
    """One sidecar for the tests that do not disturb its state."""
    with Sidecar(mongo_uri, env={"MONGO_SIDECAR_TOKEN": TOKEN}) as sidecar:
        sidecar.token = TOKEN
        yield sidecar


@pytest.fixture
def sidecar(request, shared_sidecar):
    request.node.sidecars = [shared_sidecar]
    return shared_sidecar


@pytest.fixture
def report_line():
    """report_line(text): printed in the terminal summary after the run."""
    return _summary.append


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for i, sidecar in enumerate(getattr(item, "sidecars", [])):
            report.sections.append((f"sidecar {i} log (last 200 lines)",
                                    "\n".join(sidecar.log_text().splitlines()[-200:])))
    return report


def pytest_terminal_summary(terminalreporter):
    if _summary:
        terminalreporter.section("API tests")
        for line in _summary:
            terminalreporter.write_line(line)
