//! What a request may do, beyond what the database user may do: the namespace allowlist,
//! read-only mode, and the operators that are denied unless explicitly allowed.
//!
//! The operator rules look at the whole request body, every key at every depth, before any
//! field is decoded: whatever field an operator hides in (filter, projection, let, update,
//! pipeline, a bulk operation), it is seen.

use mongodb::bson::{Bson, Document};
use serde_json::{Map, Value};

use crate::config::{ALLOW, ALLOW_MERGE, ALLOW_OUT, ALLOW_SERVER_JS, Policy, READ_ONLY};

/// Operators that run JavaScript on the server, and the Extended JSON wrapper of JavaScript code.
const SERVER_JS: &[&str] = &["$where", "$function", "$accumulator", "$code"];

/// A denial, with the reason and the variable that would allow it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Denied(pub String);

/// Checks a whole request body against the policy: the namespace it names, the operators
/// anywhere in it, and, with an allowlist, every collection its pipeline stages read or write.
pub fn check_request(
    policy: &Policy,
    database: &str,
    collection: &str,
    fields: &Map<String, Value>,
) -> Result<(), Denied> {
    check_namespace(policy, database, collection)?;
    let mut stack: Vec<&Value> = Vec::new();
    for (key, child) in fields {
        check_key(policy, key)?;
        stack.push(child);
    }
    while let Some(value) = stack.pop() {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    check_key(policy, key)?;
                    if !policy.allow.is_empty() {
                        for (db, coll) in stage_targets(key, child, database) {
                            check_namespace(policy, &db, &coll)?;
                        }
                    }
                    stack.push(child);
                }
            }
            Value::Array(items) => stack.extend(items),
            _ => {}
        }
    }
    Ok(())
}

fn check_key(policy: &Policy, key: &str) -> Result<(), Denied> {
    match key {
        _ if SERVER_JS.contains(&key) && !policy.allow_server_js => Err(Denied(format!(
            "{key} runs JavaScript on the server and is denied; set {ALLOW_SERVER_JS}=true to allow it"
        ))),
        "$out" if !policy.allow_out => Err(Denied(format!(
            "the $out stage writes to a collection and is denied; set {ALLOW_OUT}=true to allow it"
        ))),
        "$merge" if !policy.allow_merge => Err(Denied(format!(
            "the $merge stage writes to a collection and is denied; set {ALLOW_MERGE}=true to allow it"
        ))),
        _ => Ok(()),
    }
}

/// The namespaces a pipeline stage reads (`$lookup`, `$graphLookup`, `$unionWith`) or writes
/// (`$out`, `$merge`), in any of their forms; `database` is the request's own.
fn stage_targets(stage: &str, spec: &Value, database: &str) -> Vec<(String, String)> {
    let same_db = |coll: &str| (database.to_owned(), coll.to_owned());
    let db_coll = |spec: &Value| -> Option<(String, String)> {
        let coll = spec.get("coll")?.as_str()?;
        let db = spec.get("db").and_then(Value::as_str).unwrap_or(database);
        Some((db.to_owned(), coll.to_owned()))
    };
    let target = match (stage, spec) {
        ("$lookup" | "$graphLookup", Value::Object(fields)) => match fields.get("from") {
            Some(Value::String(coll)) => Some(same_db(coll)),
            Some(from @ Value::Object(_)) => db_coll(from),
            _ => None,
        },
        ("$unionWith" | "$out", Value::String(coll)) => Some(same_db(coll)),
        ("$unionWith" | "$out", Value::Object(_)) => db_coll(spec),
        ("$merge", Value::String(coll)) => Some(same_db(coll)),
        ("$merge", Value::Object(fields)) => match fields.get("into") {
            Some(Value::String(coll)) => Some(same_db(coll)),
            Some(into @ Value::Object(_)) => db_coll(into),
            _ => None,
        },
        _ => None,
    };
    target.into_iter().collect()
}

pub fn check_namespace(policy: &Policy, database: &str, collection: &str) -> Result<(), Denied> {
    if policy.allow.is_empty() {
        return Ok(());
    }
    let allowed = policy
        .allow
        .iter()
        .any(|pattern| match pattern.split_once('.') {
            Some((db, "*")) => db == database,
            Some((db, coll)) => db == database && coll == collection,
            None => false,
        });
    if allowed {
        Ok(())
    } else {
        Err(Denied(format!(
            "the namespace {database}.{collection} is not in {ALLOW}"
        )))
    }
}

pub fn check_write(policy: &Policy, action: &str) -> Result<(), Denied> {
    if policy.read_only {
        Err(Denied(format!("{action} writes, and {READ_ONLY} is set")))
    } else {
        Ok(())
    }
}

