//! Opaque tokens and their HMACs. Session tokens (`ply_at_`/`ply_rt_` + 64 hex) and API keys
//! (`ply_ak_<id>.<64 hex>`) are stored only as hex HMAC-SHA256 under the current secret; a lookup also tries
//! each previous secret, so rotating the secret does not log everyone out.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub const ACCESS_PREFIX: &str = "ply_at_";
pub const REFRESH_PREFIX: &str = "ply_rt_";
pub const API_KEY_PREFIX: &str = "ply_ak_";

/// Hex HMAC-SHA256 of `message` keyed by `secret`.
pub fn hmac_hex(secret: &str, message: &str) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The hashes a presented token may be stored under: the current secret first, then each previous one.
pub fn candidate_hashes(current: Option<&str>, previous: &[String], token: &str) -> Vec<String> {
    current.into_iter().chain(previous.iter().map(String::as_str)).map(|s| hmac_hex(s, token)).collect()
}

/// Constant-time: is `stored` one of `candidates`?
pub fn matches_any(stored: &str, candidates: &[String]) -> bool {
    let mut found = subtle::Choice::from(0u8);
    for c in candidates {
        found |= stored.as_bytes().ct_eq(c.as_bytes());
    }
    found.into()
}

/// `n` random bytes as lowercase hex, from the operating system's generator.
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes).expect("the operating system's random number generator is unavailable");
    hex::encode(bytes)
}

/// A presented token of the given kind: the prefix and exactly 64 lowercase hex characters.
pub fn well_formed(token: &str, prefix: &str) -> bool {
    token
        .strip_prefix(prefix)
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)))
}

/// A new session id: `sess_` + 24 hex (96 random bits). Not a secret (audit rows name it); its hex is the
/// family tag that refresh tokens carry.
pub fn new_session_id() -> String {
    format!("sess_{}", random_hex(12))
}

fn refresh_mac(secret: &str, session_id: &str, generation: u32) -> String {
    hmac_hex(secret, &format!("refresh:{session_id}:{generation}"))[..32].to_string()
}

/// The refresh token of a session's `generation` (0 at login, +1 at each refresh): `ply_rt_` + the session id's
/// 24 hex + the generation (8 hex) + 32 hex of HMAC(secret, "refresh:<session id>:<generation>"). Still 64 hex,
/// unguessable without the secret, and an old one can be recognised as this session's (reuse detection).
/// `None` for a session id of another shape (sessions made before this scheme get random tokens).
pub fn refresh_token(secret: &str, session_id: &str, generation: u32) -> Option<String> {
    let tag = session_id.strip_prefix("sess_").filter(|t| t.len() == 24 && well_formed_hex(t))?;
    Some(format!("{REFRESH_PREFIX}{tag}{generation:08x}{}", refresh_mac(secret, session_id, generation)))
}

/// The session id and generation a well-formed refresh token names (whether it is genuine is not checked).
pub fn refresh_token_parts(token: &str) -> Option<(String, u32)> {
    if !well_formed(token, REFRESH_PREFIX) {
        return None;
    }
    let hex = &token[REFRESH_PREFIX.len()..];
    let generation = u32::from_str_radix(&hex[24..32], 16).ok()?;
    Some((format!("sess_{}", &hex[..24]), generation))
}

/// Whether `token` is a refresh token this server issued for `session_id` under one of `secrets` (constant time).
pub fn refresh_token_is_genuine(secrets: &[&str], session_id: &str, token: &str) -> bool {
    let Some((named, generation)) = refresh_token_parts(token) else { return false };
    if named != session_id {
        return false;
    }
    let expected: Vec<String> = secrets.iter().filter_map(|s| refresh_token(s, session_id, generation)).collect();
    matches_any(token, &expected)
}

