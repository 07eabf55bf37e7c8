//! Any bytes as a decision request: parsing never panics, and a parsed request has every required field.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plystra_core::request::{parse_request, MAX_ID_BYTES};

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    match parse_request(&doc) {
        Ok(p) => {
            let r = &p.request;
            for field in [&r.user_id, &r.member_id, &r.user_member_id, &r.space_id, &r.resource_type, &r.resource_id, &r.action] {
                assert!(!field.is_empty() && field.len() <= MAX_ID_BYTES);
            }
        }
        Err(e) => assert!(e.to_string().starts_with("invalid request: ")),
    }
});
