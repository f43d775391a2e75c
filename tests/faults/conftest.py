"""Fixtures for the fault suites: a real FerretDB, fault-injecting proxies in front of it, and
standalone sidecars started with the settings a test needs (harness/fixtures.py). A failing test
shows each sidecar's log.

Run (from the repository root, after `make tools layer`):

    make test-faults
    MONGO_SIDECAR_BIN=target/debug/mongo-sidecar .tools/venv/bin/python -m pytest tests/faults
"""

import pytest

from harness import HarnessError, sidecar_binary
from harness.fixtures import (  # noqa: F401 - fixtures and the report hook, found by name
    database,
    ferretdb,
    mongo,
    proxy,
    pytest_runtest_makereport,
    start_sidecar,
)


@pytest.fixture(scope="session")
def sidecar_bin():
    try:
        return sidecar_binary()
    except HarnessError as e:
        pytest.fail(str(e), pytrace=False)
