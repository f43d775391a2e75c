//! From a request's bytes to a [`Request`]: the strict JSON reader, the shared fields, the policy
//! over the whole body, then the action's own fields into a typed [`Operation`].
//!
//! Each action is one row of [`spec`]: what it requires and which options it takes. Every option
//! has one reader ([`read_option`]), so a new option or a new action is one edit here (and one in
//! the command builder, `mongo::ops::command`).

use serde_json::Value;

use super::error::ApiError;
use super::fields::{Body, Fields, type_error};
use crate::config::{Limits, MAX_DOCUMENTS, MAX_WRITE_BATCH, Policy};
use crate::mongo::ops::{Action, Namespace, Operation, Options, Payload, with_id};
use crate::policy;

use super::action_spec::{Opt, Required, options_of, spec};
use Opt::*;

/// A request, decoded and checked, ready to run.
#[derive(Debug)]
pub struct Request {
    pub data_source: Option<String>,
    pub namespace: Namespace,
    pub operation: Operation,
}

/// Everything a body goes through before the database: the strict JSON reader, the shared
/// fields, the policy over the whole body, then the action's own fields and read-only mode.
pub fn decode(
    action: Action,
    bytes: &[u8],
    policy: &Policy,
    limits: &Limits,
) -> Result<Request, ApiError> {
    let value = super::json::parse(bytes, limits.max_depth).map_err(|e| ApiError::invalid(e.0))?;
    let Body {
        data_source,
        database,
        collection,
        mut fields,
    } = Body::from_value(value)?;
    policy::check_request(policy, &database, &collection, fields.as_map())
        .map_err(|d| ApiError::forbidden(d.0))?;
    let operation = operation(action, &mut fields, limits, true)?;
    fields.finish(action.name())?;
    policy::check_read_only(policy, &operation).map_err(|d| ApiError::forbidden(d.0))?;
    Ok(Request {
        data_source,
        namespace: Namespace {
            database,
            collection,
        },
        operation,
    })
}

/// Reads one action's fields. `top_level` is false for a bulkWrite's operations, which take no
/// `maxTimeMS` of their own.
fn operation(
    action: Action,
    f: &mut Fields,
    limits: &Limits,
    top_level: bool,
) -> Result<Operation, ApiError> {
    let (required, _) = spec(action);
    let mut options = Options::default();
    for opt in options_of(action).filter(|o| top_level || *o != MaxTimeMS) {
        read_option(opt, f, &mut options, limits)?;
    }
    let mut payload = Payload::None;
    for need in required {
        payload = read_required(*need, f, &mut options, limits, payload)?;
    }
    fit_to_limits(action, &mut options, limits)?;
    Ok(Operation {
        action,
        options,
        payload,
    })
}

/// The one reader of each option.
fn read_option(opt: Opt, f: &mut Fields, o: &mut Options, limits: &Limits) -> Result<(), ApiError> {
    match opt {
        Filter => o.filter = f.document("filter")?,
        Projection => o.projection = f.document("projection")?,
        Sort => o.sort = f.document("sort")?,
        Skip => o.skip = f.count("skip")?,
        Limit => o.limit = f.count("limit")?,
        BatchSize => {
            let n = f.count("batchSize")?;
            o.batch_size = Some(n.map_or(limits.batch_size, |n| {
                u32::try_from(n).unwrap_or(u32::MAX).max(1)
            }));
        }
        Hint => o.hint = f.hint()?,
        Collation => o.collation = f.collation()?,
        Comment => o.comment = f.any("comment")?,
        Let => o.let_vars = f.document("let")?,
        BypassDocumentValidation => {
            o.bypass_document_validation = f.bool("bypassDocumentValidation")?
        }
        AllowDiskUse => o.allow_disk_use = f.bool("allowDiskUse")?,
        Upsert => o.upsert = f.bool("upsert")?,
        ArrayFilters => o.array_filters = f.optional_documents("arrayFilters")?,
        ReturnDocument => o.return_after = f.return_after()?,
        Ordered => o.ordered = f.bool("ordered")?,
        MaxTimeMS => o.max_time = f.max_time_ms()?.map(std::time::Duration::from_millis),
    }
    Ok(())
}

