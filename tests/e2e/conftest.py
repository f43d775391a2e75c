"""Fixtures for the end-to-end tests: one FerretDB per session, the extension binary, and
Lambda execution environments whose logs are attached to a failing test's report."""

import re

import pytest

from harness.fixtures import ferretdb, layer, mongo  # noqa: F401 - fixtures, found by name
from harness.lambda_env import ExecutionEnvironment, sample_function_dir

_timings: list[tuple[str, str, float, str]] = []


@pytest.fixture(scope="session")
def sidecar_bin(layer):
    """The extension binary, as the layer ships it."""
    return layer / "extensions" / "mongo-sidecar"


@pytest.fixture
def database(request, mongo):
    """A database of the test's own, named after it and empty at the start."""
    name = "e2e_" + re.sub(r"[^A-Za-z0-9]+", "_", request.node.name).strip("_")
    name = name[:63]
    mongo.drop_database(name)
    return name


@pytest.fixture
def start_env(request, ferretdb, layer, database):
    """start_env(runtime, **kwargs) -> a started ExecutionEnvironment for a sample function,
    using the test's database; every environment is closed after the test."""
    envs: list[ExecutionEnvironment] = []
    request.node.lambda_envs = envs

    def start(runtime: str, **kwargs) -> ExecutionEnvironment:
        env = {"MONGODB_URI": ferretdb.uri, "MONGODB_DATABASE": database} | kwargs.pop("env", {})
        fn = ExecutionEnvironment(runtime, sample_function_dir(runtime), layer_dir=layer, env=env, **kwargs)
        envs.append(fn)
        return fn.start()

    yield start
    for fn in envs:
        fn.close()


@pytest.fixture
def record_timing(request, record_property):
    """record_timing(what, value, unit="ms"): kept in the JUnit properties and printed after the run."""

    def record(what: str, value: float, unit: str = "ms") -> None:
        record_property(what, f"{value:.1f} {unit}")
        _timings.append((request.node.name, what, value, unit))

    return record


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Attach each environment's log (emulator, runtime, function, extension) to a failure."""
    report = yield
    if report.failed:
        for i, fn in enumerate(getattr(item, "lambda_envs", [])):
            report.sections.append((f"Lambda environment {i} ({fn.runtime}) log", fn.log_text()))
    return report


def pytest_terminal_summary(terminalreporter):
    if _timings:
        terminalreporter.section("figures")
        for test, what, value, unit in _timings:
            terminalreporter.write_line(f"{value:9.1f} {unit:<5} {what:<34} {test}")
