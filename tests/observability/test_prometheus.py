"""`GET /metrics`: the Prometheus text exposition, read by Prometheus' own Python parser, with
counters equal to the requests made; behind the token unless MONGO_SIDECAR_METRICS_PUBLIC=true."""

from prometheus_client.parser import text_string_to_metric_families

TOKEN = "observability-token"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    """(sample name, sorted labels) -> value, for every sample of every family."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def metrics(sidecar, token=TOKEN):
    status, headers, raw = sidecar.request("GET", "/metrics", token=token)
    return status, headers, raw.decode()


def test_the_counters_match_the_requests_made(mongo, database, ferretdb, start_sidecar):
    mongo[database]["c"].insert_one({"k": 1})
    sidecar = start_sidecar(ferretdb.uri, env={"MONGO_SIDECAR_TOKEN": TOKEN})
    find = {"database": database, "collection": "c", "filter": {"k": 1}}
    for body, action in [(find, "findOne"), (find, "findOne"),
                         ({"database": database, "collection": "c", "document": {"k": 2}}, "insertOne"),
                         ({**find, "bogus": 1}, "findOne"),
                         ({**find, "filter": {"$where": "1"}}, "findOne")]:
        sidecar.request("POST", f"/action/{action}", body, token=TOKEN)
    sidecar.request("POST", "/action/findOne", find, token="wrong")

    status, headers, text = metrics(sidecar)

    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(text)
    requests = lambda action, code: found.get(  # noqa: E731
        ("mongo_sidecar_requests_total", (("action", action), ("status", code))))
    assert requests("findOne", "200") == 2
    assert requests("insertOne", "200") == 1
    assert requests("findOne", "400") == 1
    assert requests("findOne", "403") == 1
    assert requests("findOne", "401") == 1
    errors = {labels[0][1]: v for (name, labels), v in found.items() if name == "mongo_sidecar_errors_total"}
    assert errors == {"client": 1, "auth": 1, "policy": 1, "database": 0, "timeout": 0, "overload": 0}
    assert found[("mongo_sidecar_request_duration_seconds_count", (("action", "findOne"),))] == 5
    assert found[("mongo_sidecar_request_duration_seconds_bucket", (("action", "findOne"), ("le", "+Inf")))] == 5
    assert found[("mongo_sidecar_documents_returned_total", ())] == 2
    assert found[("mongo_sidecar_pool_connections", (("data_source", "mongodb-atlas"), ("state", "open")))] >= 1
    state = {dict(labels)["state"]: v for (name, labels), v in found.items()
             if name == "mongo_sidecar_data_source_state"}
    assert state == {"ready": 1, "warming": 0, "unavailable": 0}


def test_the_endpoint_needs_the_token_unless_public(ferretdb, start_sidecar):
    private = start_sidecar(ferretdb.uri, env={"MONGO_SIDECAR_TOKEN": TOKEN})
    assert metrics(private, token=None)[0] == 400
    assert metrics(private, token="wrong")[0] == 401
    public = start_sidecar(ferretdb.uri, env={"MONGO_SIDECAR_TOKEN": TOKEN, "MONGO_SIDECAR_METRICS_PUBLIC": "true"})
    status, _, text = metrics(public, token=None)
    assert status == 200 and "mongo_sidecar_data_source_state" in text
