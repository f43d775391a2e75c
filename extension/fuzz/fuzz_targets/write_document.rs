//! Response writing: arbitrary bytes that parse as a raw BSON document -> `write_document`,
//! in both output modes.
//!
//! Properties: writing never panics, whatever the server sends (malformed BSON is an error,
//! not a crash), and whatever it writes successfully is valid JSON.
//!
//! Validity is checked by parsing into `IgnoredAny`, a pure syntax check: parsing into
//! `serde_json::Value` would read an object whose key is `$serde_json::private::RawValue` as a
//! nested JSON text (axum enables serde_json's `raw_value` feature) and reject valid output.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mongo_sidecar::ejson::{self, OutputMode};
use mongodb::bson::RawDocument;

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = RawDocument::from_bytes(data) else {
        return;
    };
    for mode in [OutputMode::Json, OutputMode::Ejson] {
        let mut out = Vec::new();
        if ejson::write_document(&mut out, doc, mode).is_ok() {
            if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(&out) {
                panic!(
                    "{mode:?} output is not JSON ({e}): {}",
                    String::from_utf8_lossy(&out)
                );
            }
        }
    }
});
