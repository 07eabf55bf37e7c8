//! An audit row as the audit writer receives it, and its hash input: byte for byte the text that the SQL function
//! `plystra.audit_hash_input` (migration 009) prints, so that the audit writer seals rows without asking SQL to
//! render and re-read each row, while `plystra.audit_row_hash` (the SHA-256 of that text) stays the one
//! definition that verification uses.
//!
//! That text is `jsonb_build_array('plystra-audit-chain-v1', id, space_id, actor_user_id, actor_member_id,
//! actor_user_member_id, action, resource_type, resource_id, decision, deny_code, trace, request_id, ip_address,
//! user_agent, created_at in microseconds since 1970, chain_position, prev_hash)::text`: jsonb's canonical text
//! form (PostgreSQL 15's `JsonbToCString` without indentation): `", "` between elements, strings escaped by
//! `escape_json`. The trace's own text is the caller's to give: the writer has PostgreSQL print it from the
//! jsonb it inserts (`JsonbToCString`, the function the SQL definition uses), so no second definition of
//! jsonb's key order or number printing exists here.
//!
//! A backend hands the writer each row as an [`AuditRecord`] in a small binary form: its text columns and its
//! trace already in jsonb's binary form. The writer reads it in place: no JSON to parse, no tree to build and
//! free, no trace to encode again (a JSON record cost the single writer about a fifth of its time in profiles).

use sha2::{Digest, Sha256};

/// One decision's audit row: the text columns (`None` is SQL NULL) and the trace as a jsonb varlena (its 4-byte
/// header included), borrowed from the record's bytes or, when it is written, from the encoded trace.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AuditRecord<'a> {
    pub id: &'a str,
    pub space_id: Option<&'a str>,
    pub actor_user_id: Option<&'a str>,
    pub actor_member_id: Option<&'a str>,
    pub actor_user_member_id: Option<&'a str>,
    pub action: &'a str,
    pub resource_type: Option<&'a str>,
    pub resource_id: Option<&'a str>,
    pub decision: &'a str,
    pub deny_code: Option<&'a str>,
    pub request_id: Option<&'a str>,
    pub ip_address: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub trace: &'a [u8],
}

/// The version byte that opens a record: a record of another layout is refused, not misread.
const RECORD_V1: u8 = 1;
/// A text's length that stands for SQL NULL.
const NULL_LEN: u32 = u32::MAX;

impl<'a> AuditRecord<'a> {
    /// The thirteen text columns in the record's (and the hash's) order.
    fn texts(&self) -> [Option<&'a str>; 13] {
        [
            Some(self.id),
            self.space_id,
            self.actor_user_id,
            self.actor_member_id,
            self.actor_user_member_id,
            Some(self.action),
            self.resource_type,
            self.resource_id,
            Some(self.decision),
            self.deny_code,
            self.request_id,
            self.ip_address,
            self.user_agent,
        ]
    }

    /// The record's bytes: a version byte, each text as a little-endian u32 length (`u32::MAX` for NULL) and
    /// its UTF-8 bytes, then the trace's length and bytes. `None` when the trace is not framed as a jsonb varlena
    /// of its own length, or a part does not fit a length: exactly the records [`decode`](Self::decode) refuses,
    /// so whatever is written reads back.
    pub fn encode(&self) -> Option<Vec<u8>> {
        if !crate::jsonb::is_framed_jsonb(self.trace) {
            return None;
        }
        let texts = self.texts();
        let size = 1 + 4 * 14 + texts.iter().flatten().map(|t| t.len()).sum::<usize>() + self.trace.len();
        let mut out = Vec::with_capacity(size);
        out.push(RECORD_V1);
        for t in texts {
            match t {
                Some(t) => put_bytes(&mut out, t.as_bytes())?,
                None => out.extend_from_slice(&NULL_LEN.to_le_bytes()),
            }
        }
        put_bytes(&mut out, self.trace)?;
        Some(out)
    }

