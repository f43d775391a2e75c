"""Fixtures for the reliability suite: a FerretDB per session, a sidecar starter, and the figures
each test measures, printed after the run ("figures" section) and kept in the JUnit properties."""

import pytest

from harness.ferretdb import FerretDB
from harness.sidecar import Sidecar

_figures: list[tuple[str, str, str]] = []


@pytest.fixture(scope="session")
def ferretdb():
    with FerretDB() as db:
        yield db


@pytest.fixture
def start_sidecar(request):
    """start_sidecar(uri, **Sidecar kwargs) -> a started standalone sidecar, stopped after the
    test; its log is attached to a failing test's report."""
    started: list[Sidecar] = []
    request.node.sidecars = started

    def start(uri: str | None, **kwargs) -> Sidecar:
        sidecar = Sidecar(uri, **kwargs)
        started.append(sidecar)
        return sidecar.start()

    yield start
    for sidecar in started:
        sidecar.stop()


@pytest.fixture
def record_figure(request, record_property):
    """record_figure(what, text): printed after the run, with the test's name."""

    def record(what: str, text: str) -> None:
        record_property(what, text)
        _figures.append((request.node.name, what, text))

    return record


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.failed:
        for i, sidecar in enumerate(getattr(item, "sidecars", [])):
            report.sections.append((f"sidecar {i} log", sidecar.log_text()[-20000:]))
    return report


def pytest_terminal_summary(terminalreporter):
    if _figures:
        terminalreporter.section("figures")
        for test, what, text in _figures:
            terminalreporter.write_line(f"{what}: {text}    [{test}]")
