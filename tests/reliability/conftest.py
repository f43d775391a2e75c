"""Fixtures for the reliability suite: a FerretDB per session, a sidecar starter, and the figures
each test measures, printed after the run ("figures" section) and kept in the JUnit properties."""

import pytest

from harness.fixtures import (  # noqa: F401 - fixtures and the report hook, found by name
    ferretdb,
    pytest_runtest_makereport,
    start_sidecar,
)

_figures: list[tuple[str, str, str]] = []


@pytest.fixture
def record_figure(request, record_property):
    """record_figure(what, text): printed after the run, with the test's name."""

    def record(what: str, text: str) -> None:
        record_property(what, text)
        _figures.append((request.node.name, what, text))

    return record


def pytest_terminal_summary(terminalreporter):
    if _figures:
        terminalreporter.section("figures")
        for test, what, text in _figures:
            terminalreporter.write_line(f"{what}: {text}    [{test}]")