    /// The record `bytes` hold, or `None` when they are not one [`encode`](Self::encode) wrote (another
    /// version, a truncation, a text that is not UTF-8, bytes left over, an id, action or decision that is NULL,
    /// a trace not framed as a jsonb varlena of its own length). The trace's content is not read: the records are
    /// written by this library's encoder, in memory only the server's processes share.
    pub fn decode(bytes: &'a [u8]) -> Option<AuditRecord<'a>> {
        let (&version, mut rest) = bytes.split_first()?;
        if version != RECORD_V1 {
            return None;
        }
        let mut texts: [Option<&'a str>; 13] = [None; 13];
        for t in &mut texts {
            *t = match take(&mut rest)? {
                Some(b) => Some(std::str::from_utf8(b).ok()?),
                None => None,
            };
        }
        let trace = take(&mut rest)??;
        if !rest.is_empty() || !crate::jsonb::is_framed_jsonb(trace) {
            return None;
        }
        let [id, space_id, actor_user_id, actor_member_id, actor_user_member_id, action, resource_type, resource_id, decision, deny_code, request_id, ip_address, user_agent] =
            texts;
        Some(AuditRecord {
            id: id?,
            space_id,
            actor_user_id,
            actor_member_id,
            actor_user_member_id,
            action: action?,
            resource_type,
            resource_id,
            decision: decision?,
            deny_code,
            request_id,
            ip_address,
            user_agent,
            trace,
        })
    }
}

/// `b` behind its length; `None` when the length does not fit (or would read as NULL).
fn put_bytes(out: &mut Vec<u8>, b: &[u8]) -> Option<()> {
    let len = u32::try_from(b.len()).ok().filter(|&n| n != NULL_LEN)?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(b);
    Some(())
}

/// The next part of `rest`: `Some(None)` for NULL, `None` when the bytes end too soon.
fn take<'a>(rest: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    let (len, tail) = rest.split_first_chunk::<4>()?;
    let len = u32::from_le_bytes(*len);
    if len == NULL_LEN {
        *rest = tail;
        return Some(None);
    }
    let len = usize::try_from(len).ok()?;
    if tail.len() < len {
        return None;
    }
    let (part, tail) = tail.split_at(len);
    *rest = tail;
    Some(Some(part))
}

/// The version tag that opens every hash input.
const CHAIN_TAG: &str = "plystra-audit-chain-v1";

/// What `plystra.audit_hash_input(row, chain_position, prev_hash)` returns for this row, created at
/// `created_at_us` microseconds since 1970-01-01 UTC, whose trace jsonb prints as `trace_text`.
pub fn hash_input(
    row: &AuditRecord<'_>,
    trace_text: &[u8],
    created_at_us: i64,
    chain_position: i64,
    prev_hash: &str,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + trace_text.len());
    out.push(b'[');
    write_string(&mut out, CHAIN_TAG);
    let texts = row.texts();
    // id to deny_code, the trace, then request_id, ip_address and user_agent.
    for t in &texts[..10] {
        out.extend_from_slice(b", ");
        opt_string(&mut out, *t);
    }
    out.extend_from_slice(b", ");
    out.extend_from_slice(trace_text);
    for t in &texts[10..] {
        out.extend_from_slice(b", ");
        opt_string(&mut out, *t);
    }
    out.extend_from_slice(format!(", {created_at_us}, {chain_position}, ").as_bytes());
    write_string(&mut out, prev_hash);
    out.push(b']');
    out
}

/// The SHA-256 (lower-case hex) of [`hash_input`]: what `plystra.audit_row_hash` returns for the row.
pub fn row_hash(
    row: &AuditRecord<'_>,
    trace_text: &[u8],
    created_at_us: i64,
    chain_position: i64,
    prev_hash: &str,
) -> String {
    hex::encode(Sha256::digest(hash_input(row, trace_text, created_at_us, chain_position, prev_hash)))
}

fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => write_string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// A string as PostgreSQL's `escape_json` writes it: `"`, `\` and the five short escapes, other control
/// characters as `\u00xx` (lower-case hex), everything else as is.
fn write_string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    for &b in s.as_bytes() {
        match b {
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b if b < 0x20 => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            b => out.push(b),
        }
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `content` behind a 4-byte varlena header holding the whole length (as jsonb::encode frames a document).
    fn framed(content: &[u8]) -> Vec<u8> {
        let len = 4 + content.len();
        let header = if cfg!(target_endian = "little") { (len as u32) << 2 } else { len as u32 };
        let mut out = header.to_ne_bytes().to_vec();
        out.extend_from_slice(content);
        out
    }

    fn sample(trace: &[u8]) -> AuditRecord<'_> {
        AuditRecord {
            id: "aud_1",
            space_id: Some("sp"),
            action: "invoice.read",
            decision: "deny",
            deny_code: Some("NO_GRANT"),
            user_agent: Some("x\u{1}\"\\\n\u{7f}é😀"),
            trace,
            ..AuditRecord::default()
        }
    }

    #[test]
    fn hash_input_lists_the_row_in_the_sql_order_and_escapes_as_postgres_does() {
        let row = sample(b"");
        assert_eq!(
            String::from_utf8(hash_input(&row, br#"{"a": 1.0, "b": 2}"#, 1_700_000_000_123_456, 7, "ab")).unwrap(),
            "[\"plystra-audit-chain-v1\", \"aud_1\", \"sp\", null, null, null, \"invoice.read\", null, null, \"deny\", \
             \"NO_GRANT\", {\"a\": 1.0, \"b\": 2}, null, null, \"x\\u0001\\\"\\\\\\n\u{7f}é😀\", 1700000000123456, 7, \"ab\"]"
        );
        assert_eq!(row_hash(&row, b"{}", 1, 1, "").len(), 64);
    }

    #[test]
    fn a_record_reads_back_as_written() {
        let trace = framed(&[0xff, 0, 0, 0x20]);
        let mut row = sample(&trace);
        assert_eq!(AuditRecord::decode(&row.encode().unwrap()), Some(row));
        row.space_id = Some("");
        row.request_id = Some("req");
        assert_eq!(AuditRecord::decode(&row.encode().unwrap()), Some(row));
    }

    #[test]
    fn a_trace_that_is_not_a_framed_jsonb_is_not_written() {
        for bad in [vec![0u8; 8], framed(&[])] {
            assert_eq!(sample(&bad).encode(), None, "{bad:?}");
        }
    }

    #[test]
    fn bytes_that_are_not_a_record_are_refused() {
        let trace = framed(&[9; 4]);
        let bytes = sample(&trace).encode().unwrap();
        for cut in 0..bytes.len() {
            assert_eq!(AuditRecord::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(AuditRecord::decode(&longer), None, "bytes left over");
        let mut other_version = bytes.clone();
        other_version[0] = 2;
        assert_eq!(AuditRecord::decode(&other_version), None, "another version");
        // The id's first byte made invalid UTF-8.
        let mut not_utf8 = bytes.clone();
        not_utf8[5] = 0xff;
        assert_eq!(AuditRecord::decode(&not_utf8), None, "a text that is not UTF-8");
        // The id written as NULL.
        let mut null_id = vec![RECORD_V1];
        null_id.extend_from_slice(&NULL_LEN.to_le_bytes());
        null_id.extend_from_slice(&bytes[1 + 4 + "aud_1".len()..]);
        assert_eq!(AuditRecord::decode(&null_id), None, "a NULL id");
        // The trace written as NULL.
        let mut null_trace = bytes[..bytes.len() - 4 - trace.len()].to_vec();
        null_trace.extend_from_slice(&NULL_LEN.to_le_bytes());
        assert_eq!(AuditRecord::decode(&null_trace), None, "a NULL trace");
        // A trace whose varlena header does not say its length, or too short to hold a root container.
        for bad in [vec![0u8; 8], framed(&[])[..4].to_vec(), {
            let mut t = framed(&[0; 8]);
            t.pop();
            t
        }] {
            let mut record = bytes[..bytes.len() - 4 - trace.len()].to_vec();
            record.extend_from_slice(&(bad.len() as u32).to_le_bytes());
            record.extend_from_slice(&bad);
            assert_eq!(AuditRecord::decode(&record), None, "a trace that is not a framed jsonb: {bad:?}");
        }
    }
}