/// Whether a pipeline writes ($out or $merge at any depth), for read-only mode.
pub fn pipeline_writes(pipeline: &[Document]) -> bool {
    fn writes(value: &Bson) -> bool {
        match value {
            Bson::Document(doc) => doc
                .iter()
                .any(|(key, child)| key == "$out" || key == "$merge" || writes(child)),
            Bson::Array(items) => items.iter().any(writes),
            _ => false,
        }
    }
    pipeline
        .iter()
        .any(|stage| writes(&Bson::Document(stage.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;
    use serde_json::json;

    fn check(policy: &Policy, body: Value) -> Result<(), Denied> {
        let fields = body.as_object().cloned().unwrap_or_default();
        check_request(policy, "app", "users", &fields)
    }

    #[test]
    fn server_js_is_denied_in_any_field_at_any_depth() {
        let policy = Policy::default();
        for body in [
            json!({"filter": {"$and": [{"a": 1}, {"$or": [{"$where": "true"}]}]}}),
            json!({"projection": {"v": {"$function": {"body": "function(){}", "args": [], "lang": "js"}}}}),
            json!({"let": {"x": {"$function": {}}}}),
            json!({"pipeline": [{"$group": {"_id": 1, "a": {"$accumulator": {}}}}]}),
            json!({"operations": [{"updateOne": {"filter": {"$where": "1"}}}]}),
            json!({"document": {"code": {"$code": "return 1"}}}),
        ] {
            let err = check(&policy, body.clone()).expect_err(&body.to_string());
            assert!(err.0.contains(ALLOW_SERVER_JS), "{err}");
        }
        let allowed = Policy {
            allow_server_js: true,
            ..Policy::default()
        };
        assert!(check(&allowed, json!({"filter": {"$where": "true"}})).is_ok());
    }

    #[test]
    fn out_and_merge_are_denied_even_in_sub_pipelines() {
        let policy = Policy::default();
        let facet = json!({"pipeline": [{"$facet": {"x": [{"$merge": "other"}]}}]});
        assert!(
            check(&policy, facet.clone())
                .expect_err("merge")
                .0
                .contains(ALLOW_MERGE)
        );
        let out = json!({"pipeline": [{"$match": {}}, {"$out": "copy"}]});
        assert!(
            check(&policy, out.clone())
                .expect_err("out")
                .0
                .contains(ALLOW_OUT)
        );
        let allowed = Policy {
            allow_out: true,
            allow_merge: true,
            ..Policy::default()
        };
        assert!(check(&allowed, out).is_ok() && check(&allowed, facet).is_ok());
    }

    #[test]
    fn the_allowlist_covers_the_collections_stages_read_and_write() {
        let policy = Policy {
            allow: vec!["app.users".into()],
            allow_out: true,
            allow_merge: true,
            ..Policy::default()
        };
        assert!(check(&policy, json!({"pipeline": [{"$match": {}}]})).is_ok());
        for stage in [
            json!({"$lookup": {"from": "secrets", "as": "s"}}),
            json!({"$lookup": {"from": {"db": "other", "coll": "users"}, "as": "s"}}),
            json!({"$graphLookup": {"from": "secrets"}}),
            json!({"$unionWith": "secrets"}),
            json!({"$unionWith": {"coll": "secrets", "pipeline": []}}),
            json!({"$facet": {"x": [{"$lookup": {"from": "secrets"}}]}}),
            json!({"$out": {"db": "elsewhere", "coll": "users"}}),
            json!({"$merge": {"into": {"db": "elsewhere", "coll": "users"}}}),
            json!({"$merge": "other"}),
        ] {
            let err =
                check(&policy, json!({"pipeline": [stage.clone()]})).expect_err(&stage.to_string());
            assert!(err.0.contains(ALLOW), "{err}");
        }
        assert!(
            check(
                &policy,
                json!({"pipeline": [{"$lookup": {"from": "users", "as": "u"}}]})
            )
            .is_ok()
        );
    }

    #[test]
    fn the_allowlist_takes_exact_names_and_database_wildcards() {
        let policy = Policy {
            allow: vec!["app.users".into(), "logs.*".into()],
            ..Policy::default()
        };
        assert!(check_namespace(&policy, "app", "users").is_ok());
        assert!(check_namespace(&policy, "logs", "anything").is_ok());
        assert!(check_namespace(&policy, "app", "orders").is_err());
        assert!(check_namespace(&policy, "application", "users").is_err());
        assert!(check_namespace(&Policy::default(), "any", "thing").is_ok());
    }

    #[test]
    fn read_only_denies_writes() {
        let policy = Policy {
            read_only: true,
            ..Policy::default()
        };
        assert!(
            check_write(&policy, "insertOne")
                .expect_err("denied")
                .0
                .contains(READ_ONLY)
        );
        assert!(check_write(&Policy::default(), "insertOne").is_ok());
        assert!(pipeline_writes(&[doc! {"$facet": {"x": [{"$out": "c"}]}}]));
        assert!(!pipeline_writes(&[doc! {"$match": {"a": 1}}]));
    }
}
