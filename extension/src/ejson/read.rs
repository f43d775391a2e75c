//! Reading Extended JSON v2 (canonical and relaxed, and the common v1 wrappers) straight into raw
//! BSON: the bytes a command is made of, with no document tree and no serde pass in between.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bson::oid::ObjectId;
use bson::raw::RawJavaScriptCodeWithScope;
use bson::spec::BinarySubtype;
use bson::{
    Binary, Bson, DateTime, Decimal128, RawArrayBuf, RawBson, RawDocumentBuf, Regex, Timestamp,
};
use serde_json::{Map, Value};

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
pub fn to_document(map: Map<String, Value>) -> Result<RawDocumentBuf> {
    match object_to_bson(map)? {
        RawBson::Document(doc) => Ok(doc),
        other => Err(EjsonError::new(format!(
            "expected a document, found {}",
            bson_type_name(&other)
        ))),
    }
}

/// Converts a JSON value, read as Extended JSON, into a BSON value.
pub fn to_bson(value: Value) -> Result<RawBson> {
    match value {
        Value::Null => Ok(RawBson::Null),
        Value::Bool(b) => Ok(RawBson::Boolean(b)),
        Value::String(s) => Ok(RawBson::String(s)),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i32::try_from(i).map_or(RawBson::Int64(i), RawBson::Int32))
            } else if n.is_u64() {
                Err(EjsonError::new(format!(
                    "the number {n} is out of range for a 64-bit integer; send it as {{\"$numberDecimal\": \"{n}\"}}"
                )))
            } else {
                n.as_f64()
                    .map(RawBson::Double)
                    .ok_or_else(|| EjsonError::new(format!("the number {n} is out of range")))
            }
        }
        Value::Array(items) => {
            let mut array = RawArrayBuf::new();
            for item in items {
                array.push(to_bson(item)?);
            }
            Ok(RawBson::Array(array))
        }
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

