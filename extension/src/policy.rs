//! Every allow/deny decision about what a request may do, beyond what the database user may do:
//! `system.*` collections, the namespace allowlist, read-only mode, and the operators that are
//! denied unless explicitly allowed.
//!
//! The operator and namespace rules look at the whole request body, every key at every depth,
//! before any field is decoded: whatever field an operator or a pipeline stage hides in (filter,
//! projection, let, update, pipeline, a bulk operation, a `$facet`), it is seen.

use serde_json::{Map, Value};

use crate::config::{ALLOW, ALLOW_MERGE, ALLOW_OUT, ALLOW_SERVER_JS, Policy, READ_ONLY};
use crate::mongo::ops::Operation;

/// Operators that run JavaScript on the server, and the Extended JSON wrapper of JavaScript code.
const SERVER_JS: &[&str] = &["$where", "$function", "$accumulator", "$code"];

/// A denial, with the reason and the variable that would allow it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Denied(pub String);

/// Checks a whole request body against the policy: the namespace it names, the operators
/// anywhere in it, and every collection its pipeline stages read or write (never a `system.*`
/// one; with an allowlist, only those on it).
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
                    for (db, coll) in stage_targets(key, child, database) {
                        check_system(&coll)?;
                        check_namespace(policy, &db, &coll)?;
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

/// `system.*` collections hold users, roles, profiles and views: no request reaches them, as its
/// own collection (refused when the body is read) or through a pipeline stage.
fn check_system(collection: &str) -> Result<(), Denied> {
    if collection.starts_with("system.") {
        return Err(Denied(format!(
            "the collection {collection} is a system collection; requests cannot reach it, not even through a pipeline stage"
        )));
    }
    Ok(())
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

/// Read-only mode: refuses every operation that writes (an aggregation with `$out` or `$merge`
/// included, see [`Operation::writes`]).
pub fn check_read_only(policy: &Policy, operation: &Operation) -> Result<(), Denied> {
    if policy.read_only && operation.writes() {
        Err(Denied(format!(
            "{} writes, and {READ_ONLY} is set",
            operation.action.name()
        )))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mongo::ops::{Action, Options, Payload};
    use bson::rawdoc;
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

    fn operation(action: Action, payload: Payload) -> Operation {
        Operation {
            action,
            options: Options::default(),
            payload,
        }
    }

    #[test]
    fn read_only_denies_writes_and_pipelines_that_write() {
        let policy = Policy {
            read_only: true,
            ..Policy::default()
        };
        let insert = operation(Action::InsertOne, Payload::Document(rawdoc! {}));
        assert!(
            check_read_only(&policy, &insert)
                .expect_err("denied")
                .0
                .contains(READ_ONLY)
        );
        assert!(check_read_only(&Policy::default(), &insert).is_ok());
        let nested_out = operation(
            Action::Aggregate,
            Payload::Pipeline(vec![rawdoc! {"$facet": {"x": [{"$out": "c"}]}}]),
        );
        assert!(check_read_only(&policy, &nested_out).is_err());
        let read = operation(
            Action::Aggregate,
            Payload::Pipeline(vec![rawdoc! {"$match": {"a": 1}}]),
        );
        assert!(check_read_only(&policy, &read).is_ok());
        assert!(check_read_only(&policy, &operation(Action::Find, Payload::None)).is_ok());
    }

    #[test]
    fn system_collections_are_refused_through_any_stage_without_an_allowlist() {
        let policy = Policy::default();
        for stage in [
            json!({"$lookup": {"from": "system.users", "as": "u"}}),
            json!({"$graphLookup": {"from": {"db": "admin", "coll": "system.roles"}}}),
            json!({"$unionWith": "system.profile"}),
            json!({"$facet": {"x": [{"$unionWith": {"coll": "system.views"}}]}}),
        ] {
            let err =
                check(&policy, json!({"pipeline": [stage.clone()]})).expect_err(&stage.to_string());
            assert!(err.0.contains("system collection"), "{err}");
        }
        assert!(
            check(
                &policy,
                json!({"pipeline": [{"$lookup": {"from": "orders", "as": "o"}}]})
            )
            .is_ok()
        );
    }
}