fn read_required(
    need: Required,
    f: &mut Fields,
    options: &mut Options,
    limits: &Limits,
    payload: Payload,
) -> Result<Payload, ApiError> {
    Ok(match need {
        Required::Filter => {
            options.filter = Some(f.required_document("filter")?);
            payload
        }
        Required::Document => Payload::Document(with_id(f.required_document("document")?)),
        Required::Documents => {
            let documents = f.documents("documents")?;
            if documents.is_empty() {
                return Err(ApiError::invalid("documents must not be empty"));
            }
            check_batch("documents", documents.len(), limits)?;
            Payload::Documents(documents.into_iter().map(with_id).collect())
        }
        Required::Update => Payload::Update(f.update()?),
        Required::Replacement => Payload::Document(f.replacement()?),
        Required::Pipeline => Payload::Pipeline(f.documents("pipeline")?),
        Required::Key => {
            let key = f.string("key")?.filter(|k| !k.is_empty()).ok_or_else(|| {
                ApiError::invalid("key is required and must be a non-empty string")
            })?;
            Payload::Key(key)
        }
        Required::Operations => Payload::Bulk(bulk_operations(f, options, limits)?),
    })
}

/// The limits a read must fit: `limit` within `MONGO_SIDECAR_MAX_DOCUMENTS`, and with a cap and
/// no limit, the server asked for one more document than the cap (so a result over it shows
/// without reading all of it). Cursors get the configured batch size unless they set one.
fn fit_to_limits(action: Action, o: &mut Options, limits: &Limits) -> Result<(), ApiError> {
    if matches!(action, Action::Find | Action::Aggregate) && o.batch_size.is_none() {
        o.batch_size = Some(limits.batch_size);
    }
    if action != Action::Find || limits.max_documents == 0 {
        return Ok(());
    }
    match o.limit {
        Some(n) if n > limits.max_documents => Err(ApiError::invalid(format!(
            "limit {n} is larger than the largest result the sidecar returns ({MAX_DOCUMENTS}={})",
            limits.max_documents
        ))),
        Some(_) => Ok(()),
        None => {
            o.limit = Some(limits.max_documents + 1);
            Ok(())
        }
    }
}

const BULK_KINDS: &str = "insertOne, updateOne, updateMany, replaceOne, deleteOne or deleteMany";

/// A bulkWrite's operations: each `{"<kind>": {...fields}}`, read like the action of that name.
/// The bulkWrite's own `bypassDocumentValidation` and `comment` apply to those that set none.
fn bulk_operations(
    f: &mut Fields,
    bulk: &Options,
    limits: &Limits,
) -> Result<Vec<Operation>, ApiError> {
    let items = match f.raw("operations") {
        None => {
            return Err(ApiError::invalid(
                "operations is required and must be an array",
            ));
        }
        Some(Value::Array(items)) => items,
        Some(other) => return Err(type_error("operations", "an array", &other)),
    };
    if items.is_empty() {
        return Err(ApiError::invalid("operations must not be empty"));
    }
    check_batch("operations", items.len(), limits)?;
    let mut operations = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let at = format!("operations[{i}]");
        let Value::Object(map) = item else {
            return Err(type_error(
                &at,
                "a document such as {\"insertOne\": {...}}",
                &item,
            ));
        };
        let mut entries = map.into_iter();
        let (Some((kind, spec)), None) = (entries.next(), entries.next()) else {
            return Err(ApiError::invalid(format!(
                "{at} must have exactly one key: {BULK_KINDS}"
            )));
        };
        let action = Action::from_name(&kind)
            .filter(|a| a.is_bulk_item())
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "{at} has the unknown operation {kind:?}; use {BULK_KINDS}"
                ))
            })?;
        let Value::Object(spec) = spec else {
            return Err(type_error(&format!("{at}.{kind}"), "a document", &spec));
        };
        let mut fields = Fields::new(spec);
        let mut operation = operation(action, &mut fields, limits, false)?;
        fields.finish(&format!("{at}.{kind}"))?;
        let o = &mut operation.options;
        o.bypass_document_validation = o
            .bypass_document_validation
            .or(bulk.bypass_document_validation);
        o.comment = o.comment.take().or_else(|| bulk.comment.clone());
        operations.push(operation);
    }
    Ok(operations)
}