fn object_to_bson(mut map: Map<String, Value>) -> Result<RawBson> {
    let wrapper = map
        .keys()
        .find(|k| k.starts_with('$') && WRAPPER_KEYS.contains(&k.as_str()))
        .cloned();
    let Some(wrapper) = wrapper else {
        let mut doc = RawDocumentBuf::new();
        for (key, value) in map {
            if key.contains('\0') {
                return Err(EjsonError::new(format!(
                    "the key {key:?} contains a NUL character, which BSON keys cannot hold"
                )));
            }
            let value = to_bson(value).map_err(|e| e.within(&key))?;
            doc.append(key, value);
        }
        return Ok(RawBson::Document(doc));
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
            ObjectId::parse_str(hex)
                .map(RawBson::ObjectId)
                .map_err(|_| {
                    EjsonError::new(format!(
                        "$oid must be 24 hexadecimal characters, found {hex:?}"
                    ))
                })
        }
        "$symbol" => Ok(RawBson::Symbol(expect_str(&wrapper, &value)?.to_owned())),
        "$numberInt" => {
            let s = expect_str(&wrapper, &value)?;
            parse_integer::<i32>(s).map(RawBson::Int32).ok_or_else(|| {
                EjsonError::new(format!(
                    "$numberInt must be a 32-bit integer in a string, found {s:?}"
                ))
            })
        }
        "$numberLong" => {
            let s = expect_str(&wrapper, &value)?;
            parse_integer::<i64>(s).map(RawBson::Int64).ok_or_else(|| {
                EjsonError::new(format!(
                    "$numberLong must be a 64-bit integer in a string, found {s:?}"
                ))
            })
        }
        "$numberDouble" => {
            let s = expect_str(&wrapper, &value)?;
            parse_double(s).map(RawBson::Double).ok_or_else(|| {
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
                .map(RawBson::Decimal128)
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
                None => Ok(RawBson::JavaScriptCode(code)),
                Some(Value::Object(scope)) => Ok(RawBson::JavaScriptCodeWithScope(
                    RawJavaScriptCodeWithScope {
                        code,
                        scope: to_document(scope).map_err(|e| e.within("$scope"))?,
                    },
                )),
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
            Ok(RawBson::Timestamp(Timestamp {
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
                RawBson::MinKey
            } else {
                RawBson::MaxKey
            })
        }
        "$undefined" => {
            if value != Value::Bool(true) {
                return Err(EjsonError::new("$undefined must be true"));
            }
            Ok(RawBson::Undefined)
        }
        "$dbPointer" => {
            // DBPointer is deprecated and its fields are not constructible outside the bson
            // crate; hand the canonical form to the crate's own reader.
            let fields = exact_object(&wrapper, value, &["$ref", "$id"])?;
            let mut wrapped = Map::new();
            wrapped.insert(wrapper.clone(), Value::Object(fields));
            Bson::try_from(Value::Object(wrapped))
                .ok()
                .and_then(|b| RawBson::try_from(b).ok())
                .ok_or_else(|| {
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

fn regex(pattern: &str, options: &str) -> Result<RawBson> {
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
    Ok(RawBson::RegularExpression(Regex {
        pattern: pattern.to_owned(),
        options: flags.into_iter().collect(),
    }))
}

fn binary(value: Value, legacy_type: Option<Value>) -> Result<RawBson> {
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
    Ok(Binary {
        subtype: BinarySubtype::from(subtype),
        bytes,
    }
    .into())
}

fn uuid(s: &str) -> Result<RawBson> {
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
    Ok(Binary {
        subtype: BinarySubtype::Uuid,
        bytes,
    }
    .into())
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn date(value: Value) -> Result<RawBson> {
    let millis = match value {
        // Relaxed: an ISO-8601 string.
        Value::String(s) => {
            return DateTime::parse_rfc3339_str(&s)
                .map(RawBson::DateTime)
                .map_err(|_| {
                    EjsonError::new(format!(
                        "$date must be an ISO-8601 date such as \"2024-01-31T12:00:00Z\", found {s:?}"
                    ))
                });
        }
        // Canonical: {"$numberLong": "<millis>"}.
        Value::Object(fields) => match to_bson(Value::Object(fields)) {
            Ok(RawBson::Int64(ms)) => Some(ms),
            Ok(RawBson::Int32(ms)) => Some(i64::from(ms)),
            _ => None,
        },
        // Legacy v1: milliseconds as a number.
        Value::Number(n) => n.as_i64(),
        _ => None,
    };
    millis
        .map(|ms| RawBson::DateTime(DateTime::from_millis(ms)))
        .ok_or_else(|| {
            EjsonError::new(
                "$date must be an ISO-8601 string or {\"$numberLong\": \"<milliseconds>\"}",
            )
        })
}

/// The name of a BSON type as users know it, for error messages.
pub fn bson_type_name(value: &RawBson) -> &'static str {
    match value {
        RawBson::Double(_) => "a double",
        RawBson::String(_) => "a string",
        RawBson::Array(_) => "an array",
        RawBson::Document(_) => "a document",
        RawBson::Boolean(_) => "a boolean",
        RawBson::Null => "null",
        RawBson::RegularExpression(_) => "a regular expression",
        RawBson::JavaScriptCode(_) | RawBson::JavaScriptCodeWithScope(_) => "JavaScript code",
        RawBson::Int32(_) => "a 32-bit integer",
        RawBson::Int64(_) => "a 64-bit integer",
        RawBson::Timestamp(_) => "a timestamp",
        RawBson::Binary(_) => "binary data",
        RawBson::ObjectId(_) => "an ObjectId",
        RawBson::DateTime(_) => "a date",
        RawBson::Symbol(_) => "a symbol",
        RawBson::Decimal128(_) => "a decimal",
        RawBson::Undefined => "undefined",
        RawBson::MaxKey => "MaxKey",
        RawBson::MinKey => "MinKey",
        RawBson::DbPointer(_) => "a DBPointer",
    }
}
