//! Extended JSON at the HTTP boundary.
//!
//! Requests: [`to_bson`] reads canonical *and* relaxed Extended JSON v2 (and the common v1
//! wrappers such as `{"$date": <millis>}` or `{"$binary": "..", "$type": ".."}`) from a parsed
//! JSON value, with messages that name the offending wrapper and never a Rust type.
//!
//! Responses: [`write_document`] goes straight from raw BSON bytes to response bytes, with no
//! intermediate tree, in one of the Data API's two output modes ([`OutputMode`]).

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mongodb::bson::oid::ObjectId;
use mongodb::bson::raw::{RawArray, RawBsonRef, RawDocument};
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{
    Binary, Bson, DateTime, Decimal128, Document, JavaScriptCodeWithScope, Regex, Timestamp,
};
use serde_json::{Map, Value};

/// How a response writes BSON values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputMode {
    /// The Data API's plain JSON: ObjectId as hex, dates as ISO-8601 strings, numbers as numbers.
    Json,
    /// Canonical Extended JSON v2: every type survives a round trip.
    Ejson,
}

/// An Extended JSON value that does not describe a valid BSON value.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0}")]
pub struct EjsonError(String);

impl EjsonError {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

type Result<T> = std::result::Result<T, EjsonError>;

/// Converts a JSON object, read as Extended JSON, into a BSON document.
pub fn to_document(map: Map<String, Value>) -> Result<Document> {
    match object_to_bson(map)? {
        Bson::Document(doc) => Ok(doc),
        other => Err(EjsonError::new(format!(
            "expected a document, found {}",
            bson_type_name(&other)
        ))),
    }
}

/// Converts a JSON value, read as Extended JSON, into a BSON value.
pub fn to_bson(value: Value) -> Result<Bson> {
    match value {
        Value::Null => Ok(Bson::Null),
        Value::Bool(b) => Ok(Bson::Boolean(b)),
        Value::String(s) => Ok(Bson::String(s)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i32::try_from(i).map_or(Bson::Int64(i), Bson::Int32))
            } else if n.is_u64() {
                Err(EjsonError::new(format!(
                    "the number {n} is out of range for a 64-bit integer; send it as {{\"$numberDecimal\": \"{n}\"}}"
                )))
            } else {
                n.as_f64()
                    .map(Bson::Double)
                    .ok_or_else(|| EjsonError::new(format!("the number {n} is out of range")))
            }
        }
        Value::Array(items) => items
            .into_iter()
            .map(to_bson)
            .collect::<Result<Vec<_>>>()
            .map(Bson::Array),
        Value::Object(map) => object_to_bson(map),
    }
}

/// The type wrappers of Extended JSON. An object whose keys include one of these is a wrapper
/// and must have exactly the wrapper's keys; any other object is a plain document (so query
/// operators such as `$gt` or `$regex` pass through untouched).
const WRAPPER_KEYS: &[&str] = &[
    "$oid",
    "$symbol",
    "$regularExpression",
    "$numberInt",
    "$numberLong",
    "$numberDouble",
    "$numberDecimal",
    "$binary",
    "$uuid",
    "$code",
    "$timestamp",
    "$date",
    "$minKey",
    "$maxKey",
    "$dbPointer",
    "$undefined",
];

