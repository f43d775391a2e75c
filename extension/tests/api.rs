//! The query API against a real MongoDB-wire server (FerretDB in `make test`), through the
//! router in-process. `MONGO_SIDECAR_TEST_URI` names the server (`make test-rust` runs these over
//! plain TCP and again over TLS). Without a server they cannot run: `cargo test` lists them as
//! ignored, with the reason, and `cargo test -- --include-ignored` without the variable fails.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use mongo_sidecar::config::Config;
use mongo_sidecar::http::{AppState, router};
use mongo_sidecar::invocation::Invocation;
use mongo_sidecar::metrics::Metrics;
use mongo_sidecar::mongo::DataSources;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Why these tests are ignored by a plain `cargo test`.
const NEEDS_A_SERVER: &str =
    "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these";

fn test_uri() -> String {
    match std::env::var("MONGO_SIDECAR_TEST_URI") {
        Ok(uri) if !uri.is_empty() => uri,
        _ => panic!("MONGO_SIDECAR_TEST_URI is not set: {NEEDS_A_SERVER}"),
    }
}

struct Api {
    router: Router,
    state: Arc<AppState>,
    db: String,
}

/// A router over a real server, with `env` on top of `MONGODB_URI`; each test gets its own
/// database, named after it.
async fn api(test: &str, env: &[(&str, &str)]) -> Api {
    let uri = test_uri();
    let mut vars = vec![("MONGODB_URI".to_owned(), uri)];
    vars.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
    let config = Arc::new(Config::from_vars(vars).expect("valid config"));
    let sources = Arc::new(DataSources::new(&config));
    let mut uris = Vec::new();
    for source_config in config.sources() {
        uris.push(
            mongo_sidecar::secrets::resolve(&source_config.uri)
                .await
                .expect("uri"),
        );
    }
    sources.start(uris, &config.app_name);
    let state = Arc::new(AppState::new(
        config,
        sources,
        Arc::new(Invocation::lambda()),
        Arc::new(Metrics::new(None)),
    ));
    let db = format!("t_{}", test.chars().take(40).collect::<String>());
    let api = Api {
        router: router(Arc::clone(&state)),
        state,
        db,
    };
    api.post(
        "/action/deleteMany",
        json!({"collection": "c", "filter": {}}),
    )
    .await;
    api
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

impl Api {
    /// POSTs `body` with this test's database filled in unless the body sets one.
    async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(path, body, &[]).await
    }

    async fn send(&self, path: &str, mut body: Value, headers: &[(&str, &str)]) -> Reply {
        if let Value::Object(map) = &mut body {
            map.entry("dataSource").or_insert(json!("mongodb-atlas"));
            map.entry("database").or_insert(json!(self.db));
        }
        self.raw(path, body.to_string().into_bytes(), headers, true)
            .await
    }

    async fn raw(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
        json_type: bool,
    ) -> Reply {
        let mut request = Request::post(path);
        if json_type {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body)).expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("response");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        Reply {
            status,
            headers,
            text: String::from_utf8(bytes.to_vec()).expect("utf-8"),
        }
    }
}

const EJSON: &[(&str, &str)] = &[("accept", "application/ejson")];

