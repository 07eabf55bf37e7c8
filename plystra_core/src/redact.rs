//! What never reaches an audit row: keys that name credentials. The database has the same rule as
//! `plystra.sensitive_key(text)` for management-audit rows; a test in the extension keeps the two equal.

use serde_json::Value;

/// Fragments that make a key sensitive, matched case-insensitively anywhere in the key.
pub const SENSITIVE_KEY_FRAGMENTS: &[&str] = &["password", "secret", "token", "api_key", "authorization", "key_hash"];

pub fn is_sensitive_key(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    SENSITIVE_KEY_FRAGMENTS.iter().any(|f| lower.contains(f))
}

/// Removes sensitive keys at any depth (objects inside arrays too).
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !is_sensitive_key(k));
            map.values_mut().for_each(redact);
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn removes_sensitive_keys_at_any_depth() {
        let mut v = json!({
            "number": "INV-1", "Password": "x", "nested": {"db_secret": 1, "ok": [ {"AccessToken": "t", "keep": 2} ]},
            "API_KEY": "k", "authorization_header": "Bearer", "key_hash": "h", "keys": ["token"]
        });
        redact(&mut v);
        assert_eq!(v, json!({"number": "INV-1", "nested": {"ok": [{"keep": 2}]}, "keys": ["token"]}));
    }
}
