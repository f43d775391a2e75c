//! What a request may do, beyond what the database user may do: the namespace allowlist,
//! read-only mode, and the operators that are denied unless explicitly allowed.

use mongodb::bson::{Bson, Document};

use crate::config::{ALLOW, ALLOW_MERGE, ALLOW_OUT, ALLOW_SERVER_JS, Policy, READ_ONLY};

/// Operators that run JavaScript on the server.
const SERVER_JS: &[&str] = &["$where", "$function", "$accumulator"];

/// A denial, with the reason and the variable that would allow it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct Denied(pub String);

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

/// Walks a filter, update or other document, however deeply nested, for server-side
/// JavaScript.
pub fn check_document(policy: &Policy, doc: &Document) -> Result<(), Denied> {
    if policy.allow_server_js {
        return Ok(());
    }
    walk_document(doc, &|key| {
        if SERVER_JS.contains(&key) {
            Err(Denied(format!(
                "{key} runs JavaScript on the server and is denied; set {ALLOW_SERVER_JS}=true to allow it"
            )))
        } else {
            Ok(())
        }
    })
}

/// Checks an aggregation pipeline: server-side JavaScript anywhere, and `$out` / `$merge`
/// stages, including those inside `$lookup`, `$facet` and `$unionWith` sub-pipelines.
pub fn check_pipeline(policy: &Policy, pipeline: &[Document]) -> Result<(), Denied> {
    for stage in pipeline {
        check_document(policy, stage)?;
        walk_document(stage, &|key| match key {
            "$out" if !policy.allow_out => Err(Denied(format!(
                "the $out stage writes to a collection and is denied; set {ALLOW_OUT}=true to allow it"
            ))),
            "$merge" if !policy.allow_merge => Err(Denied(format!(
                "the $merge stage writes to a collection and is denied; set {ALLOW_MERGE}=true to allow it"
            ))),
            _ => Ok(()),
        })?;
    }
    Ok(())
}

/// Whether a pipeline writes ($out or $merge at any depth), for read-only mode.
pub fn pipeline_writes(pipeline: &[Document]) -> bool {
    pipeline.iter().any(|stage| {
        walk_document(stage, &|key| match key {
            "$out" | "$merge" => Err(Denied(String::new())),
            _ => Ok(()),
        })
        .is_err()
    })
}

fn walk_document(doc: &Document, check: &dyn Fn(&str) -> Result<(), Denied>) -> Result<(), Denied> {
    for (key, value) in doc {
        check(key)?;
        walk_value(value, check)?;
    }
    Ok(())
}

fn walk_value(value: &Bson, check: &dyn Fn(&str) -> Result<(), Denied>) -> Result<(), Denied> {
    match value {
        Bson::Document(doc) => walk_document(doc, check),
        Bson::Array(items) => items.iter().try_for_each(|item| walk_value(item, check)),
        Bson::JavaScriptCode(_) | Bson::JavaScriptCodeWithScope(_) => check("$where"),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::doc;

    #[test]
    fn server_js_is_denied_at_any_depth() {
        let policy = Policy::default();
        let filter = doc! {"$and": [{"a": 1}, {"$or": [{"$where": "true"}]}]};
        let err = check_document(&policy, &filter).expect_err("denied");
        assert!(err.0.contains("$where") && err.0.contains(ALLOW_SERVER_JS));
        let allowed = Policy {
            allow_server_js: true,
            ..Policy::default()
        };
        assert!(check_document(&allowed, &filter).is_ok());
    }

    #[test]
    fn javascript_values_count_as_server_js() {
        let filter = doc! {"a": Bson::JavaScriptCode("return 1".into())};
        assert!(check_document(&Policy::default(), &filter).is_err());
    }

    #[test]
    fn out_and_merge_are_denied_even_in_sub_pipelines() {
        let policy = Policy::default();
        let facet = vec![doc! {"$facet": {"x": [{"$merge": "other"}]}}];
        assert!(
            check_pipeline(&policy, &facet)
                .expect_err("merge")
                .0
                .contains(ALLOW_MERGE)
        );
        let out = vec![doc! {"$match": {}}, doc! {"$out": "copy"}];
        assert!(
            check_pipeline(&policy, &out)
                .expect_err("out")
                .0
                .contains(ALLOW_OUT)
        );
        let allowed = Policy {
            allow_out: true,
            allow_merge: true,
            ..Policy::default()
        };
        assert!(check_pipeline(&allowed, &out).is_ok() && check_pipeline(&allowed, &facet).is_ok());
        assert!(pipeline_writes(&out));
        assert!(!pipeline_writes(&[doc! {"$match": {"a": 1}}]));
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
    }
}
