//! Request decoding: body bytes -> `http::decode_action` (strict JSON, the shared fields, the
//! policy, the action's fields), for every action
//! and every combination of policy switches.
//!
//! Input layout: byte 0 picks the action, byte 1 the policy and limits, the rest is the body.
//! Property: decoding never panics, and every rejection is a 4xx (a client's input must never
//! produce a server error before the database is reached).
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use mongo_sidecar::config::{Limits, Policy};
use mongo_sidecar::http::actions::ACTIONS;
use mongo_sidecar::http::decode_action;

fuzz_target!(|data: &[u8]| {
    let [action, switches, body @ ..] = data else {
        return;
    };
    let action = ACTIONS[usize::from(*action) % ACTIONS.len()];
    let bit = |n: u8| switches & (1 << n) != 0;
    let policy = Policy {
        allow: if bit(0) {
            vec!["app.users".to_owned(), "logs.*".to_owned()]
        } else {
            Vec::new()
        },
        read_only: bit(1),
        allow_server_js: bit(2),
        allow_out: bit(3),
        allow_merge: bit(4),
    };
    // Tight limits on some inputs, so the batch and result caps are exercised too.
    let tight = bit(5);
    let limits = Limits {
        max_body_bytes: 6 * 1024 * 1024,
        max_depth: if tight { 8 } else { 64 },
        max_write_batch: if tight { 2 } else { 10_000 },
        max_documents: if tight { 3 } else { 0 },
        batch_size: 1000,
        max_concurrency: 64,
        max_connections: 256,
        header_timeout: Duration::from_secs(5),
        body_timeout: Duration::from_secs(10),
    };
    let parsed = decode_action(action, body, &policy, &limits);
    if let Err(err) = parsed {
        assert!(
            err.status.is_client_error(),
            "{action}: status {} for a client's input: {}",
            err.status,
            err.message
        );
    }
});
