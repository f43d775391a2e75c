//! Extended JSON input: arbitrary JSON -> `ejson::to_bson`.
//!
//! Properties: conversion never panics; and whatever it accepts survives a round trip through
//! the response writer: canonical EJSON written by `write_document` reads back with `to_bson`
//! to a value that is written identically again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mongo_sidecar::ejson::{self, OutputMode};
use mongodb::bson::{Bson, RawDocumentBuf, doc};
use serde_json::Value;

fn render(value: Bson) -> Option<Vec<u8>> {
    // Keys with NUL bytes cannot be encoded as BSON at all; the driver refuses them later.
    let raw = RawDocumentBuf::from_document(&doc! {"v": value}).ok()?;
    let mut out = Vec::new();
    ejson::write_document(&mut out, &raw, OutputMode::Ejson).expect("our own BSON is readable");
    Some(out)
}

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(value) = ejson::to_bson(json) else {
        return;
    };
    let Some(first) = render(value) else {
        return;
    };
    let text = String::from_utf8_lossy(&first).into_owned();
    let reread: Value = serde_json::from_slice(&first)
        .unwrap_or_else(|e| panic!("canonical output is not JSON ({e}): {text}"));
    let back = ejson::to_bson(reread)
        .unwrap_or_else(|e| panic!("canonical output does not read back ({e}): {text}"));
    let Bson::Document(mut back) = back else {
        panic!("a document came back as something else: {text}");
    };
    let back = back.remove("v").expect("field v");
    let second = render(back).expect("encodable the second time");
    assert_eq!(
        text,
        String::from_utf8_lossy(&second),
        "the round trip changed the value"
    );
});