fn object_to_bson(mut map: Map<String, Value>) -> Result<Bson> {
    let wrapper = map
        .keys()
        .find(|k| k.starts_with('$') && WRAPPER_KEYS.contains(&k.as_str()))
        .cloned();
    let Some(wrapper) = wrapper else {
        let mut doc = Document::new();
        for (key, value) in map {
            if key.contains('\0') {
                return Err(EjsonError::new(format!(
                    "the key {key:?} contains a NUL character, which BSON keys cannot hold"
                )));
            }
            let value = to_bson(value).map_err(|e| e.within(&key))?;
            doc.insert(key, value);
        }
        return Ok(Bson::Document(doc));
    };

    let allowed: &[&str] = match wrapper.as_str() {
        "$code" => &["$code", "$scope"],
        "$binary" => &["$binary", "$type"],
        _ => &[],
    };
    if let Some(extra) = map
        .keys()
        .find(|k| **k != wrapper && !allowed.contains(&k.as_str()))
    {
        return Err(EjsonError::new(format!(
            "{wrapper} cannot be combined with the key {extra:?}"
        )));
    }
    let value = map.remove(&wrapper).unwrap_or(Value::Null);

    match wrapper.as_str() {
        "$oid" => {
            let hex = expect_str(&wrapper, &value)?;
            ObjectId::parse_str(hex).map(Bson::ObjectId).map_err(|_| {
                EjsonError::new(format!(
                    "$oid must be 24 hexadecimal characters, found {hex:?}"
                ))
            })
        }
        "$symbol" => Ok(Bson::Symbol(expect_str(&wrapper, &value)?.to_owned())),
        "$numberInt" => {
            let s = expect_str(&wrapper, &value)?;
            parse_integer::<i32>(s).map(Bson::Int32).ok_or_else(|| {
                EjsonError::new(format!(
                    "$numberInt must be a 32-bit integer in a string, found {s:?}"
                ))
            })
        }
        "$numberLong" => {
            let s = expect_str(&wrapper, &value)?;
            parse_integer::<i64>(s).map(Bson::Int64).ok_or_else(|| {
                EjsonError::new(format!(
                    "$numberLong must be a 64-bit integer in a string, found {s:?}"
                ))
            })
        }
        "$numberDouble" => {
            let s = expect_str(&wrapper, &value)?;
            parse_double(s).map(Bson::Double).ok_or_else(|| {
                EjsonError::new(format!(
                    "$numberDouble must be a decimal number, \"Infinity\", \"-Infinity\" or \"NaN\" in a string, found {s:?}"
                ))
            })
        }
        "$numberDecimal" => {
            let s = expect_str(&wrapper, &value)?;
            is_decimal_string(s)
                .then(|| s.parse::<Decimal128>().ok())
                .flatten()
                .map(Bson::Decimal128)
                .ok_or_else(|| {
                    EjsonError::new(format!(
                        "$numberDecimal must be a decimal number in a string, found {s:?}"
                    ))
                })
        }
        "$binary" => binary(value, map.remove("$type")),
        "$uuid" => uuid(expect_str(&wrapper, &value)?),
        "$code" => {
            let code = expect_str(&wrapper, &value)?.to_owned();
            match map.remove("$scope") {
                None => Ok(Bson::JavaScriptCode(code)),
                Some(Value::Object(scope)) => {
                    Ok(Bson::JavaScriptCodeWithScope(JavaScriptCodeWithScope {
                        code,
                        scope: to_document(scope).map_err(|e| e.within("$scope"))?,
                    }))
                }
                Some(_) => Err(EjsonError::new("$scope must be a document")),
            }
        }
        "$timestamp" => {
            let fields = exact_object(&wrapper, value, &["t", "i"])?;
            let part = |name: &str| {
                fields
                    .get(name)
                    .and_then(Value::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        EjsonError::new(format!(
                            "$timestamp.{name} must be an unsigned 32-bit integer"
                        ))
                    })
            };
            Ok(Bson::Timestamp(Timestamp {
                time: part("t")?,
                increment: part("i")?,
            }))
        }
        "$regularExpression" => {
            let fields = exact_object(&wrapper, value, &["pattern", "options"])?;
            let pattern = fields
                .get("pattern")
                .and_then(Value::as_str)
                .ok_or_else(|| EjsonError::new("$regularExpression.pattern must be a string"))?;
            let options = fields
                .get("options")
                .and_then(Value::as_str)
                .ok_or_else(|| EjsonError::new("$regularExpression.options must be a string"))?;
            regex(pattern, options)
        }
        "$date" => date(value),
        "$minKey" | "$maxKey" => {
            if value.as_u64() != Some(1) {
                return Err(EjsonError::new(format!("{wrapper} must be 1")));
            }
            Ok(if wrapper == "$minKey" {
                Bson::MinKey
            } else {
                Bson::MaxKey
            })
        }
        "$undefined" => {
            if value != Value::Bool(true) {
                return Err(EjsonError::new("$undefined must be true"));
            }
            Ok(Bson::Undefined)
        }
        "$dbPointer" => {
            // DBPointer is deprecated and its fields are not constructible outside the bson
            // crate; hand the canonical form to the crate's own reader.
            let fields = exact_object(&wrapper, value, &["$ref", "$id"])?;
            let mut wrapped = Map::new();
            wrapped.insert(wrapper.clone(), Value::Object(fields));
            Bson::try_from(Value::Object(wrapped)).map_err(|_| {
                EjsonError::new(
                    "$dbPointer must be {\"$ref\": <string>, \"$id\": {\"$oid\": <hex>}}",
                )
            })
        }
        _ => unreachable!("every key in WRAPPER_KEYS has an arm"),
    }
}

impl EjsonError {
    /// Prefixes the path of the field the error was found in.
    pub fn within(self, key: &str) -> Self {
        if self.0.starts_with("at ") {
            // Already has a path: "at a.b: ..." becomes "at key.a.b: ...".
            Self(format!("at {key}.{}", &self.0[3..]))
        } else {
            Self(format!("at {key}: {}", self.0))
        }
    }
}

