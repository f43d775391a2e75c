"""Under the Lambda emulator, each INVOKE ends the previous invocation's metrics window and
SHUTDOWN ends the last one: two invocations give two EMF records, each with its own counts."""

from pathlib import Path

from emfcheck import emf_problems, emf_records
from harness.lambda_env import ExecutionEnvironment

PROBE = Path(__file__).parent / "functions" / "probe"


def test_two_invocations_give_two_records_with_their_own_counts(layer, ferretdb, database):
    fn = ExecutionEnvironment("python", PROBE, layer_dir=layer, name="probe",
                              env={"MONGODB_URI": ferretdb.uri, "MONGO_SIDECAR_METRICS": "emf"})
    try:
        fn.start()
        first = fn.invoke({"database": database, "finds": 2, "denied": 1})
        second = fn.invoke({"database": database, "finds": 4})
        fn.stop()
    finally:
        fn.close()

    assert first.body == {"statuses": [200, 200, 403]}, first.body
    assert second.body == {"statuses": [200, 200, 200, 200]}, second.body
    records = emf_records(fn.log_text())
    assert [emf_problems(r) for r in records] == [[], []], records
    assert [(r["Requests"], r["PolicyErrors"]) for r in records] == [(3, 1), (4, 0)]
    assert {(r["FunctionName"], r["DataSource"]) for r in records} == {("probe", "mongodb-atlas")}
