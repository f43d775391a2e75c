//! Extended JSON at the HTTP boundary.
//!
//! Requests: [`read::to_bson`] reads canonical *and* relaxed Extended JSON v2 (and the common v1
//! wrappers such as `{"$date": <millis>}` or `{"$binary": "..", "$type": ".."}`) from a parsed
//! JSON value, with messages that name the offending wrapper and never a Rust type.
//!
//! Responses: [`write::write_document`] goes straight from raw BSON bytes to response bytes, with
//! no intermediate tree, in the Data API's two output modes or relaxed Extended JSON ([`OutputMode`]).

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
    /// Relaxed Extended JSON v2: numbers as JSON numbers and dates from 1970 to 9999 as ISO-8601
    /// strings, every other type as canonical. Cheaper to read where a number's BSON type (int32,
    /// int64) does not matter: one wrapper less per number and per date.
    Relaxed,
}

#[cfg(test)]
mod tests {
    //! Round trips through both halves: what the writer writes, the reader reads back.
    use super::*;
    use bson::oid::ObjectId;
    use bson::spec::BinarySubtype;
    use bson::{
        Binary, Bson, DateTime, Decimal128, Document, RawBson, RawDocumentBuf, Regex, Timestamp,
        doc,
    };
    use proptest::prelude::*;
    use serde_json::{Value, json};

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

    /// The value with every Int64 that fits an Int32 as an Int32: what relaxed EJSON, which
    /// writes both as plain numbers, cannot tell apart.
    fn narrow(value: &Bson) -> Bson {
        match value {
            Bson::Int64(n) => i32::try_from(*n).map_or(Bson::Int64(*n), Bson::Int32),
            Bson::Array(items) => Bson::Array(items.iter().map(narrow).collect()),
            Bson::Document(doc) => {
                Bson::Document(doc.iter().map(|(k, v)| (k.clone(), narrow(v))).collect())
            }
            other => other.clone(),
        }
    }

    #[test]
    fn relaxed_writes_numbers_and_recent_dates_plain_and_the_rest_canonical() {
        let doc = doc! {
            "i": 7, "l": 5_000_000_000_i64, "d": 10.0, "e": 1.5e300, "z": -0.0,
            "inf": f64::INFINITY, "at": DateTime::from_millis(1_735_689_600_000),
            "before": DateTime::from_millis(-1), "after": DateTime::from_millis(253_402_300_800_000),
            "id": ObjectId::from_bytes([1; 12]), "in": {"n": [1, 2.0]},
        };
        assert_eq!(
            render(&doc, OutputMode::Relaxed),
            concat!(
                r#"{"i":7,"l":5000000000,"d":10.0,"e":1.5e+300,"z":-0.0,"#,
                r#""inf":{"$numberDouble":"Infinity"},"at":{"$date":"2025-01-01T00:00:00.000Z"},"#,
                r#""before":{"$date":{"$numberLong":"-1"}},"#,
                r#""after":{"$date":{"$numberLong":"253402300800000"}},"#,
                r#""id":{"$oid":"010101010101010101010101"},"in":{"n":[1,2.0]}}"#
            )
        );
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
            let back = Bson::try_from(to_bson(json).expect("reads back")).expect("a BSON value");
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
            let ours = Bson::try_from(to_bson(json.clone()).expect("ours")).expect("a BSON value");
            let theirs = Bson::try_from(json).expect("bson crate");
            prop_assert!(same(&ours, &theirs) || text.contains("NaN"));
        }

        #[test]
        fn relaxed_output_reads_back_as_the_same_value_but_for_integer_widths(value in arb_bson()) {
            let doc = doc! {"v": value.clone()};
            let text = render(&doc, OutputMode::Relaxed);
            let json: Value = serde_json::from_str(&text).expect("valid JSON");
            let back = Bson::try_from(to_bson(json.clone()).expect("reads back")).expect("a BSON value");
            let Bson::Document(mut back) = back else { panic!("a document") };
            let back = back.remove("v").expect("field v");
            if text.contains("NaN") {
                return Ok(());
            }
            prop_assert!(same(&narrow(&value), &narrow(&back)), "{value:?} came back as {back:?} via {text}");
            // Standard relaxed EJSON: the bson crate reads it to the same value.
            let theirs = Bson::try_from(json).expect("bson crate");
            let Bson::Document(mut theirs) = theirs else { panic!("a document") };
            prop_assert!(same(&narrow(&back), &narrow(&theirs.remove("v").expect("field v"))));
        }

        #[test]
        fn relaxed_dates_read_back_to_the_same_millisecond(ms in -62_135_596_800_000_i64..253_402_300_800_000) {
            let doc = doc! {"v": DateTime::from_millis(ms)};
            let text = render(&doc, OutputMode::Relaxed);
            let json: Value = serde_json::from_str(&text).expect("valid JSON");
            prop_assert_eq!(json["v"]["$date"].is_string(), ms >= 0, "{}", text);
            let back = to_bson(json).expect("reads back");
            prop_assert_eq!(Bson::try_from(back).expect("BSON"), Bson::Document(doc), "{}", text);
        }

        #[test]
        fn json_mode_always_writes_valid_json(value in arb_bson()) {
            let text = render(&doc! {"v": value}, OutputMode::Json);
            prop_assert!(serde_json::from_str::<Value>(&text).is_ok(), "{}", text);
        }
    }

    // Reading: relaxed and canonical input, operators, wrappers that are not valid.

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
        let Ok(RawBson::Document(doc)) = to_bson(filter) else {
            panic!("a filter is a document");
        };
        assert_eq!(
            doc.to_document().expect("well formed"),
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
            assert!(err.to_string().contains(expected), "{input}: {err}");
        }
    }

    #[test]
    fn uuid_and_legacy_binary_are_accepted() {
        let uuid = to_bson(json!({"$uuid": "00112233-4455-6677-8899-aabbccddeeff"})).expect("uuid");
        let legacy = to_bson(json!({"$binary": "ABEiM0RVZneImaq7zN3u/w==", "$type": "04"}))
            .expect("legacy binary");
        assert_eq!(uuid, legacy);
    }
}
