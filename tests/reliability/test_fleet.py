"""Twenty execution environments on one server, with the sidecar and, beside them in the same run,
with the Node.js driver in-process (`reliability.fleet`; `make fleet` runs a hundred). The figures
go to .tools/reliability/fleet-20.json, which `python -m reliability.model` reads."""

import json

import pytest

from harness import TOOLS_DIR
from reliability import fleet, model

ENVIRONMENTS = 20
#: The sidecar's defaults: one monitoring connection, minPoolSize 1, maxPoolSize 4.
SIDECAR_AT_REST, SIDECAR_MOST = 2, 1 + 4


@pytest.fixture(scope="module")
def figures():
    result = fleet.run(fleet.Workload(environments=ENVIRONMENTS), together=True)
    out = TOOLS_DIR / "reliability" / f"fleet-{ENVIRONMENTS}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return result


def check_server_sees_exactly_the_environments(fleet_figures: dict) -> None:
    server, each = fleet_figures["server"], fleet_figures["per_environment"]
    for state in ("at_rest", "after_load", "after_rest"):
        assert server[state] == each[state]["sum"], (
            f"{state}: the server holds {server[state]} connections, the environments {each[state]['sum']}")


def test_every_invocation_succeeds_in_both_fleets(figures):
    for data_path, fleet_figures in figures["fleets"].items():
        assert fleet_figures["failures"] == [], (data_path, fleet_figures["failures"][:3])
        assert fleet_figures["invocations"] == ENVIRONMENTS * (1 + figures["workload"]["invocations"])


def test_the_server_holds_n_times_the_sidecars_per_environment_count_and_back_after_the_load(figures, record_figure):
    sidecar = figures["fleets"]["sidecar"]
    server, each = sidecar["server"], sidecar["per_environment"]

    check_server_sees_exactly_the_environments(sidecar)
    assert each["at_rest"]["min"] == each["at_rest"]["max"] == SIDECAR_AT_REST, each["at_rest"]
    assert server["at_rest"] == ENVIRONMENTS * SIDECAR_AT_REST
    # Right after the load, every environment still holds what it opened under it. (The peak
    # sampled during the load is reported, not checked: a connection a client has just closed
    # still counts at the server until the server reads its end.)
    assert each["after_load"]["max"] <= SIDECAR_MOST, each["after_load"]
    assert server["after_load"] <= ENVIRONMENTS * SIDECAR_MOST, server
    assert server["after_rest"] == server["at_rest"], f"not back to {server['at_rest']} after the rest: {server}"
    record_figure("fleet", "\n" + fleet.summary(figures))
    record_figure("model", "\n" + model.render(model.table(model.from_fleet(figures))))


def test_the_server_sees_exactly_the_drivers_connections_too(figures):
    check_server_sees_exactly_the_environments(figures["fleets"]["driver"])


def test_after_shutdown_of_every_sidecar_the_server_holds_none_of_their_connections(figures):
    shutdown = figures["fleets"]["sidecar"]["shutdown"]

    assert shutdown["server_zero_after_last_sigterm_ms"] is not None, "connections left 30 s after SHUTDOWN"
    assert shutdown["server_zero_after_last_sigterm_ms"] <= fleet.SHUTDOWN_BOUND_MS, shutdown
    assert shutdown["extensions_exited_by_themselves"] == ENVIRONMENTS, shutdown
    assert shutdown["extensions_killed"] == 0, shutdown
