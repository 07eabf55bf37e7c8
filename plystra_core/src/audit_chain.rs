//! An audit row's hash input, built from the row's fields: byte for byte the text that the SQL function
//! `plystra.audit_hash_input` (migration 009) prints, so that the audit writer seals rows without asking SQL to
//! render and re-read each row, while `plystra.audit_row_hash` (the SHA-256 of that text) stays the one
//! definition that verification uses.
//!
//! That text is `jsonb_build_array('plystra-audit-chain-v1', id, space_id, actor_user_id, actor_member_id,
//! actor_user_member_id, action, resource_type, resource_id, decision, deny_code, trace, request_id, ip_address,
//! user_agent, created_at in microseconds since 1970, chain_position, prev_hash)::text`: jsonb's canonical text
//! form (PostgreSQL 15's `JsonbToCString` without indentation): `", "` between elements, `": "` after a key,
//! object keys shorter first then bytewise (a key given twice keeps its last value), strings escaped by
//! `escape_json`, numbers as `numeric_out` prints what `numeric_in` read.

use serde_json::{Number, Value};

/// The text columns of an audit row, as the writer inserts them (`None` is SQL NULL).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
pub struct AuditRow {
    pub id: String,
    pub space_id: Option<String>,
    pub actor_user_id: Option<String>,
    pub actor_member_id: Option<String>,
    pub actor_user_member_id: Option<String>,
    pub action: String,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    pub decision: String,
    pub deny_code: Option<String>,
    pub trace: Value,
    pub request_id: Option<String>,
    pub ip_address: Option<String>,
    pub user_agent: Option<String>,
}

/// The version tag that opens every hash input.
const CHAIN_TAG: &str = "plystra-audit-chain-v1";

/// What `plystra.audit_hash_input(row, chain_position, prev_hash)` returns for this row, created at
/// `created_at_us` microseconds since 1970-01-01 UTC.
pub fn hash_input(row: &AuditRow, created_at_us: i64, chain_position: i64, prev_hash: &str) -> String {
    let mut out = String::with_capacity(256);
    out.push('[');
    let texts: [Option<&str>; 10] = [
        Some(CHAIN_TAG),
        Some(&row.id),
        row.space_id.as_deref(),
        row.actor_user_id.as_deref(),
        row.actor_member_id.as_deref(),
        row.actor_user_member_id.as_deref(),
        Some(&row.action),
        row.resource_type.as_deref(),
        row.resource_id.as_deref(),
        Some(&row.decision),
    ];
    for (i, t) in texts.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        opt_string(&mut out, *t);
    }
    out.push_str(", ");
    opt_string(&mut out, row.deny_code.as_deref());
    out.push_str(", ");
    write_canonical(&mut out, &row.trace);
    for t in [row.request_id.as_deref(), row.ip_address.as_deref(), row.user_agent.as_deref()] {
        out.push_str(", ");
        opt_string(&mut out, t);
    }
    out.push_str(&format!(", {created_at_us}, {chain_position}, "));
    write_string(&mut out, prev_hash);
    out.push(']');
    out
}

/// The SHA-256 (lower-case hex) of [`hash_input`]: what `plystra.audit_row_hash` returns for the row.
pub fn row_hash(row: &AuditRow, created_at_us: i64, chain_position: i64, prev_hash: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(hash_input(row, created_at_us, chain_position, prev_hash).as_bytes()))
}

fn opt_string(out: &mut String, s: Option<&str>) {
    match s {
        Some(s) => write_string(out, s),
        None => out.push_str("null"),
    }
}

/// jsonb's text form of `value` (`jsonb_out` of what `jsonb_in` made of the value's JSON text).
pub fn canonical_text(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(&mut out, value);
    out
}

fn write_canonical(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&canonical_number(n)),
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_canonical(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // serde_json's map holds each key once (the last value given); jsonb orders keys shorter first.
            let mut members: Vec<(&String, &Value)> = map.iter().collect();
            members.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then_with(|| a.0.as_bytes().cmp(b.0.as_bytes())));
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, k);
                out.push_str(": ");
                write_canonical(out, v);
            }
            out.push('}');
        }
    }
}

