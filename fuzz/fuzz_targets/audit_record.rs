//! Any bytes as an audit record (what the audit writer reads from its queue): decoding never panics, and a record
//! that decodes encodes back to exactly the bytes it was read from, its trace framed as a jsonb varlena.
#![no_main]

use libfuzzer_sys::fuzz_target;
use plystra_core::audit_chain::AuditRecord;
use plystra_core::jsonb::is_framed_jsonb;

fuzz_target!(|data: &[u8]| {
    if let Some(record) = AuditRecord::decode(data) {
        assert!(is_framed_jsonb(record.trace));
        assert_eq!(record.encode().as_deref(), Some(data));
    }
});