fn expect_str<'v>(wrapper: &str, value: &'v Value) -> Result<&'v str> {
    value
        .as_str()
        .ok_or_else(|| EjsonError::new(format!("{wrapper} must be a string")))
}

fn exact_object(wrapper: &str, value: Value, keys: &[&str]) -> Result<Map<String, Value>> {
    let Value::Object(fields) = value else {
        return Err(EjsonError::new(format!(
            "{wrapper} must be a document with the keys {keys:?}"
        )));
    };
    if fields.len() != keys.len() || !keys.iter().all(|k| fields.contains_key(*k)) {
        return Err(EjsonError::new(format!(
            "{wrapper} must be a document with exactly the keys {keys:?}"
        )));
    }
    Ok(fields)
}

fn parse_integer<T: std::str::FromStr>(s: &str) -> Option<T> {
    // FromStr accepts a leading '+', Extended JSON does not.
    if s.starts_with('+') {
        return None;
    }
    s.parse().ok()
}

fn parse_double(s: &str) -> Option<f64> {
    match s {
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        // f64::from_str also takes "inf", "nan" and friends; Extended JSON only takes numbers,
        // and a number a double cannot hold is an error, not an infinity or a zero.
        _ if is_decimal_string(s) => {
            let value: f64 = s.parse().ok()?;
            let mantissa_is_zero = s
                .split(['e', 'E'])
                .next()
                .is_some_and(|m| m.bytes().all(|b| !b.is_ascii_digit() || b == b'0'));
            let overflow = value.is_infinite();
            let underflow = value == 0.0 && !mantissa_is_zero;
            (!overflow && !underflow).then_some(value)
        }
        _ => None,
    }
}

