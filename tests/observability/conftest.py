"""Fixtures for the observability suite: a real FerretDB, fault-injecting proxies and standalone
sidecars (harness/fixtures.py).

    make test-observability
"""

from harness.fixtures import (  # noqa: F401 - fixtures and the report hook, found by name
    database,
    ferretdb,
    layer,
    mongo,
    proxy,
    pytest_runtest_makereport,
    start_sidecar,
)
