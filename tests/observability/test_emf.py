"""CloudWatch Embedded Metric Format (`MONGO_SIDECAR_METRICS=emf`): one record per window on
stdout, valid against the published EMF schema, with counts equal to the requests made, every
error class included. In standalone mode the window ends every minute and at exit; a window with
no requests writes nothing; without the variable nothing is written at all."""

import threading
import time

from emfcheck import emf_problems, emf_records

TOKEN = "observability-token"
NAMESPACE = "SidecarTest"
ERROR_METRICS = ["ClientErrors", "AuthErrors", "PolicyErrors", "DatabaseErrors", "TimeoutErrors",
                 "OverloadErrors"]


def call(sidecar, action, body, token=TOKEN):
    status, _, _ = sidecar.request("POST", f"/action/{action}", body, token=token)
    return status


def test_one_valid_record_counts_every_request_and_error_class(mongo, database, proxy, start_sidecar):
    mongo[database]["c"].insert_one({"k": 1})
    p = proxy()
    sidecar = start_sidecar(p.uri, env={"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_METRICS": "emf",
                                        "MONGO_SIDECAR_METRICS_NAMESPACE": NAMESPACE,
                                        "MONGO_SIDECAR_MAX_CONCURRENCY": "1",
                                        "AWS_LAMBDA_FUNCTION_NAME": "orders"})
    find = {"database": database, "collection": "c", "filter": {"k": 1}}
    statuses = [call(sidecar, "findOne", find) for _ in range(3)]
    statuses.append(call(sidecar, "findOne", {**find, "filtr": {}}))  # client
    statuses.append(call(sidecar, "findOne", find, token="wrong"))  # auth
    statuses.append(call(sidecar, "findOne", {**find, "filter": {"$where": "true"}}))  # policy
    p.delay_replies("find", 1.0, times=1)
    statuses.append(call(sidecar, "findOne", {**find, "maxTimeMS": 200}))  # timeout
    time.sleep(1.0)
    p.drop_after_request("find", times=2)
    statuses.append(call(sidecar, "findOne", find))  # database: the retry fails too
    p.delay_replies("aggregate", 1.0, times=1)
    slow = threading.Thread(target=lambda: statuses.append(
        call(sidecar, "countDocuments", {"database": database, "collection": "c"})))
    slow.start()
    time.sleep(0.3)
    statuses.append(call(sidecar, "findOne", find))  # overload: the one slot is taken
    slow.join(10)

    sidecar.stop()

    assert sorted(statuses) == sorted([200, 200, 200, 400, 401, 403, 504, 503, 503, 200]), statuses
    records = emf_records(sidecar.log_text())
    assert len(records) == 1, records
    record = records[0]
    assert emf_problems(record) == []
    directive = record["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == NAMESPACE
    assert directive["Dimensions"] == [["FunctionName", "DataSource"]]
    assert (record["FunctionName"], record["DataSource"]) == ("orders", "mongodb-atlas")
    assert record["Requests"] == 10
    assert {name: record[name] for name in ERROR_METRICS} == dict.fromkeys(ERROR_METRICS, 1)
    assert record["DocumentsReturned"] == 3
    assert record["BytesSent"] > 0
    assert 0 < record["LatencyP50"] <= record["LatencyP99"] <= record["LatencyMax"]
    assert record["LatencyMax"] >= 1000, "the slow count took a second"
    assert record["PoolOpen"] >= 1 and record["PoolCheckedOut"] >= 1
    names = {m["Name"] for m in directive["Metrics"]}
    assert {"Requests", "LatencyP50", "LatencyP99", "LatencyMax", "DocumentsReturned", "BytesSent",
            "PoolOpen", "PoolCheckedOut", "PoolCheckoutsWaited", "PoolCheckoutWaitMax",
            *ERROR_METRICS} <= names


def test_a_window_without_requests_writes_nothing(ferretdb, start_sidecar):
    sidecar = start_sidecar(ferretdb.uri, env={"MONGO_SIDECAR_METRICS": "emf"})
    sidecar.stop()
    assert emf_records(sidecar.log_text()) == []


def test_without_the_variable_no_record_is_written(ferretdb, database, start_sidecar):
    sidecar = start_sidecar(ferretdb.uri)
    assert call(sidecar, "findOne", {"database": database, "collection": "c"}, token=None) == 200
    sidecar.stop()
    assert emf_records(sidecar.log_text()) == []


def test_an_unknown_metrics_setting_fails_at_start(ferretdb, start_sidecar):
    from harness import HarnessError

    try:
        start_sidecar(ferretdb.uri, env={"MONGO_SIDECAR_METRICS": "statsd"})
    except HarnessError as e:
        assert "MONGO_SIDECAR_METRICS" in str(e) and "statsd" in str(e)
    else:
        raise AssertionError("an unknown MONGO_SIDECAR_METRICS was accepted")