fn well_formed_hex(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Splits `ply_ak_<id>.<64 hex>` into the key id.
pub fn api_key_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.rsplit_once('.')?;
    let id_ok =
        !id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    let secret_ok = secret.len() == 64 && secret.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (id_ok && secret_ok).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            hmac_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn previous_secrets_are_candidates_after_the_current_one() {
        let c = candidate_hashes(Some("new"), &["old".to_string()], "ply_at_x");
        assert_eq!(c, vec![hmac_hex("new", "ply_at_x"), hmac_hex("old", "ply_at_x")]);
        assert!(matches_any(&hmac_hex("old", "ply_at_x"), &c));
        assert!(!matches_any(&hmac_hex("other", "ply_at_x"), &c));
    }

    #[test]
    fn token_comparison_is_constant_time_over_every_candidate() {
        let stored = hmac_hex("k", "ply_at_x");
        let mut first = stored.clone().into_bytes();
        first[0] ^= 1;
        let mut last = stored.clone().into_bytes();
        last[63] ^= 1;
        let first = String::from_utf8(first).unwrap();
        let last = String::from_utf8(last).unwrap();
        assert!(!matches_any(&stored, &[first.clone(), last.clone()]));
        assert!(!matches_any(&stored, &[stored[..63].to_string()]));
        assert!(!matches_any(&stored, &[]));
        // Found in any position, also after a miss (the fold has no early return).
        assert!(matches_any(&stored, &[first.clone(), stored.clone()]));
        assert!(matches_any(&stored, &[stored.clone(), last]));
        // The comparison is subtle's ct_eq folded into a Choice, never `==` on the bytes.
        let code = include_str!("secrets.rs").split("#[cfg(test)]").next().unwrap();
        let body = code.split("pub fn matches_any").nth(1).unwrap().split("\n}\n").next().unwrap();
        assert!(body.contains(".ct_eq(") && body.contains("found |=") && !body.contains("=="), "{body}");
        assert!(!body.contains("return"), "{body}");
        // Every stored token hash the extension returns is checked through matches_any, in one place
        // (Proof::confirms), which both the admin routes' authentication and the decision routes call.
        let credential = include_str!("credential.rs");
        assert_eq!(credential.matches("let stored: String").count(), 1);
        assert_eq!(credential.matches("secrets::matches_any(&stored, &self.hashes)").count(), 1);
        assert!(credential.contains("found.filter(|doc| proof.confirms(doc))"));
        assert!(include_str!("../api/authz.rs").contains("!proof.confirms(&outcome.credential)"));
        assert!(!credential.contains("stored ==") && !credential.contains("== stored"));
    }

    #[test]
    fn token_shapes() {
        let t = format!("{ACCESS_PREFIX}{}", random_hex(32));
        assert!(well_formed(&t, ACCESS_PREFIX));
        assert!(!well_formed(&t, REFRESH_PREFIX));
        assert!(!well_formed("ply_at_abc", ACCESS_PREFIX));
        let k = format!("ply_ak_ak_0123456789abcdef.{}", random_hex(32));
        assert_eq!(api_key_id(&k), Some("ak_0123456789abcdef"));
        assert_eq!(api_key_id("ply_ak_ak_1.short"), None);
        assert_eq!(api_key_id(&format!("ply_ak_.{}", random_hex(32))), None);
    }

    #[test]
    fn refresh_tokens_name_their_session_and_generation_and_cannot_be_forged() {
        let id = new_session_id();
        assert_eq!(id.len(), "sess_".len() + 24);
        let t0 = refresh_token("s1", &id, 0).unwrap();
        let t1 = refresh_token("s1", &id, 1).unwrap();
        assert!(well_formed(&t0, REFRESH_PREFIX) && well_formed(&t1, REFRESH_PREFIX));
        assert_ne!(t0, t1);
        assert_eq!(refresh_token_parts(&t1), Some((id.clone(), 1)));
        assert!(refresh_token_is_genuine(&["s1"], &id, &t0));
        assert!(refresh_token_is_genuine(&["s2", "s1"], &id, &t1), "a previous secret still recognises it");
        assert!(!refresh_token_is_genuine(&["s2"], &id, &t0), "another secret does not");
        let forged = format!("{}{}", &t0[..t0.len() - 32], "0".repeat(32));
        assert!(!refresh_token_is_genuine(&["s1"], &id, &forged));
        assert!(!refresh_token_is_genuine(&["s1"], &new_session_id(), &t0), "another session's");
        assert_eq!(refresh_token("s1", &format!("sess_{}", "a".repeat(64)), 0), None, "old-style ids");
    }
}