/// A decimal number as Extended JSON writes one: optional sign, digits with an optional
/// fraction (at least one digit), optional exponent; or NaN and the infinities.
fn is_decimal_string(s: &str) -> bool {
    if matches!(s, "NaN" | "Infinity" | "-Infinity") {
        return true;
    }
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (mantissa, exponent) = match s.split_once(['e', 'E']) {
        Some((m, e)) => (m, Some(e)),
        None => (s, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok =
        digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

fn regex(pattern: &str, options: &str) -> Result<Bson> {
    let mut flags: Vec<char> = options.chars().collect();
    if let Some(bad) = flags.iter().find(|c| !"ilmsux".contains(**c)) {
        return Err(EjsonError::new(format!(
            "regular expression option {bad:?} is not one of i, l, m, s, u, x"
        )));
    }
    if pattern.contains('\0') || options.contains('\0') {
        return Err(EjsonError::new(
            "a regular expression cannot contain a NUL character",
        ));
    }
    flags.sort_unstable();
    flags.dedup();
    Ok(Bson::RegularExpression(Regex {
        pattern: pattern.to_owned(),
        options: flags.into_iter().collect(),
    }))
}

fn binary(value: Value, legacy_type: Option<Value>) -> Result<Bson> {
    let (data, subtype) = match (value, legacy_type) {
        // v2: {"$binary": {"base64": "...", "subType": "hex"}}
        (Value::Object(fields), None) => {
            let fields = exact_object("$binary", Value::Object(fields), &["base64", "subType"])?;
            let data = fields
                .get("base64")
                .and_then(Value::as_str)
                .map(str::to_owned);
            let subtype = fields
                .get("subType")
                .and_then(Value::as_str)
                .map(str::to_owned);
            (data, subtype)
        }
        // v1: {"$binary": "...", "$type": "hex"}
        (Value::String(data), Some(Value::String(subtype))) => (Some(data), Some(subtype)),
        _ => (None, None),
    };
    let (Some(data), Some(subtype)) = (data, subtype) else {
        return Err(EjsonError::new(
            "$binary must be {\"base64\": <string>, \"subType\": <hex string>}",
        ));
    };
    let bytes = BASE64
        .decode(data.as_bytes())
        .map_err(|_| EjsonError::new("$binary.base64 is not valid base64"))?;
    let subtype = (subtype.len() <= 2)
        .then(|| u8::from_str_radix(&subtype, 16).ok())
        .flatten()
        .ok_or_else(|| {
            EjsonError::new(format!(
                "$binary.subType must be one or two hexadecimal digits, found {subtype:?}"
            ))
        })?;
    Ok(Bson::Binary(Binary {
        subtype: BinarySubtype::from(subtype),
        bytes,
    }))
}

fn uuid(s: &str) -> Result<Bson> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    let well_formed = s.len() == 36
        && [8, 13, 18, 23].iter().all(|i| s.as_bytes()[*i] == b'-')
        && hex.len() == 32;
    let bytes = well_formed
        .then(|| decode_hex(&hex))
        .flatten()
        .ok_or_else(|| {
            EjsonError::new(format!(
                "$uuid must look like \"00112233-4455-6677-8899-aabbccddeeff\", found {s:?}"
            ))
        })?;
    Ok(Bson::Binary(Binary {
        subtype: BinarySubtype::Uuid,
        bytes,
    }))
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn date(value: Value) -> Result<Bson> {
    let millis = match value {
        // Relaxed: an ISO-8601 string.
        Value::String(s) => {
            return DateTime::parse_rfc3339_str(&s)
                .map(Bson::DateTime)
                .map_err(|_| {
                    EjsonError::new(format!(
                        "$date must be an ISO-8601 date such as \"2024-01-31T12:00:00Z\", found {s:?}"
                    ))
                });
        }
        // Canonical: {"$numberLong": "<millis>"}.
        Value::Object(fields) => match to_bson(Value::Object(fields)) {
            Ok(Bson::Int64(ms)) => Some(ms),
            Ok(Bson::Int32(ms)) => Some(i64::from(ms)),
            _ => None,
        },
        // Legacy v1: milliseconds as a number.
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    millis
        .map(|ms| Bson::DateTime(DateTime::from_millis(ms)))
        .ok_or_else(|| {
            EjsonError::new(
                "$date must be an ISO-8601 string or {\"$numberLong\": \"<milliseconds>\"}",
            )
        })
}

/// The name of a BSON type as users know it, for error messages.
pub fn bson_type_name(value: &Bson) -> &'static str {
    match value {
        Bson::Double(_) => "a double",
        Bson::String(_) => "a string",
        Bson::Array(_) => "an array",
        Bson::Document(_) => "a document",
        Bson::Boolean(_) => "a boolean",
        Bson::Null => "null",
        Bson::RegularExpression(_) => "a regular expression",
        Bson::JavaScriptCode(_) | Bson::JavaScriptCodeWithScope(_) => "JavaScript code",
        Bson::Int32(_) => "a 32-bit integer",
        Bson::Int64(_) => "a 64-bit integer",
        Bson::Timestamp(_) => "a timestamp",
        Bson::Binary(_) => "binary data",
        Bson::ObjectId(_) => "an ObjectId",
        Bson::DateTime(_) => "a date",
        Bson::Symbol(_) => "a symbol",
        Bson::Decimal128(_) => "a decimal",
        Bson::Undefined => "undefined",
        Bson::MaxKey => "MaxKey",
        Bson::MinKey => "MinKey",
        Bson::DbPointer(_) => "a DBPointer",
    }
}

// ---------------------------------------------------------------------------------------------
// Output

/// Raw BSON from the server that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the server sent malformed BSON")]
pub struct MalformedBson;

impl From<mongodb::bson::raw::Error> for MalformedBson {
    fn from(_: mongodb::bson::raw::Error) -> Self {
        MalformedBson
    }
}

/// Appends `doc` to `out` as a JSON object.
pub fn write_document(
    out: &mut Vec<u8>,
    doc: &RawDocument,
    mode: OutputMode,
) -> std::result::Result<(), MalformedBson> {
    out.push(b'{');
    for (i, element) in doc.iter().enumerate() {
        let (key, value) = element?;
        if i > 0 {
            out.push(b',');
        }
        write_str(out, key);
        out.push(b':');
        write_value(out, value, mode)?;
    }
    out.push(b'}');
    Ok(())
}

fn write_array(
    out: &mut Vec<u8>,
    array: &RawArray,
    mode: OutputMode,
) -> std::result::Result<(), MalformedBson> {
    out.push(b'[');
    for (i, value) in array.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_value(out, value?, mode)?;
    }
    out.push(b']');
    Ok(())
}

/// Appends one BSON value to `out` as JSON.
pub fn write_value(
    out: &mut Vec<u8>,
    value: RawBsonRef<'_>,
    mode: OutputMode,
) -> std::result::Result<(), MalformedBson> {
    use OutputMode::{Ejson, Json};
    match (value, mode) {
        (RawBsonRef::Document(doc), _) => write_document(out, doc, mode)?,
        (RawBsonRef::Array(array), _) => write_array(out, array, mode)?,
        (RawBsonRef::String(s), _) => write_str(out, s),
        (RawBsonRef::Boolean(b), _) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        (RawBsonRef::Null, _) => out.extend_from_slice(b"null"),

        (RawBsonRef::Int32(n), Json) => write_display(out, n),
        (RawBsonRef::Int32(n), Ejson) => wrap_str(out, "$numberInt", |o| write_display(o, n)),
        (RawBsonRef::Int64(n), Json) => write_display(out, n),
        (RawBsonRef::Int64(n), Ejson) => wrap_str(out, "$numberLong", |o| write_display(o, n)),
        (RawBsonRef::Double(f), Json) if f.is_finite() => write_f64(out, f),
        (RawBsonRef::Double(f), Json) => write_str(out, non_finite_name(f)),
        (RawBsonRef::Double(f), Ejson) => wrap_str(out, "$numberDouble", |o| {
            if f.is_finite() {
                write_f64(o, f);
            } else {
                o.extend_from_slice(non_finite_name(f).as_bytes());
            }
        }),
        (RawBsonRef::Decimal128(d), Json) => write_str(out, &d.to_string()),
        (RawBsonRef::Decimal128(d), Ejson) => {
            wrap_str(out, "$numberDecimal", |o| write_display(o, d))
        }
        (RawBsonRef::ObjectId(oid), Json) => write_str(out, &oid.to_hex()),
        (RawBsonRef::ObjectId(oid), Ejson) => wrap_str(out, "$oid", |o| {
            o.extend_from_slice(oid.to_hex().as_bytes())
        }),
        (RawBsonRef::DateTime(dt), Json) => {
            out.push(b'"');
            write_iso8601(out, dt.timestamp_millis());
            out.push(b'"');
        }
        (RawBsonRef::DateTime(dt), Ejson) => {
            out.extend_from_slice(b"{\"$date\":");
            wrap_str(out, "$numberLong", |o| {
                write_display(o, dt.timestamp_millis())
            });
            out.push(b'}');
        }
        (RawBsonRef::Binary(bin), Json) => {
            out.extend_from_slice(b"{\"Subtype\":");
            write_display(out, u8::from(bin.subtype));
            out.extend_from_slice(b",\"Data\":\"");
            out.extend_from_slice(BASE64.encode(bin.bytes).as_bytes());
            out.extend_from_slice(b"\"}");
        }
        (RawBsonRef::Binary(bin), Ejson) => {
            out.extend_from_slice(b"{\"$binary\":{\"base64\":\"");
            out.extend_from_slice(BASE64.encode(bin.bytes).as_bytes());
            out.extend_from_slice(b"\",\"subType\":\"");
            let mut hex = String::with_capacity(2);
            let _ = write!(hex, "{:02x}", u8::from(bin.subtype));
            out.extend_from_slice(hex.as_bytes());
            out.extend_from_slice(b"\"}}");
        }
        (RawBsonRef::RegularExpression(re), Json) => {
            out.extend_from_slice(b"{\"Pattern\":");
            write_str(out, re.pattern);
            out.extend_from_slice(b",\"Options\":");
            write_str(out, re.options);
            out.push(b'}');
        }
        (RawBsonRef::RegularExpression(re), Ejson) => {
            let mut options: Vec<char> = re.options.chars().collect();
            options.sort_unstable();
            let options: String = options.into_iter().collect();
            out.extend_from_slice(b"{\"$regularExpression\":{\"pattern\":");
            write_str(out, re.pattern);
            out.extend_from_slice(b",\"options\":");
            write_str(out, &options);
            out.extend_from_slice(b"}}");
        }
        (RawBsonRef::Timestamp(ts), Json) => {
            out.extend_from_slice(b"{\"T\":");
            write_display(out, ts.time);
            out.extend_from_slice(b",\"I\":");
            write_display(out, ts.increment);
            out.push(b'}');
        }
        (RawBsonRef::Timestamp(ts), Ejson) => {
            out.extend_from_slice(b"{\"$timestamp\":{\"t\":");
            write_display(out, ts.time);
            out.extend_from_slice(b",\"i\":");
            write_display(out, ts.increment);
            out.extend_from_slice(b"}}");
        }
        (RawBsonRef::MinKey | RawBsonRef::MaxKey, Json) => out.extend_from_slice(b"{}"),
        (RawBsonRef::MinKey, Ejson) => out.extend_from_slice(b"{\"$minKey\":1}"),
        (RawBsonRef::MaxKey, Ejson) => out.extend_from_slice(b"{\"$maxKey\":1}"),
        (RawBsonRef::Undefined, Json) => out.extend_from_slice(b"null"),
        (RawBsonRef::Undefined, Ejson) => out.extend_from_slice(b"{\"$undefined\":true}"),
        (RawBsonRef::Symbol(s), Json) => write_str(out, s),
        (RawBsonRef::Symbol(s), Ejson) => {
            out.extend_from_slice(b"{\"$symbol\":");
            write_str(out, s);
            out.push(b'}');
        }
        (RawBsonRef::JavaScriptCode(code), Json) => write_str(out, code),
        (RawBsonRef::JavaScriptCode(code), Ejson) => {
            out.extend_from_slice(b"{\"$code\":");
            write_str(out, code);
            out.push(b'}');
        }
        (RawBsonRef::JavaScriptCodeWithScope(cws), Json) => {
            out.extend_from_slice(b"{\"Code\":");
            write_str(out, cws.code);
            out.extend_from_slice(b",\"Scope\":");
            write_document(out, cws.scope, mode)?;
            out.push(b'}');
        }
        (RawBsonRef::JavaScriptCodeWithScope(cws), Ejson) => {
            out.extend_from_slice(b"{\"$code\":");
            write_str(out, cws.code);
            out.extend_from_slice(b",\"$scope\":");
            write_document(out, cws.scope, mode)?;
            out.push(b'}');
        }
        (RawBsonRef::DbPointer(_), _) => {
            // Deprecated and rare: its fields are private to the bson crate, so take the slow path.
            let bson = Bson::try_from(value.to_raw_bson()).map_err(|_| MalformedBson)?;
            let json = bson.into_canonical_extjson();
            let json = match (mode, json) {
                (Json, Value::Object(mut wrapper)) => {
                    wrapper.remove("$dbPointer").unwrap_or(Value::Null)
                }
                (_, json) => json,
            };
            // Writing a serde_json::Value into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, &json);
        }
    }
    Ok(())
}

fn non_finite_name(f: f64) -> &'static str {
    if f.is_nan() {
        "NaN"
    } else if f > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// Writes `{"<key>":"<what f writes>"}`.
fn wrap_str(out: &mut Vec<u8>, key: &str, f: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\":\"");
    f(out);
    out.extend_from_slice(b"\"}");
}

fn write_display(out: &mut Vec<u8>, value: impl std::fmt::Display) {
    struct Adapter<'a>(&'a mut Vec<u8>);
    impl std::fmt::Write for Adapter<'_> {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            self.0.extend_from_slice(s.as_bytes());
            Ok(())
        }
    }
    let _ = write!(Adapter(out), "{value}");
}

