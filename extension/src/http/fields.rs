//! A request body's fields, each taken out once: the shared ones (`dataSource`, `database`,
//! `collection`), then each field an action takes, with errors that name the field and say what it
//! must be. Whatever no reader took is refused.

use bson::{RawBson, RawDocument, RawDocumentBuf};
use serde_json::{Map, Value};

use super::error::ApiError;
use crate::ejson;
use crate::mongo::ops::Update;

/// A request body, parsed once, with the fields every action shares taken out.
#[derive(Debug)]
pub struct Body {
    pub data_source: Option<String>,
    pub database: String,
    pub collection: String,
    pub fields: Fields,
}

/// The fields of a JSON object not yet taken. Each accessor takes one field out, checks its
/// type and converts it; [`Fields::finish`] then rejects whatever no accessor took.
#[derive(Debug)]
pub struct Fields(Map<String, Value>);

impl Body {
    /// Takes the shared fields out of a parsed body (see [`super::json::parse`]).
    pub fn from_value(value: Value) -> Result<Self, ApiError> {
        let Value::Object(mut fields) = value else {
            return Err(ApiError::invalid("the request body must be a JSON object"));
        };
        let data_source = take_string(&mut fields, "dataSource", false)?;
        let database = take_string(&mut fields, "database", true)?.unwrap_or_default();
        let collection = take_string(&mut fields, "collection", true)?.unwrap_or_default();
        validate_database_name(&database)?;
        validate_collection_name(&collection)?;
        Ok(Self {
            data_source,
            database,
            collection,
            fields: Fields(fields),
        })
    }
}

