//! Writing raw BSON straight to JSON bytes, in one of the Data API's two output modes.

use std::fmt::Write as _;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bson::Bson;
use bson::raw::{RawArray, RawBsonRef, RawDocument};
use serde_json::Value;

use super::OutputMode;

/// Raw BSON from the server that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("the server sent malformed BSON")]
pub struct MalformedBson;

impl From<bson::raw::Error> for MalformedBson {
    fn from(_: bson::raw::Error) -> Self {
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
    use OutputMode::{Ejson, Json, Relaxed};
    if mode == OutputMode::Relaxed && write_relaxed(out, value) {
        return Ok(());
    }
    // Relaxed writes every other type as canonical does.
    match (value, mode) {
        (RawBsonRef::Document(doc), _) => write_document(out, doc, mode)?,
        (RawBsonRef::Array(array), _) => write_array(out, array, mode)?,
        (RawBsonRef::String(s), _) => write_str(out, s),
        (RawBsonRef::Boolean(b), _) => out.extend_from_slice(if b { b"true" } else { b"false" }),
        (RawBsonRef::Null, _) => out.extend_from_slice(b"null"),

        (RawBsonRef::Int32(n), Json) => write_display(out, n),
        (RawBsonRef::Int32(n), Ejson | Relaxed) => {
            wrap_str(out, "$numberInt", |o| write_display(o, n))
        }
        (RawBsonRef::Int64(n), Json) => write_display(out, n),
        (RawBsonRef::Int64(n), Ejson | Relaxed) => {
            wrap_str(out, "$numberLong", |o| write_display(o, n))
        }
        (RawBsonRef::Double(f), Json) if f.is_finite() => write_f64(out, f),
        (RawBsonRef::Double(f), Json) => write_str(out, non_finite_name(f)),
        (RawBsonRef::Double(f), Ejson | Relaxed) => wrap_str(out, "$numberDouble", |o| {
            if f.is_finite() {
                write_f64(o, f);
            } else {
                o.extend_from_slice(non_finite_name(f).as_bytes());
            }
        }),
        (RawBsonRef::Decimal128(d), Json) => write_str(out, &d.to_string()),
        (RawBsonRef::Decimal128(d), Ejson | Relaxed) => {
            wrap_str(out, "$numberDecimal", |o| write_display(o, d))
        }
        (RawBsonRef::ObjectId(oid), Json) => write_str(out, &oid.to_hex()),
        (RawBsonRef::ObjectId(oid), Ejson | Relaxed) => wrap_str(out, "$oid", |o| {
            o.extend_from_slice(oid.to_hex().as_bytes())
        }),
        (RawBsonRef::DateTime(dt), Json) => {
            out.push(b'"');
            write_iso8601(out, dt.timestamp_millis());
            out.push(b'"');
        }
        (RawBsonRef::DateTime(dt), Ejson | Relaxed) => {
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
        (RawBsonRef::Binary(bin), Ejson | Relaxed) => {
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
        (RawBsonRef::RegularExpression(re), Ejson | Relaxed) => {
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
        (RawBsonRef::Timestamp(ts), Ejson | Relaxed) => {
            out.extend_from_slice(b"{\"$timestamp\":{\"t\":");
            write_display(out, ts.time);
            out.extend_from_slice(b",\"i\":");
            write_display(out, ts.increment);
            out.extend_from_slice(b"}}");
        }
        (RawBsonRef::MinKey | RawBsonRef::MaxKey, Json) => out.extend_from_slice(b"{}"),
        (RawBsonRef::MinKey, Ejson | Relaxed) => out.extend_from_slice(b"{\"$minKey\":1}"),
        (RawBsonRef::MaxKey, Ejson | Relaxed) => out.extend_from_slice(b"{\"$maxKey\":1}"),
        (RawBsonRef::Undefined, Json) => out.extend_from_slice(b"null"),
        (RawBsonRef::Undefined, Ejson | Relaxed) => out.extend_from_slice(b"{\"$undefined\":true}"),
        (RawBsonRef::Symbol(s), Json) => write_str(out, s),
        (RawBsonRef::Symbol(s), Ejson | Relaxed) => {
            out.extend_from_slice(b"{\"$symbol\":");
            write_str(out, s);
            out.push(b'}');
        }
        (RawBsonRef::JavaScriptCode(code), Json) => write_str(out, code),
        (RawBsonRef::JavaScriptCode(code), Ejson | Relaxed) => {
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
        (RawBsonRef::JavaScriptCodeWithScope(cws), Ejson | Relaxed) => {
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

/// The values relaxed Extended JSON writes as plain JSON: numbers (finite doubles keep a decimal
/// point or an exponent, so they read back as doubles) and dates from 1970 to 9999 as ISO-8601
/// strings. False for every other value, which is then written as canonical.
fn write_relaxed(out: &mut Vec<u8>, value: RawBsonRef<'_>) -> bool {
    /// 9999-12-31T23:59:59.999Z: the last date relaxed EJSON writes as a string.
    const LAST_ISO_MILLIS: i64 = 253_402_300_799_999;
    match value {
        RawBsonRef::Int32(n) => write_display(out, n),
        RawBsonRef::Int64(n) => write_display(out, n),
        RawBsonRef::Double(f) if f.is_finite() => write_f64(out, f),
        RawBsonRef::DateTime(dt) if (0..=LAST_ISO_MILLIS).contains(&dt.timestamp_millis()) => {
            out.extend_from_slice(b"{\"$date\":\"");
            write_iso8601(out, dt.timestamp_millis());
            out.extend_from_slice(b"\"}");
        }
        _ => return false,
    }
    true
}

fn write_f64(out: &mut Vec<u8>, f: f64) {
    // serde_json prints the shortest representation that reads back to the same double.
    let _ = serde_json::to_writer(&mut *out, &f);
}

/// Appends `s` as a JSON string with the escapes JSON requires.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    while let Some(at) = next_escape(bytes, start) {
        out.extend_from_slice(&bytes[start..at]);
        write_escape(out, bytes[at]);
        start = at + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The index of the first byte at or after `from` that JSON must escape: a quote, a backslash or
/// a control character. Eight bytes at a time (most strings have none), then byte by byte.
fn next_escape(bytes: &[u8], mut from: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    // Non-zero when some byte of `v` is below `n` (exact as to whether one is, for n <= 128).
    let any_below = |v: u64, n: u8| v.wrapping_sub(ONES * u64::from(n)) & !v & HIGHS;
    while let Some(chunk) = bytes.get(from..from + 8) {
        let mut word = [0; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word);
        let hits = any_below(x, 0x20)
            | any_below(x ^ (ONES * u64::from(b'"')), 1)
            | any_below(x ^ (ONES * u64::from(b'\\')), 1);
        if hits != 0 {
            break;
        }
        from += 8;
    }
    let needs_escape = |b: &u8| *b < 0x20 || *b == b'"' || *b == b'\\';
    bytes[from..]
        .iter()
        .position(needs_escape)
        .map(|p| from + p)
}

fn write_escape(out: &mut Vec<u8>, b: u8) {
    let escape: &[u8] = match b {
        b'"' => b"\\\"",
        b'\\' => b"\\\\",
        b'\n' => b"\\n",
        b'\r' => b"\\r",
        b'\t' => b"\\t",
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
            return;
        }
    };
    out.extend_from_slice(escape);
}

/// Writes milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.sssZ`, the form JavaScript's
/// `Date.prototype.toISOString` produces (with a six-digit signed year outside 0000..=9999).
fn write_iso8601(out: &mut Vec<u8>, millis: i64) {
    let days = millis.div_euclid(86_400_000);
    let ms_of_day = millis.rem_euclid(86_400_000);
    let (year, month, day) = civil_from_days(days);
    if (0..=9999).contains(&year) {
        push_digits(out, year.unsigned_abs(), 4);
    } else {
        out.push(if year < 0 { b'-' } else { b'+' });
        push_digits(out, year.unsigned_abs(), 6);
    }
    let ms_of_day = ms_of_day.unsigned_abs();
    for (separator, value, width) in [
        (b'-', u64::from(month), 2),
        (b'-', u64::from(day), 2),
        (b'T', ms_of_day / 3_600_000, 2),
        (b':', ms_of_day / 60_000 % 60, 2),
        (b':', ms_of_day / 1000 % 60, 2),
        (b'.', ms_of_day % 1000, 3),
    ] {
        out.push(separator);
        push_digits(out, value, width);
    }
    out.push(b'Z');
}

/// Appends `value` in decimal, zero-padded to `width` digits (a date's fields: no formatter,
/// which costs more than the rest of the date).
fn push_digits(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut rest = value;
    let mut at = digits.len();
    while rest > 0 {
        at -= 1;
        digits[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
    }
    let start = at.min(digits.len() - width);
    out.extend_from_slice(&digits[start..]);
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
    use bson::oid::ObjectId;
    use bson::spec::BinarySubtype;
    use bson::{Binary, DateTime, Decimal128, Document, RawDocumentBuf, Regex, Timestamp, doc};
    use serde_json::json;

    /// Every character JSON escapes, and the ones near them, in strings long enough to cross
    /// the eight-byte steps of `next_escape` at every offset.
    fn arb_text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let chars = prop_oneof![
            Just('a'),
            Just('"'),
            Just('\\'),
            Just('\n'),
            Just('\t'),
            Just('\u{1}'),
            Just('\u{1f}'),
            Just(' '),
            Just('!'),
            Just('#'),
            Just('['),
            Just(']'),
            Just('\u{7f}'),
            Just('é'),
            Just('\u{2028}'),
            Just('😀'),
        ];
        proptest::collection::vec(chars, 0..40).prop_map(|c| c.into_iter().collect())
    }

    proptest::proptest! {
        #[test]
        fn strings_are_escaped_exactly_where_json_requires(text in arb_text()) {
            let mut out = Vec::new();
            write_str(&mut out, &text);
            let written = String::from_utf8(out).expect("utf-8");
            let back: String = serde_json::from_str(&written).expect("a JSON string");
            proptest::prop_assert_eq!(&back, &text);
            // Nothing escaped that need not be: one backslash per quote and control character,
            // two per backslash.
            let expected: usize = text
                .chars()
                .map(|c| match c {
                    '"' => 1,
                    '\\' => 2,
                    c if u32::from(c) < 0x20 => 1,
                    _ => 0,
                })
                .sum();
            proptest::prop_assert_eq!(written.matches('\\').count(), expected, "{}", written);
        }
    }

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
}