fn write_f64(out: &mut Vec<u8>, f: f64) {
    // serde_json prints the shortest representation that reads back to the same double.
    let _ = serde_json::to_writer(&mut *out, &f);
}

/// Appends `s` as a JSON string with the escapes JSON requires.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x00..=0x1f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// Writes milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.sssZ`, the form JavaScript's
/// `Date.prototype.toISOString` produces (with a six-digit signed year outside 0000..=9999).
fn write_iso8601(out: &mut Vec<u8>, millis: i64) {
    let days = millis.div_euclid(86_400_000);
    let ms_of_day = millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    let mut s = String::with_capacity(27);
    if (0..=9999).contains(&year) {
        let _ = write!(s, "{year:04}");
    } else {
        let _ = write!(s, "{}{:06}", if year < 0 { '-' } else { '+' }, year.abs());
    }
    let _ = write!(
        s,
        "-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000
    );
    out.extend_from_slice(s.as_bytes());
}

/// Howard Hinnant's days-to-civil algorithm: the proleptic Gregorian date of a day number.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mongodb::bson::{RawDocumentBuf, doc};
    use proptest::prelude::*;
    use serde_json::json;

    fn render(doc: &Document, mode: OutputMode) -> String {
        let raw = RawDocumentBuf::from_document(doc).expect("encodable");
        let mut out = Vec::new();
        write_document(&mut out, &raw, mode).expect("well-formed");
        String::from_utf8(out).expect("utf-8")
    }

    #[test]
    fn json_mode_flattens_types_like_the_data_api() {
        let oid = ObjectId::parse_str("65f0a1b2c3d4e5f601234567").expect("hex");
        let doc = doc! {
            "_id": oid,
            "at": DateTime::from_millis(1_700_000_000_123),
            "i": 1_i32, "l": 5_000_000_000_i64, "d": 1.5,
            "dec": "12.50".parse::<Decimal128>().expect("decimal"),
            "bin": Binary { subtype: BinarySubtype::Generic, bytes: vec![1, 2, 3] },
            "re": Regex { pattern: "^a".into(), options: "i".into() },
            "ts": Timestamp { time: 7, increment: 9 },
            "min": Bson::MinKey, "max": Bson::MaxKey, "n": Bson::Null,
        };
        let json: Value = serde_json::from_str(&render(&doc, OutputMode::Json)).expect("json");
        assert_eq!(
            json,
            json!({
                "_id": "65f0a1b2c3d4e5f601234567",
                "at": "2023-11-14T22:13:20.123Z",
                "i": 1, "l": 5_000_000_000_i64, "d": 1.5,
                "dec": "12.50",
                "bin": {"Subtype": 0, "Data": "AQID"},
                "re": {"Pattern": "^a", "Options": "i"},
                "ts": {"T": 7, "I": 9},
                "min": {}, "max": {}, "n": null,
            })
        );
    }

    #[test]
    fn ejson_mode_writes_canonical_wrappers() {
        let doc = doc! { "i": 1_i32, "l": 2_i64, "d": 1.0, "at": DateTime::from_millis(0) };
        assert_eq!(
            render(&doc, OutputMode::Ejson),
            r#"{"i":{"$numberInt":"1"},"l":{"$numberLong":"2"},"d":{"$numberDouble":"1.0"},"at":{"$date":{"$numberLong":"0"}}}"#
        );
    }

    #[test]
    fn strings_are_escaped() {
        let doc = doc! { "s": "quote\" back\\ nl\n ctl\u{1} é" };
        let text = render(&doc, OutputMode::Json);
        let back: Value = serde_json::from_str(&text).expect("valid json");
        assert_eq!(back["s"], "quote\" back\\ nl\n ctl\u{1} é");
    }

    #[test]
    fn iso_dates_cover_negative_and_far_years() {
        let iso = |ms: i64| {
            let mut out = Vec::new();
            write_iso8601(&mut out, ms);
            String::from_utf8(out).expect("ascii")
        };
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(iso(253_402_300_800_000), "+010000-01-01T00:00:00.000Z");
    }

    #[test]
    fn relaxed_and_canonical_input_read_the_same() {
        let relaxed = json!({"n": 1, "big": 5_000_000_000_i64, "f": 2.5,
            "at": {"$date": "2024-01-31T12:00:00Z"}, "id": {"$oid": "65f0a1b2c3d4e5f601234567"}});
        let canonical = json!({"n": {"$numberInt": "1"}, "big": {"$numberLong": "5000000000"},
            "f": {"$numberDouble": "2.5"}, "at": {"$date": {"$numberLong": "1706702400000"}},
            "id": {"$oid": "65f0a1b2c3d4e5f601234567"}});
        assert_eq!(to_bson(relaxed), to_bson(canonical));
    }

    #[test]
    fn query_operators_are_plain_documents() {
        let filter = json!({"age": {"$gt": 5}, "name": {"$regex": "^a", "$options": "i"}});
        let Ok(Bson::Document(doc)) = to_bson(filter) else {
            panic!("a filter is a document");
        };
        assert_eq!(
            doc,
            doc! {"age": {"$gt": 5}, "name": {"$regex": "^a", "$options": "i"}}
        );
    }

    #[test]
    fn invalid_wrappers_are_rejected_with_their_name() {
        for (input, expected) in [
            (json!({"$oid": 1}), "$oid must be a string"),
            (json!({"$oid": "zz"}), "$oid must be 24 hexadecimal"),
            (json!({"$numberInt": "3000000000"}), "$numberInt must be"),
            (json!({"$numberLong": 5}), "$numberLong must be a string"),
            (json!({"$numberDouble": "inf"}), "$numberDouble must be"),
            (json!({"$date": "yesterday"}), "$date must be an ISO-8601"),
            (
                json!({"$oid": "65f0a1b2c3d4e5f601234567", "x": 1}),
                "cannot be combined",
            ),
            (
                json!({"$binary": {"base64": "!!", "subType": "00"}}),
                "not valid base64",
            ),
            (json!({"$uuid": "nope"}), "$uuid must look like"),
            (
                json!({"$regularExpression": {"pattern": "a", "options": "q"}}),
                "option 'q'",
            ),
            (json!({"$minKey": 2}), "$minKey must be 1"),
            (json!({"$numberDecimal": ""}), "$numberDecimal must be"),
            (json!({"$numberDecimal": "-+1"}), "$numberDecimal must be"),
            (json!({"$numberDecimal": "e5"}), "$numberDecimal must be"),
            (json!({"$numberDecimal": "snan"}), "$numberDecimal must be"),
            (json!({"$numberDouble": "1e999"}), "$numberDouble must be"),
            (json!({"$numberDouble": "1e-999"}), "$numberDouble must be"),
            (json!({"a\u{0}b": 1}), "NUL character"),
            (
                json!({"a": {"b": {"$numberInt": "x"}}}),
                "at a.b: $numberInt",
            ),
            (json!(18_446_744_073_709_551_615_u64), "out of range"),
        ] {
            let err = to_bson(input.clone()).expect_err(&input.to_string());
            assert!(err.0.contains(expected), "{input}: {err}");
        }
    }

    #[test]
    fn uuid_and_legacy_binary_are_accepted() {
        let uuid = to_bson(json!({"$uuid": "00112233-4455-6677-8899-aabbccddeeff"})).expect("uuid");
        let legacy = to_bson(json!({"$binary": "ABEiM0RVZneImaq7zN3u/w==", "$type": "04"}))
            .expect("legacy binary");
        assert_eq!(uuid, legacy);
    }

    fn arb_bson() -> impl Strategy<Value = Bson> {
        let leaf = prop_oneof![
            any::<f64>().prop_map(Bson::Double),
            ".{0,12}".prop_map(Bson::String),
            any::<bool>().prop_map(Bson::Boolean),
            Just(Bson::Null),
            any::<i32>().prop_map(Bson::Int32),
            any::<i64>().prop_map(Bson::Int64),
            (any::<u32>(), any::<u32>())
                .prop_map(|(time, increment)| Bson::Timestamp(Timestamp { time, increment })),
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..24)).prop_map(
                |(subtype, bytes)| {
                    // Subtype 2 has a legacy inner length prefix the raw reader re-frames.
                    let subtype = if subtype == 2 { 0 } else { subtype };
                    Bson::Binary(Binary {
                        subtype: BinarySubtype::from(subtype),
                        bytes,
                    })
                }
            ),
            any::<[u8; 12]>().prop_map(|b| Bson::ObjectId(ObjectId::from_bytes(b))),
            any::<i64>().prop_map(|ms| Bson::DateTime(DateTime::from_millis(ms))),
            // Decimals as a server stores them: canonical encodings of parsed decimal strings.
            prop_oneof![
                (any::<i64>(), -6000_i32..6000).prop_map(|(m, e)| format!("{m}E{e}")),
                Just("NaN".to_owned()),
                Just("Infinity".to_owned()),
                Just("-Infinity".to_owned()),
                Just("-0".to_owned()),
            ]
            .prop_filter_map("parsable decimal", |s| s
                .parse::<Decimal128>()
                .ok()
                .map(Bson::Decimal128)),
            ("[a-z^$.*]{0,8}", "i?l?m?s?u?x?").prop_map(|(pattern, options)| {
                Bson::RegularExpression(Regex { pattern, options })
            }),
            "[a-z ]{0,8}".prop_map(Bson::JavaScriptCode),
            "[a-z]{0,8}".prop_map(Bson::Symbol),
            Just(Bson::MinKey),
            Just(Bson::MaxKey),
            Just(Bson::Undefined),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Bson::Array),
                proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,6}", inner), 0..6)
                    .prop_map(|pairs| Bson::Document(pairs.into_iter().collect())),
            ]
        })
    }

    /// Bitwise equality, so NaN payloads, -0.0 and Decimal128 encodings all count.
    fn same(a: &Bson, b: &Bson) -> bool {
        let wrap = |v: &Bson| {
            RawDocumentBuf::from_document(&doc! {"v": v.clone()}).map(|d| d.into_bytes())
        };
        match (wrap(a), wrap(b)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn bson_to_canonical_ejson_to_bson_is_the_identity(value in arb_bson()) {
            let doc = doc! {"v": value.clone()};
            let text = render(&doc, OutputMode::Ejson);
            let json: Value = serde_json::from_str(&text).expect("valid JSON");
            let back = to_bson(json).expect("reads back");
            let Bson::Document(mut back) = back else { panic!("a document") };
            let back = back.remove("v").expect("field v");
            // NaN payloads are not preserved by any text form; compare NaN as NaN.
            if let (Bson::Double(a), Bson::Double(b)) = (&value, &back) {
                if a.is_nan() {
                    prop_assert!(b.is_nan());
                    return Ok(());
                }
            }
            prop_assert!(same(&value, &back), "{value:?} came back as {back:?} via {text}");
        }

        #[test]
        fn canonical_output_reads_back_with_the_bson_crate_too(value in arb_bson()) {
            let doc = doc! {"v": value};
            let text = render(&doc, OutputMode::Ejson);
            let json: Value = serde_json::from_str(&text).expect("valid JSON");
            let ours = to_bson(json.clone()).expect("ours");
            let theirs = Bson::try_from(json).expect("bson crate");
            prop_assert!(same(&ours, &theirs) || text.contains("NaN"));
        }

        #[test]
        fn json_mode_always_writes_valid_json(value in arb_bson()) {
            let text = render(&doc! {"v": value}, OutputMode::Json);
            prop_assert!(serde_json::from_str::<Value>(&text).is_ok(), "{}", text);
        }
    }
}
