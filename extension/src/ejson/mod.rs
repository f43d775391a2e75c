//! Extended JSON at the HTTP boundary.
//!
//! Requests: [`read::to_bson`] reads canonical *and* relaxed Extended JSON v2 (and the common v1
//! wrappers such as `{"$date": <millis>}` or `{"$binary": "..", "$type": ".."}`) from a parsed
//! JSON value, with messages that name the offending wrapper and never a Rust type.
//!
//! Responses: [`write::write_document`] goes straight from raw BSON bytes to response bytes, with
//! no intermediate tree, in one of the Data API's two output modes ([`OutputMode`]).

pub mod read;
pub mod write;

pub use read::{EjsonError, to_bson, to_document};
pub use write::{MalformedBson, write_document, write_str, write_value};

/// How a response writes BSON values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputMode {
    /// The Data API's plain JSON: ObjectId as hex, dates as ISO-8601 strings, numbers as numbers.
    Json,
    /// Canonical Extended JSON v2: every type survives a round trip.
    Ejson,
}

#[cfg(test)]
mod tests {
    //! Round trips through both halves: what the writer writes, the reader reads back.
    use super::*;
    use bson::oid::ObjectId;
    use bson::spec::BinarySubtype;
    use bson::{
        Binary, Bson, DateTime, Decimal128, Document, RawDocumentBuf, Regex, Timestamp, doc,
    };
    use proptest::prelude::*;
    use serde_json::Value;

    fn render(doc: &Document, mode: OutputMode) -> String {
        let raw = RawDocumentBuf::from_document(doc).expect("encodable");
        let mut out = Vec::new();
        write_document(&mut out, &raw, mode).expect("well-formed");
        String::from_utf8(out).expect("utf-8")
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
