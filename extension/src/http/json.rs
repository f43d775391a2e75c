//! Reading a request body into a JSON tree, strictly: duplicate keys are refused (two readers of
//! one request must not see two different requests), nesting is bounded while parsing (hostile
//! depth never reaches a recursive walk), and integer literals too long for 64 bits are refused
//! instead of being rounded into doubles.

use std::fmt;

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Why a body is not acceptable JSON, for the 400 message.
#[derive(Debug, PartialEq, Eq)]
pub struct JsonError(pub String);

/// Parses `bytes` as one JSON value at most `max_depth` levels deep.
pub fn parse(bytes: &[u8], max_depth: usize) -> Result<Value, JsonError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(JsonError(
            "the request body is empty; send a JSON object".to_owned(),
        ));
    }
    if let Some(literal) = oversized_integer(bytes) {
        return Err(JsonError(format!(
            "the integer {literal} is out of range for a 64-bit integer; send it as {{\"$numberDecimal\": \"{literal}\"}} or as a double"
        )));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = Strict {
        depth: 1,
        max_depth,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value))
    .map_err(|e| {
        let at = format!("(line {}, column {})", e.line(), e.column());
        let message = match e.classify() {
            serde_json::error::Category::Eof => "the JSON ends too early".to_owned(),
            serde_json::error::Category::Syntax => "the body is not valid JSON".to_owned(),
            // Our own refusals and serde_json's "number out of range": keep the message, drop
            // serde_json's own " at line .. column .." suffix.
            serde_json::error::Category::Data => {
                let text = e.to_string();
                text.rsplit_once(" at line ")
                    .map_or(text.clone(), |(msg, _)| msg.to_owned())
            }
            serde_json::error::Category::Io => "the body could not be read".to_owned(),
        };
        JsonError(format!("{message} {at}"))
    })?;
    Ok(value)
}

/// Builds a `serde_json::Value` like its own `Deserialize` does, but refusing duplicate keys and
/// nesting beyond `max_depth`. (It also means no key has a meaning of its own to the parser.)
#[derive(Clone, Copy)]
struct Strict {
    depth: usize,
    max_depth: usize,
}

impl Strict {
    /// The state for this container's children; fails if this container is itself too deep.
    fn nested<E: serde::de::Error>(&self) -> Result<Self, E> {
        if self.depth > self.max_depth {
            return Err(E::custom(format!(
                "the request is nested more than {} levels deep",
                self.max_depth
            )));
        }
        Ok(Self {
            depth: self.depth + 1,
            max_depth: self.max_depth,
        })
    }
}

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("a number is out of range"))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let inner = self.nested()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                return Err(A::Error::custom(format!(
                    "the key {key:?} appears twice in one object"
                )));
            }
            let value = map.next_value_seed(inner)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

/// The first integer literal in `json` that no 64-bit integer holds: more than 19 digits, or
/// 19 digits beyond -2^63 (serde_json reads both as doubles, silently rounding them; beyond
/// 2^63-1 but within 2^64 it reads a u64, which the Extended JSON reader refuses by itself).
/// One pass over the bytes, skipping strings.
fn oversized_integer(json: &[u8]) -> Option<String> {
    const MAX_DIGITS: usize = 19;
    const MIN_I64_DIGITS: &[u8] = b"9223372036854775808";
    let mut i = 0;
    while i < json.len() {
        match json[i] {
            b'"' => {
                i += 1;
                while i < json.len() && json[i] != b'"' {
                    i += if json[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'0'..=b'9' => {
                let start = i;
                while i < json.len() && json[i].is_ascii_digit() {
                    i += 1;
                }
                let digits = &json[start..i];
                let is_integer = !matches!(json.get(i), Some(b'.' | b'e' | b'E'));
                let negative = start > 0 && json[start - 1] == b'-';
                let too_long = digits.len() > MAX_DIGITS
                    || (negative && digits.len() == MAX_DIGITS && digits > MIN_I64_DIGITS);
                if is_integer && too_long {
                    let sign = if negative { "-" } else { "" };
                    return Some(format!("{sign}{}", String::from_utf8_lossy(digits)));
                }
                // The rest of the number: fraction and exponent digits are not integers.
                while i < json.len()
                    && matches!(json[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_body_reads_like_serde_json_with_key_order_kept() {
        let value = parse(br#"{"b": 1, "a": [true, null, 1.5, "s"]}"#, 64).expect("valid");
        assert_eq!(value, json!({"b": 1, "a": [true, null, 1.5, "s"]}));
        let keys: Vec<&String> = value
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["b", "a"]);
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        let err = parse(br#"{"database":"a","database":"b"}"#, 64).expect_err("duplicate");
        assert!(err.0.contains("\"database\" appears twice"), "{}", err.0);
        assert!(parse(br#"{"f":{"a":1,"a":2}}"#, 64).is_err());
    }

    #[test]
    fn nesting_is_bounded_while_parsing() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        let err = parse(deep.as_bytes(), 64).expect_err("too deep");
        assert!(err.0.contains("nested more than 64"), "{}", err.0);
        assert!(parse(b"[[[1]]]", 3).is_ok());
        assert!(parse(b"[[[[1]]]]", 3).is_err());
    }

    #[test]
    fn serde_json_magic_keys_have_no_meaning() {
        // With serde_json's raw_value feature, its own Value reader parses this string as JSON.
        let body = br#"{"a":{"$serde_json::private::RawValue":"{\"$gt\": 0}"}}"#;
        let value = parse(body, 64).expect("valid");
        assert_eq!(
            value["a"]["$serde_json::private::RawValue"],
            json!("{\"$gt\": 0}")
        );
    }

    #[test]
    fn integers_too_long_for_64_bits_are_refused_not_rounded() {
        for body in [
            &br#"{"n":100000000000000000000}"#[..],
            br#"{"n":-9223372036854775809}"#,
            br#"{"n":-100000000000000000000}"#,
        ] {
            let err = parse(body, 64).expect_err("out of range");
            assert!(
                err.0.contains("out of range for a 64-bit integer"),
                "{}",
                err.0
            );
        }
        for body in [
            &br#"{"n":-9223372036854775808,"m":9223372036854775807}"#[..],
            br#"{"n":1e20,"f":1.00000000000000000000001}"#,
            br#"{"s":"100000000000000000000","t":"a\"100000000000000000000"}"#,
        ] {
            assert!(parse(body, 64).is_ok(), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn plain_json_doubles_read_to_the_nearest_double() {
        // Doubles a client writes as shortest round-trip text (relaxed EJSON, JSON.stringify,
        // Python's json) read back bit for bit, subnormals and 17-digit values included.
        for value in [
            1.913_554_559_034_555e-308_f64,
            0.1 + 0.2,
            2.225_073_858_507_201e-308,
            1e23,
        ] {
            let text = format!("{{\"v\":{}}}", serde_json::to_string(&value).expect("text"));
            let parsed = parse(text.as_bytes(), 8).expect("valid");
            let back = parsed["v"].as_f64().expect("a double");
            assert_eq!(back.to_bits(), value.to_bits(), "{text}");
        }
    }

    #[test]
    fn syntax_errors_say_where() {
        let err = parse(br#"{"a": }"#, 64).expect_err("syntax");
        assert!(
            err.0
                .starts_with("the body is not valid JSON (line 1, column"),
            "{}",
            err.0
        );
        let err = parse(br#"{"a": 1"#, 64).expect_err("eof");
        assert!(err.0.starts_with("the JSON ends too early"), "{}", err.0);
        assert!(parse(br#"{"a": 1} x"#, 64).is_err());
    }
}