fn check_batch(field: &str, len: usize, limits: &Limits) -> Result<(), ApiError> {
    if len > limits.max_write_batch {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "TooManyOperations",
            format!(
                "{field} has {len} entries, more than {MAX_WRITE_BATCH}={}",
                limits.max_write_batch
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use bson::rawdoc;

    fn limits(pairs: &[(&str, &str)]) -> Limits {
        let mut vars = vec![("MONGODB_URI", "mongodb://h")];
        vars.extend_from_slice(pairs);
        Config::from_pairs(&vars).expect("config").limits
    }

    fn decode_json(action: Action, body: &str) -> Result<Request, ApiError> {
        decode(action, body.as_bytes(), &Policy::default(), &limits(&[]))
    }

    #[test]
    fn a_bulk_write_takes_a_comment_and_gives_its_defaults_to_its_operations() {
        let request = decode_json(
            Action::BulkWrite,
            r#"{"database":"d","collection":"c","comment":"nightly","bypassDocumentValidation":true,
                "operations":[{"insertOne":{"document":{"a":1}}},
                              {"deleteOne":{"filter":{"a":1},"comment":"mine"}}]}"#,
        )
        .expect("valid");
        let Payload::Bulk(items) = request.operation.payload else {
            panic!("a bulk payload")
        };
        assert_eq!(
            items[0].options.comment,
            Some(bson::RawBson::String("nightly".into()))
        );
        assert_eq!(items[0].options.bypass_document_validation, Some(true));
        assert_eq!(
            items[1].options.comment,
            Some(bson::RawBson::String("mine".into()))
        );
    }

    #[test]
    fn a_bulk_operation_takes_what_its_action_takes_except_max_time() {
        let err = decode_json(
            Action::BulkWrite,
            r#"{"database":"d","collection":"c","operations":[{"insertOne":{"document":{},"maxTimeMS":5}}]}"#,
        )
        .expect_err("maxTimeMS per operation");
        assert!(err.message.contains("maxTimeMS"), "{}", err.message);
    }

    #[test]
    fn a_capped_find_without_a_limit_asks_for_one_more_than_the_cap() {
        let l = limits(&[("MONGO_SIDECAR_MAX_DOCUMENTS", "100")]);
        let request = decode(
            Action::Find,
            br#"{"database":"d","collection":"c"}"#,
            &Policy::default(),
            &l,
        )
        .expect("valid");
        assert_eq!(request.operation.options.limit, Some(101));
        let err = decode(
            Action::Find,
            br#"{"database":"d","collection":"c","limit":101}"#,
            &Policy::default(),
            &l,
        )
        .expect_err("over the cap");
        assert!(err.message.contains(MAX_DOCUMENTS));
    }

    #[test]
    fn inserted_documents_get_their_ids_here() {
        let request = decode_json(
            Action::InsertMany,
            r#"{"database":"d","collection":"c","documents":[{"a":1},{"_id":5}]}"#,
        )
        .expect("valid");
        let Payload::Documents(docs) = request.operation.payload else {
            panic!("documents")
        };
        assert!(docs[0].get_object_id("_id").is_ok());
        assert_eq!(docs[1], rawdoc! {"_id": 5});
    }

    #[test]
    fn an_unknown_field_is_named_with_its_action() {
        let err = decode_json(
            Action::FindOne,
            r#"{"database":"d","collection":"c","filtr":{}}"#,
        )
        .expect_err("unknown");
        assert!(err.message.contains("\"filtr\"") && err.message.contains("findOne"));
    }
}