/// A string as PostgreSQL's `escape_json` writes it: `"`, `\` and the five short escapes, other control
/// characters as `\u00xx` (lower-case hex), everything else as is.
fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `numeric_out(numeric_in(text))` for a JSON number's text (as `serde_json` prints it, which is what `jsonb_in`
/// read): the digits with as many decimals as the text's fraction has minus its exponent (never fewer than
/// none), no exponent, no leading zeros, and no sign on zero.
pub fn canonical_number(n: &Number) -> String {
    canonical_number_text(&n.to_string())
}

/// [`canonical_number`] over a JSON number's text: `-?digits[.digits][(e|E)[+-]digits]`.
pub fn canonical_number_text(text: &str) -> String {
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(at) => (&rest[..at], rest[at + 1..].parse::<i64>().unwrap_or(0)),
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(at) => (&mantissa[..at], &mantissa[at + 1..]),
        None => (mantissa, ""),
    };
    let digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    // Where the decimal point falls among `digits`, and how many decimals numeric_in keeps.
    let point = int_part.len() as i64 + exponent;
    let dscale = (frac_part.len() as i64 - exponent).max(0);
    let digit_at = |i: i64| -> u8 {
        if i >= 0 && (i as usize) < digits.len() {
            digits[i as usize]
        } else {
            b'0'
        }
    };
    let mut out = String::new();
    if negative && digits.iter().any(|&d| d != b'0') {
        out.push('-');
    }
    let mut integer = String::new();
    for i in 0..point.max(0) {
        let d = digit_at(i);
        if integer.is_empty() && d == b'0' {
            continue;
        }
        integer.push(d as char);
    }
    if integer.is_empty() {
        integer.push('0');
    }
    out.push_str(&integer);
    if dscale > 0 {
        out.push('.');
        for i in point..point + dscale {
            out.push(digit_at(i) as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_print_as_numeric_out_prints_them() {
        // Expected values are PostgreSQL 15's `SELECT 'x'::jsonb::text`.
        for (text, expected) in [
            ("0", "0"),
            ("-0", "0"),
            ("-0.0", "0.0"),
            ("1.5", "1.5"),
            ("1.50", "1.50"),
            ("-12", "-12"),
            ("1e3", "1000"),
            ("1E+3", "1000"),
            ("1.5e1", "15"),
            ("1.25e1", "12.5"),
            ("1e-2", "0.01"),
            ("-1.5e-3", "-0.0015"),
            ("0.001", "0.001"),
            ("123.456e-1", "12.3456"),
            ("5e-324", &format!("0.{}5", "0".repeat(323))),
            ("18446744073709551615", "18446744073709551615"),
            ("1e20", "100000000000000000000"),
            ("0e5", "0"),
            ("0.0e-2", "0.000"),
        ] {
            assert_eq!(canonical_number_text(text), expected, "{text}");
        }
    }

    #[test]
    fn objects_sort_shorter_keys_first_and_strings_escape_as_postgres_does() {
        let v = json!({"bb": 1, "a": [true, null, {}], "ab": "x\u{1}\"\\\n\u{7f}é😀", "": []});
        let expected = "{\"\": [], \"a\": [true, null, {}], \"ab\": \"x\\u0001\\\"\\\\\\n\u{7f}é😀\", \"bb\": 1}";
        assert_eq!(canonical_text(&v), expected);
    }

    #[test]
    fn hash_input_lists_the_row_in_the_sql_order() {
        let row = AuditRow {
            id: "aud_1".into(),
            space_id: Some("sp".into()),
            action: "invoice.read".into(),
            decision: "deny".into(),
            deny_code: Some("NO_GRANT".into()),
            trace: json!({"b": 2, "a": 1.0}),
            ..AuditRow::default()
        };
        assert_eq!(
            hash_input(&row, 1_700_000_000_123_456, 7, "ab"),
            r#"["plystra-audit-chain-v1", "aud_1", "sp", null, null, null, "invoice.read", null, null, "deny", "NO_GRANT", {"a": 1.0, "b": 2}, null, null, null, 1700000000123456, 7, "ab"]"#
        );
        assert_eq!(row_hash(&row, 1, 1, "").len(), 64);
    }
}