impl Fields {
    pub fn new(map: Map<String, Value>) -> Self {
        Self(map)
    }

    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The fields not taken yet, for checks that look at everything.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.0
    }

    /// Fails on any field that was not taken.
    pub fn finish(self, context: &str) -> Result<(), ApiError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(key) => Err(ApiError::invalid(format!(
                "unknown field {key:?} for {context}"
            ))),
        }
    }

    fn take(&mut self, name: &str) -> Option<Value> {
        self.0.remove(name)
    }

    /// An optional document field, read as Extended JSON.
    pub fn document(&mut self, name: &str) -> Result<Option<RawDocumentBuf>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Object(map)) => ejson::to_document(map)
                .map(Some)
                .map_err(|e| field_error(name, &e.to_string())),
            Some(other) => Err(type_error(name, "a document", &other)),
        }
    }

    pub fn required_document(&mut self, name: &str) -> Result<RawDocumentBuf, ApiError> {
        self.document(name)?
            .ok_or_else(|| missing(name, "a document"))
    }

    /// A required array of documents.
    pub fn documents(&mut self, name: &str) -> Result<Vec<RawDocumentBuf>, ApiError> {
        match self.take(name) {
            None => Err(missing(name, "an array of documents")),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::Object(map) => ejson::to_document(map)
                        .map_err(|e| field_error(&format!("{name}[{i}]"), &e.to_string())),
                    other => Err(type_error(&format!("{name}[{i}]"), "a document", &other)),
                })
                .collect(),
            Some(other) => Err(type_error(name, "an array of documents", &other)),
        }
    }

    /// An optional array of documents.
    pub fn optional_documents(
        &mut self,
        name: &str,
    ) -> Result<Option<Vec<RawDocumentBuf>>, ApiError> {
        if self.has(name) {
            self.documents(name).map(Some)
        } else {
            Ok(None)
        }
    }

    pub fn bool(&mut self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(b)),
            Some(other) => Err(type_error(name, "true or false", &other)),
        }
    }

    /// A non-negative integer, as a JSON number or `{"$numberInt"|"$numberLong": "..."}`.
    pub fn count(&mut self, name: &str) -> Result<Option<u64>, ApiError> {
        let Some(value) = self.take(name) else {
            return Ok(None);
        };
        let number = match ejson::to_bson(value.clone()) {
            Ok(RawBson::Int32(n)) => u64::try_from(n).ok(),
            Ok(RawBson::Int64(n)) => u64::try_from(n).ok(),
            Ok(RawBson::Double(f)) if f.fract() == 0.0 && (0.0..9.0e15).contains(&f) => {
                Some(f as u64)
            }
            _ => None,
        };
        number
            .map(Some)
            .ok_or_else(|| type_error(name, "a non-negative integer", &value))
    }

    pub fn string(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        take_string(&mut self.0, name, false)
    }

    /// Any value (for `comment`).
    pub fn any(&mut self, name: &str) -> Result<Option<RawBson>, ApiError> {
        self.take(name)
            .map(|v| ejson::to_bson(v).map_err(|e| field_error(name, &e.to_string())))
            .transpose()
    }

    /// `hint`: an index name or a key pattern.
    pub fn hint(&mut self) -> Result<Option<RawBson>, ApiError> {
        match self.take("hint") {
            None => Ok(None),
            Some(Value::String(name)) => Ok(Some(RawBson::String(name))),
            Some(Value::Object(map)) => ejson::to_document(map)
                .map(|d| Some(RawBson::Document(d)))
                .map_err(|e| field_error("hint", &e.to_string())),
            Some(other) => Err(type_error(
                "hint",
                "an index name or a key pattern document",
                &other,
            )),
        }
    }

    /// `collation`: a document with a string `locale`, as MongoDB requires.
    pub fn collation(&mut self) -> Result<Option<RawDocumentBuf>, ApiError> {
        let Some(doc) = self.document("collation")? else {
            return Ok(None);
        };
        if doc.get_str("locale").is_err() {
            return Err(ApiError::invalid(
                "collation must be a collation document such as {\"locale\": \"en\", \"strength\": 2}",
            ));
        }
        Ok(Some(doc))
    }

    /// `returnDocument`: "before" (the default) or "after"; true for after.
    pub fn return_after(&mut self) -> Result<Option<bool>, ApiError> {
        match self.string("returnDocument")?.as_deref() {
            None => Ok(None),
            Some("before") => Ok(Some(false)),
            Some("after") => Ok(Some(true)),
            Some(other) => Err(ApiError::invalid(format!(
                "returnDocument must be \"before\" or \"after\", not {other:?}"
            ))),
        }
    }

    /// `maxTimeMS`, a positive number of milliseconds.
    pub fn max_time_ms(&mut self) -> Result<Option<u64>, ApiError> {
        match self.count("maxTimeMS")? {
            Some(0) => Err(ApiError::invalid("maxTimeMS must be greater than 0")),
            other => Ok(other),
        }
    }

    /// An update: an update document (operators) or an aggregation pipeline.
    pub fn update(&mut self) -> Result<Update, ApiError> {
        match self.take("update") {
            None => Err(missing("update", "an update document or a pipeline")),
            Some(Value::Object(map)) => {
                let doc =
                    ejson::to_document(map).map_err(|e| field_error("update", &e.to_string()))?;
                if doc.is_empty() || !keys(&doc).all(|k| k.starts_with('$')) {
                    return Err(ApiError::invalid(
                        "update must use update operators such as {\"$set\": {...}}; to replace a document use replaceOne",
                    ));
                }
                Ok(Update::Operators(doc))
            }
            Some(Value::Array(stages)) => {
                self.0.insert("update".into(), Value::Array(stages));
                self.documents("update").map(Update::Pipeline)
            }
            Some(other) => Err(type_error(
                "update",
                "an update document or a pipeline",
                &other,
            )),
        }
    }

    /// A replacement document: no update operators.
    pub fn replacement(&mut self) -> Result<RawDocumentBuf, ApiError> {
        let doc = self.required_document("replacement")?;
        if keys(&doc).any(|k| k.starts_with('$')) {
            return Err(ApiError::invalid(
                "replacement must be a plain document; update operators belong in updateOne",
            ));
        }
        Ok(doc)
    }

    /// The raw value of a field, for actions that walk a structure themselves (bulkWrite).
    pub fn raw(&mut self, name: &str) -> Option<Value> {
        self.take(name)
    }
}