/// Both URL forms of an action.
fn paths(action: &str) -> [String; 2] {
    [
        format!("/action/{action}"),
        format!("/app/data-abcde/endpoint/data/v1/action/{action}"),
    ]
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn insert_one_returns_the_id_as_hex_in_json_and_oid_in_ejson() {
    let api = api("insert_one_ids", &[]).await;
    for path in paths("insertOne") {
        let r = api
            .post(&path, json!({"collection": "c", "document": {"a": 1}}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        let id = r.json()["insertedId"].as_str().expect("hex id").to_owned();
        assert_eq!(id.len(), 24);
        let r = api
            .send(
                &path,
                json!({"collection": "c", "document": {"a": 2}}),
                EJSON,
            )
            .await;
        assert_eq!(r.headers[header::CONTENT_TYPE], "application/ejson");
        let oid = r.json()["insertedId"]["$oid"]
            .as_str()
            .expect("$oid")
            .to_owned();
        assert_eq!(oid.len(), 24);
    }
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn find_one_with_no_match_returns_document_null() {
    let api = api("find_one_null", &[]).await;
    for path in paths("findOne") {
        let r = api
            .post(&path, json!({"collection": "c", "filter": {"nope": 1}}))
            .await;
        assert_eq!(
            (r.status, r.json()),
            (StatusCode::OK, json!({"document": null}))
        );
    }
}

/// Decimal128, MinKey and MaxKey are left out: FerretDB 1.24 drops the connection on them
/// ("unsupported tag"). Their conversions are covered by the property tests in `ejson`.
#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn every_type_survives_a_round_trip_in_ejson_mode() {
    let api = api("every_type", &[]).await;
    let document = json!({
        "_id": {"$oid": "65f0a1b2c3d4e5f601234567"},
        "date": {"$date": {"$numberLong": "1700000000123"}},
        "int": {"$numberInt": "7"},
        "long": {"$numberLong": "9007199254740993"},
        "double": {"$numberDouble": "1.5"},
        "binary": {"$binary": {"base64": "AQID", "subType": "00"}},
        "uuid": {"$binary": {"base64": "ABEiM0RVZneImaq7zN3u/w==", "subType": "04"}},
        "regex": {"$regularExpression": {"pattern": "^a", "options": "i"}},
        "ts": {"$timestamp": {"t": 5, "i": 6}},
        "null": null,
        "nested": {"list": [{"$numberInt": "1"}, "two", {"deep": true}]}
    });
    let r = api
        .send(
            "/action/insertOne",
            json!({"collection": "c", "document": document}),
            EJSON,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = api
        .send(
            "/action/findOne",
            json!({"collection": "c", "filter": {}}),
            EJSON,
        )
        .await;
    assert_eq!(r.json()["document"], document);

    // Relaxed EJSON: numbers and the date plain, every other type as canonical.
    let r = api
        .send(
            "/action/findOne",
            json!({"collection": "c", "filter": {}}),
            &[("accept", "application/ejson; mode=relaxed")],
        )
        .await;
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/ejson");
    let relaxed = &r.json()["document"];
    assert_eq!(
        relaxed["date"],
        json!({"$date": "2023-11-14T22:13:20.123Z"})
    );
    assert_eq!(relaxed["int"], 7);
    assert_eq!(relaxed["long"], 9_007_199_254_740_993_i64);
    assert_eq!(relaxed["double"], 1.5);
    assert_eq!(relaxed["_id"], document["_id"]);
    assert_eq!(relaxed["binary"], document["binary"]);
    assert_eq!(relaxed["regex"], document["regex"]);
    assert_eq!(relaxed["ts"], document["ts"]);
    assert_eq!(
        relaxed["nested"],
        json!({"list": [1, "two", {"deep": true}]})
    );

    // The same document in plain JSON mode, flattened as the Data API did.
    let r = api
        .post("/action/findOne", json!({"collection": "c", "filter": {}}))
        .await;
    let flat = &r.json()["document"];
    assert_eq!(flat["_id"], "65f0a1b2c3d4e5f601234567");
    assert_eq!(flat["date"], "2023-11-14T22:13:20.123Z");
    assert_eq!(flat["int"], 7);
    assert_eq!(flat["binary"], json!({"Subtype": 0, "Data": "AQID"}));
    assert_eq!(flat["regex"], json!({"Pattern": "^a", "Options": "i"}));
    assert_eq!(flat["ts"], json!({"T": 5, "I": 6}));
    assert_eq!(flat["long"], 9_007_199_254_740_993_i64);
    assert_eq!(flat["nested"], json!({"list": [1, "two", {"deep": true}]}));
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn relaxed_ejson_requests_are_accepted_under_both_content_types() {
    let api = api("relaxed_requests", &[]).await;
    for content_type in ["application/json", "application/ejson"] {
        let body = json!({"dataSource": "x", "database": api.db, "collection": "c",
            "document": {"at": {"$date": "2024-02-29T10:00:00Z"}, "n": 5, "ct": content_type}});
        let r = api
            .raw(
                "/action/insertOne",
                body.to_string().into_bytes(),
                &[("content-type", content_type)],
                false,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = api
        .send(
            "/action/countDocuments",
            json!({"collection": "c", "filter": {"at": {"$gte": {"$date": "2024-01-01T00:00:00Z"}}}}),
            EJSON,
        )
        .await;
    assert_eq!(r.json(), json!({"count": {"$numberInt": "2"}}));
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn find_applies_filter_projection_sort_limit_and_skip() {
    let api = api("find_options", &[]).await;
    let docs: Vec<Value> = (0..10)
        .map(|i| json!({"i": i, "even": i % 2 == 0, "pad": "x"}))
        .collect();
    let r = api
        .post(
            "/action/insertMany",
            json!({"collection": "c", "documents": docs}),
        )
        .await;
    assert_eq!(r.json()["insertedIds"].as_array().map(Vec::len), Some(10));
    for path in paths("find") {
        let r = api
            .post(
                &path,
                json!({"collection": "c", "filter": {"even": true}, "projection": {"_id": 0, "i": 1},
                       "sort": {"i": -1}, "limit": 3, "skip": 1}),
            )
            .await;
        assert_eq!(
            r.json(),
            json!({"documents": [{"i": 6}, {"i": 4}, {"i": 2}]})
        );
    }
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn large_finds_stream_in_chunks_and_ndjson_gives_one_document_per_line() {
    let api = api("streaming", &[("MONGO_SIDECAR_BATCH_SIZE", "50")]).await;
    let docs: Vec<Value> = (0..1500)
        .map(|i| json!({"i": i, "text": "y".repeat(100)}))
        .collect();
    let r = api
        .post(
            "/action/insertMany",
            json!({"collection": "c", "documents": docs}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    let r = api
        .post("/action/find", json!({"collection": "c", "sort": {"i": 1}}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers.get(header::CONTENT_LENGTH).is_none(),
        "a large result is streamed"
    );
    let documents = r.json()["documents"]
        .as_array()
        .cloned()
        .expect("documents");
    assert_eq!(documents.len(), 1500);
    assert_eq!(documents[1499]["i"], 1499);

    let r = api
        .send(
            "/action/aggregate",
            json!({"collection": "c", "pipeline": [{"$match": {"i": {"$lt": 1200}}}, {"$sort": {"i": 1}}]}),
            &[("accept", "application/x-ndjson")],
        )
        .await;
    assert_eq!(r.headers[header::CONTENT_TYPE], "application/x-ndjson");
    let lines: Vec<Value> = r
        .text
        .lines()
        .map(|l| serde_json::from_str(l).expect("line"))
        .collect();
    assert_eq!(lines.len(), 1200);
    assert_eq!(lines[0]["i"], 0);
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn the_document_cap_gives_a_clear_400_before_streaming() {
    let api = api("cap", &[("MONGO_SIDECAR_MAX_DOCUMENTS", "5")]).await;
    let docs: Vec<Value> = (0..6).map(|i| json!({"i": i})).collect();
    api.post(
        "/action/insertMany",
        json!({"collection": "c", "documents": docs}),
    )
    .await;
    let r = api.post("/action/find", json!({"collection": "c"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("more than 5 documents")
    );
    let r = api
        .post("/action/find", json!({"collection": "c", "limit": 10}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = api
        .post("/action/find", json!({"collection": "c", "limit": 5}))
        .await;
    assert_eq!(r.json()["documents"].as_array().map(Vec::len), Some(5));
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn updates_report_counts_and_upserts_report_the_id() {
    let api = api("updates", &[]).await;
    api.post(
        "/action/insertMany",
        json!({"collection": "c", "documents": [{"k": 1}, {"k": 1}, {"k": 2}]}),
    )
    .await;
    for path in paths("updateOne") {
        let r = api
            .post(
                &path,
                json!({"collection": "c", "filter": {"k": 1}, "update": {"$inc": {"n": 1}}}),
            )
            .await;
        assert_eq!(r.json(), json!({"matchedCount": 1, "modifiedCount": 1}));
    }
    let r = api
        .post(
            "/action/updateMany",
            json!({"collection": "c", "filter": {"k": 1}, "update": {"$set": {"m": true}}}),
        )
        .await;
    assert_eq!(r.json(), json!({"matchedCount": 2, "modifiedCount": 2}));
    let r = api
        .send(
            "/action/updateOne",
            json!({"collection": "c", "filter": {"k": 9}, "update": {"$set": {"k": 9}}, "upsert": true}),
            EJSON,
        )
        .await;
    let body = r.json();
    assert_eq!(body["matchedCount"], json!({"$numberInt": "0"}));
    assert!(body["upsertedId"]["$oid"].is_string(), "{body}");

    let r = api
        .post(
            "/action/replaceOne",
            json!({"collection": "c", "filter": {"k": 2}, "replacement": {"k": 2, "r": 1}}),
        )
        .await;
    assert_eq!(r.json(), json!({"matchedCount": 1, "modifiedCount": 1}));
    let r = api
        .post(
            "/action/replaceOne",
            json!({"collection": "c", "filter": {"k": 3}, "replacement": {"k": 3}, "upsert": true}),
        )
        .await;
    assert!(r.json()["upsertedId"].is_string(), "{}", r.text);
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn deletes_report_counts() {
    let api = api("deletes", &[]).await;
    api.post(
        "/action/insertMany",
        json!({"collection": "c", "documents": [{"k": 1}, {"k": 1}, {"k": 1}]}),
    )
    .await;
    let r = api
        .post(
            "/action/deleteOne",
            json!({"collection": "c", "filter": {"k": 1}}),
        )
        .await;
    assert_eq!(r.json(), json!({"deletedCount": 1}));
    for path in paths("deleteMany") {
        let r = api
            .post(&path, json!({"collection": "c", "filter": {"k": 1}}))
            .await;
        assert!(r.json()["deletedCount"].is_number());
    }
    let r = api
        .post("/action/countDocuments", json!({"collection": "c"}))
        .await;
    assert_eq!(r.json(), json!({"count": 0}));
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn counts_distinct_and_aggregate() {
    let api = api("reads", &[]).await;
    api.post(
        "/action/insertMany",
        json!({"collection": "c", "documents": [{"t": "a", "v": 1}, {"t": "b", "v": 2}, {"t": "a", "v": 3}]}),
    )
    .await;
    let r = api
        .post(
            "/action/countDocuments",
            json!({"collection": "c", "filter": {"t": "a"}, "limit": 1}),
        )
        .await;
    assert_eq!(r.json(), json!({"count": 1}));
    let r = api
        .post("/action/estimatedDocumentCount", json!({"collection": "c"}))
        .await;
    assert_eq!(r.json(), json!({"count": 3}));
    let r = api
        .post("/action/distinct", json!({"collection": "c", "key": "t"}))
        .await;
    let mut values: Vec<String> = r.json()["values"]
        .as_array()
        .expect("values")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    values.sort();
    assert_eq!(values, ["a", "b"]);
    for path in paths("aggregate") {
        let r = api
            .post(
                &path,
                json!({"collection": "c", "pipeline": [
                    {"$group": {"_id": "$t", "total": {"$sum": "$v"}}}, {"$sort": {"_id": 1}}]}),
            )
            .await;
        assert_eq!(
            r.json(),
            json!({"documents": [{"_id": "a", "total": 4}, {"_id": "b", "total": 2}]})
        );
    }
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn find_one_and_modify_actions_return_the_document() {
    let api = api("find_and_modify", &[]).await;
    api.post(
        "/action/insertOne",
        json!({"collection": "c", "document": {"_id": 1, "n": 1}}),
    )
    .await;
    let r = api
        .post(
            "/action/findOneAndUpdate",
            json!({"collection": "c", "filter": {"_id": 1}, "update": {"$inc": {"n": 1}}, "returnDocument": "after"}),
        )
        .await;
    assert_eq!(r.json(), json!({"document": {"_id": 1, "n": 2}}));
    let r = api
        .post(
            "/action/findOneAndReplace",
            json!({"collection": "c", "filter": {"_id": 1}, "replacement": {"n": 10}}),
        )
        .await;
    assert_eq!(r.json(), json!({"document": {"_id": 1, "n": 2}}));
    let r = api
        .post(
            "/action/findOneAndDelete",
            json!({"collection": "c", "filter": {"_id": 1}}),
        )
        .await;
    assert_eq!(r.json(), json!({"document": {"_id": 1, "n": 10}}));
    let r = api
        .post(
            "/action/findOneAndDelete",
            json!({"collection": "c", "filter": {"_id": 1}}),
        )
        .await;
    assert_eq!(r.json(), json!({"document": null}));
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn bulk_write_runs_every_kind_of_operation() {
    let api = api("bulk", &[]).await;
    let r = api
        .post(
            "/action/bulkWrite",
            json!({"collection": "c", "operations": [
                {"insertOne": {"document": {"_id": 1, "n": 0}}},
                {"insertOne": {"document": {"_id": 2, "n": 0}}},
                {"updateOne": {"filter": {"_id": 1}, "update": {"$set": {"n": 1}}}},
                {"updateMany": {"filter": {}, "update": {"$inc": {"n": 1}}}},
                {"replaceOne": {"filter": {"_id": 3}, "replacement": {"n": 3}, "upsert": true}},
                {"deleteOne": {"filter": {"_id": 2}}},
                {"deleteMany": {"filter": {"n": {"$gt": 100}}}}
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"insertedCount": 2, "matchedCount": 3, "modifiedCount": 3, "deletedCount": 1,
               "upsertedCount": 1, "upsertedIds": {"4": 3}})
    );
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn a_failed_bulk_write_reports_what_it_applied() {
    let api = api("bulk_fail", &[]).await;
    let r = api
        .post(
            "/action/bulkWrite",
            json!({"collection": "c", "operations": [
                {"insertOne": {"document": {"_id": 1}}},
                {"insertOne": {"document": {"_id": 1}}},
                {"insertOne": {"document": {"_id": 2}}}
            ]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text);
    let body = r.json();
    assert_eq!(body["failedIndex"], 1);
    assert_eq!(body["applied"]["insertedCount"], 1);
    let r = api
        .post("/action/countDocuments", json!({"collection": "c"}))
        .await;
    assert_eq!(
        r.json(),
        json!({"count": 1}),
        "ordered: nothing after the failure ran"
    );
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn a_duplicate_key_is_409_with_the_server_code() {
    let api = api("duplicate", &[]).await;
    let doc = json!({"collection": "c", "document": {"_id": "same"}});
    assert_eq!(
        api.post("/action/insertOne", doc.clone()).await.status,
        StatusCode::OK
    );
    let r = api.post("/action/insertOne", doc).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let body = r.json();
    assert_eq!(body["error_code"], "DuplicateKey");
    assert_eq!(body["code"], 11000);
    assert_eq!(body["codeName"], "DuplicateKey");
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn invalid_requests_get_400_that_names_the_field() {
    let api = api("invalid", &[]).await;
    for (path, body, expected) in [
        (
            "/action/findOne",
            json!({"collection": "c", "filter": "x"}),
            "filter must be a document",
        ),
        (
            "/action/find",
            json!({"collection": "c", "limit": "ten"}),
            "limit must be a non-negative integer",
        ),
        (
            "/action/insertOne",
            json!({"collection": "c"}),
            "document is required",
        ),
        (
            "/action/updateOne",
            json!({"collection": "c", "filter": {}, "update": {"a": 1}}),
            "update operators",
        ),
        (
            "/action/findOne",
            json!({"collection": "c", "filter": {"_id": {"$oid": "xyz"}}}),
            "$oid",
        ),
        (
            "/action/findOne",
            json!({"collection": "c", "bogus": 1}),
            "unknown field \"bogus\"",
        ),
        (
            "/action/insertMany",
            json!({"collection": "c", "documents": []}),
            "must not be empty",
        ),
    ] {
        let r = api.post(path, body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.text);
        let body = r.json();
        assert_eq!(body["error_code"], "InvalidParameter");
        assert!(
            body["error"].as_str().unwrap_or("").contains(expected),
            "{path}: {body}"
        );
    }
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn statuses_for_unknown_actions_media_types_and_large_bodies() {
    let api = api("statuses", &[("MONGO_SIDECAR_MAX_BODY_BYTES", "2048")]).await;
    let r = api
        .post("/action/dropDatabase", json!({"collection": "c"}))
        .await;
    assert_eq!(
        (r.status, r.json()["error_code"].clone()),
        (StatusCode::NOT_FOUND, json!("ActionNotFound"))
    );
    let r = api
        .raw(
            "/action/findOne",
            b"{}".to_vec(),
            &[("content-type", "text/plain")],
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = json!({"collection": "c", "document": {"s": "z".repeat(4096)}});
    let r = api.post("/action/insertOne", big).await;
    assert_eq!(
        (r.status, r.json()["error_code"].clone()),
        (StatusCode::PAYLOAD_TOO_LARGE, json!("PayloadTooLarge"))
    );
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn a_token_is_required_when_configured() {
    let api = api("token", &[("MONGO_SIDECAR_TOKEN", "t0ken-value")]).await;
    let body = json!({"collection": "c", "filter": {}});
    let r = api.post("/action/findOne", body.clone()).await;
    assert_eq!(
        (r.status, r.json()["error_code"].clone()),
        (StatusCode::BAD_REQUEST, json!("InvalidParameter"))
    );
    let r = api
        .send("/action/findOne", body.clone(), &[("apiKey", "wrong")])
        .await;
    assert_eq!(
        (r.status, r.json()["error_code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("InvalidSession"))
    );
    let r = api
        .send(
            "/action/findOne",
            body.clone(),
            &[("apiKey", "t0ken-value")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = api
        .send(
            "/action/findOne",
            body,
            &[("authorization", "Bearer t0ken-value")],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn the_policy_answers_403_with_the_reason() {
    let api = api("policy", &[("MONGO_SIDECAR_READ_ONLY", "true")]).await;
    let r = api
        .post(
            "/action/insertOne",
            json!({"collection": "c", "document": {}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap_or("")
            .contains("MONGO_SIDECAR_READ_ONLY")
    );
    let r = api
        .post(
            "/action/find",
            json!({"collection": "c", "filter": {"$where": "sleep(1000)"}}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = api.post("/action/find", json!({"collection": "c"})).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn an_expiring_invocation_deadline_gives_504() {
    let api = api("deadline", &[]).await;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as u64;
    // The default margin is 200 ms: 100 ms left in the invocation leaves nothing.
    api.state.invocation.start(now_ms + 100, None);
    let r = api
        .post("/action/findOne", json!({"collection": "c"}))
        .await;
    assert_eq!(
        (r.status, r.json()["error_code"].clone()),
        (StatusCode::GATEWAY_TIMEOUT, json!("OperationTimedOut"))
    );
    api.state.invocation.start(now_ms + 60_000, None);
    let r = api
        .post("/action/findOne", json!({"collection": "c"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn an_unreachable_database_gives_503_with_retry_after() {
    // A port nothing listens on; a short server selection timeout keeps the test quick.
    let vars = [(
        "MONGODB_URI",
        "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300",
    )];
    let config = Arc::new(
        Config::from_vars(vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())))
            .expect("config"),
    );
    let sources = Arc::new(DataSources::new(&config));
    sources.start(
        vec!["mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300".to_owned()],
        "api-test",
    );
    let state = Arc::new(AppState::new(
        config,
        sources,
        Arc::new(Invocation::default()),
        Arc::new(Metrics::new(None)),
    ));
    let app = router(state);
    tokio::time::sleep(Duration::from_millis(800)).await;
    let request = Request::post("/action/findOne")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"database":"a","collection":"c"}"#))
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    let health = app
        .oneshot(
            Request::get("/health")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body = health.into_body().collect().await.expect("body").to_bytes();
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["status"], "unavailable");
    assert!(body["pool"].is_object());
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn health_is_ready_with_pool_figures() {
    let api = api("health", &[]).await;
    let response = api
        .router
        .clone()
        .oneshot(
            Request::get("/health")
                .body(Body::empty())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let body: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["status"], "ready");
    assert!(
        body["pool"]["open"].as_i64().is_some_and(|n| n >= 1),
        "{body}"
    );
    assert_eq!(body["pool"]["maxPoolSize"], 4);
}

#[tokio::test]
#[ignore = "needs a MongoDB-wire server in MONGO_SIDECAR_TEST_URI: `make test-rust` runs these"]
async fn several_data_sources_are_selected_by_name() {
    let uri = test_uri();
    let api = api("sources", &[("MONGODB_URI_REPORTING", &uri)]).await;
    let r = api
        .post(
            "/action/findOne",
            json!({"dataSource": "reporting", "collection": "c"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = api
        .post(
            "/action/findOne",
            json!({"dataSource": "elsewhere", "collection": "c"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let body = r.json();
    assert_eq!(body["error_code"], "DataSourceNotFound");
    assert!(
        body["error"]
            .as_str()
            .unwrap_or("")
            .contains("mongodb-atlas, reporting"),
        "{body}"
    );
}