/// A document's top-level keys (the reader made it, so it is well formed).
fn keys(doc: &RawDocument) -> impl Iterator<Item = &str> {
    doc.iter()
        .filter_map(|element| element.ok().map(|(key, _)| key))
}

fn take_string(
    fields: &mut Map<String, Value>,
    name: &str,
    required: bool,
) -> Result<Option<String>, ApiError> {
    match fields.remove(name) {
        None if required => Err(missing(name, "a string")),
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(type_error(name, "a string", &other)),
    }
}

fn validate_database_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::invalid("database must not be empty"));
    }
    if name.len() > 63 || name.contains(['/', '\\', '.', ' ', '"', '$', '\0']) {
        return Err(ApiError::invalid(format!(
            "database {name:?} is not a valid database name (at most 63 bytes, none of / \\ . \" $ or spaces)"
        )));
    }
    Ok(())
}

fn validate_collection_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::invalid("collection must not be empty"));
    }
    if name.len() > 255 || name.contains(['$', '\0']) || name.starts_with("system.") {
        return Err(ApiError::invalid(format!(
            "collection {name:?} is not a valid collection name (no $, not system.*)"
        )));
    }
    Ok(())
}

fn missing(name: &str, what: &str) -> ApiError {
    ApiError::invalid(format!("{name} is required and must be {what}"))
}

pub fn type_error(name: &str, what: &str, found: &Value) -> ApiError {
    let found = match found {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "a document",
    };
    ApiError::invalid(format!("{name} must be {what}, found {found}"))
}

fn field_error(name: &str, problem: &str) -> ApiError {
    ApiError::invalid(format!("{name} is not valid Extended JSON: {problem}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Body, ApiError> {
        let value =
            super::super::json::parse(body.as_bytes(), 64).map_err(|e| ApiError::invalid(e.0))?;
        Body::from_value(value)
    }

    #[test]
    fn the_shared_fields_are_required_strings() {
        let err = parse(r#"{"database":"app"}"#).expect_err("no collection");
        assert!(
            err.message.contains("collection is required"),
            "{}",
            err.message
        );
        let err = parse(r#"{"database":1,"collection":"c"}"#).expect_err("wrong type");
        assert!(
            err.message
                .contains("database must be a string, found a number"),
            "{}",
            err.message
        );
    }

    #[test]
    fn unknown_fields_are_named() {
        let body = parse(r#"{"database":"app","collection":"c","filtr":{}}"#).expect("parses");
        let err = body.fields.finish("findOne").expect_err("unknown field");
        assert!(err.message.contains("\"filtr\"") && err.message.contains("findOne"));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!(
            r#"{{"database":"app","collection":"c","filter":{}1{}}}"#,
            "{\"a\":".repeat(70),
            "}".repeat(70)
        );
        let err = parse(&deep).expect_err("too deep");
        assert!(err.message.contains("nested"), "{}", err.message);
        let very_deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(
            parse(&very_deep).err().map(|e| e.status.as_u16()),
            Some(400)
        );
    }

    #[test]
    fn counts_accept_numbers_and_ejson_integers_only() {
        let mut body =
            parse(r#"{"database":"a","collection":"c","limit":{"$numberLong":"5"},"skip":-1}"#)
                .expect("parses");
        assert_eq!(body.fields.count("limit").ok().flatten(), Some(5));
        let err = body.fields.count("skip").expect_err("negative");
        assert!(err.message.contains("skip must be a non-negative integer"));
    }

    #[test]
    fn an_update_must_use_operators() {
        let mut body =
            parse(r#"{"database":"a","collection":"c","update":{"name":"x"}}"#).expect("parses");
        assert!(body.fields.update().is_err());
        let mut body = parse(r#"{"database":"a","collection":"c","update":[{"$set":{"a":1}}]}"#)
            .expect("parses");
        assert!(matches!(body.fields.update(), Ok(Update::Pipeline(_))));
    }
}
