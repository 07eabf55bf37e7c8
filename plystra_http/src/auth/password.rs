//! Argon2id passwords with v1.0's parameters and encoding (docs/v1-reference.md §1.11):
//! `argon2id$v=19$m=65536,t=3,p=2$<base64 salt>$<base64 key>` (standard alphabet, no padding; note: not the
//! PHC `$argon2id$` prefix). Verification accepts only that prefix, within v1.0's bounds, and compares
//! in constant time.

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use subtle::ConstantTimeEq;

pub const MEMORY_KIB: u32 = 64 * 1024;
pub const ITERATIONS: u32 = 3;
pub const PARALLELISM: u32 = 2;
pub const SALT_LEN: usize = 16;
pub const KEY_LEN: usize = 32;

fn derive(password: &str, salt: &[u8], m: u32, t: u32, p: u32, key_len: usize) -> Option<Vec<u8>> {
    let params = Params::new(m, t, p, Some(key_len)).ok()?;
    let mut out = vec![0u8; key_len];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), salt, &mut out)
        .ok()?;
    Some(out)
}

/// A new hash with a fresh random salt.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; SALT_LEN];
    getrandom::getrandom(&mut salt).expect("the operating system's random number generator is unavailable");
    encode(password, &salt)
}

fn encode(password: &str, salt: &[u8]) -> String {
    let key = derive(password, salt, MEMORY_KIB, ITERATIONS, PARALLELISM, KEY_LEN).expect("fixed parameters are valid");
    format!(
        "argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={PARALLELISM}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(key)
    )
}

struct Parsed {
    m: u32,
    t: u32,
    p: u32,
    salt: Vec<u8>,
    key: Vec<u8>,
}

fn parse(encoded: &str) -> Option<Parsed> {
    let rest = encoded.strip_prefix("argon2id$")?;
    let parts: Vec<&str> = rest.split('$').collect();
    let [version, params, salt, key] = parts.as_slice() else { return None };
    if *version != "v=19" {
        return None;
    }
    let (mut m, mut t, mut p) = (None, None, None);
    for kv in params.split(',') {
        let (k, v) = kv.split_once('=')?;
        let v: u32 = v.parse().ok()?;
        match k {
            "m" => m = Some(v),
            "t" => t = Some(v),
            "p" => p = Some(v),
            _ => return None,
        }
    }
    let (m, t, p) = (m?, t?, p?);
    if !(19 * 1024..=1024 * 1024).contains(&m) || !(1..=10).contains(&t) || !(1..=16).contains(&p) {
        return None;
    }
    let salt = STANDARD_NO_PAD.decode(salt).ok()?;
    let key = STANDARD_NO_PAD.decode(key).ok()?;
    if !(16..=64).contains(&salt.len()) || !(16..=64).contains(&key.len()) {
        return None;
    }
    Some(Parsed { m, t, p, salt, key })
}

/// Whether `encoded` is a hash this module can verify (used to refuse other formats when a hash is supplied).
pub fn is_supported(encoded: &str) -> bool {
    parse(encoded).is_some()
}

/// True when `password` matches `encoded`; any other format, or parameters out of bounds, is false.
pub fn verify(password: &str, encoded: &str) -> bool {
    let Some(h) = parse(encoded) else { return false };
    match derive(password, &h.salt, h.m, h.t, h.p, h.key.len()) {
        Some(candidate) => candidate.ct_eq(&h.key).into(),
        None => false,
    }
}

/// Verifies against a fixed dummy hash, so that an unknown e-mail costs the same time as a wrong password.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| encode("plystra-dummy-password", b"plystra-dummy-salt"));
    let _ = verify(password, dummy);
}

/// True when the hash's parameters differ from the current ones (`passwordNeedsRehash`).
pub fn needs_rehash(encoded: &str) -> bool {
    match parse(encoded) {
        Some(h) => h.m != MEMORY_KIB || h.t != ITERATIONS || h.p != PARALLELISM || h.key.len() != KEY_LEN,
        None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str =
        "argon2id$v=19$m=65536,t=3,p=2$cGx5c3RyYS1hbGljZS12MQ$ChTdO8Md0I+wjbQpSbWY+0dkIjCUtkCEQ4taCPbznTU";

    #[test]
    fn the_demo_hash_verifies_against_the_demo_password() {
        assert!(verify("plystra-demo", ALICE));
        assert!(!verify("plystra-demo!", ALICE));
        assert!(!needs_rehash(ALICE));
    }

    #[test]
    fn hashes_use_the_reference_encoding_and_verify() {
        let h = hash("correct horse battery");
        assert!(h.starts_with("argon2id$v=19$m=65536,t=3,p=2$"), "{h}");
        let parts: Vec<&str> = h.split('$').collect();
        assert!(!parts[3].contains('=') && !parts[4].contains('='), "no padding: {h}");
        assert_eq!(STANDARD_NO_PAD.decode(parts[3]).unwrap().len(), 16);
        assert_eq!(STANDARD_NO_PAD.decode(parts[4]).unwrap().len(), 32);
        assert!(verify("correct horse battery", &h));
        assert!(!verify("correct horse batterz", &h));
        assert_ne!(hash("correct horse battery"), h, "fresh salt each time");
    }

    #[test]
    fn other_formats_and_out_of_bounds_parameters_are_refused() {
        let phc = format!("${ALICE}");
        assert!(!verify("plystra-demo", &phc), "the PHC $argon2id$ prefix is not accepted");
        assert!(!verify("plystra-demo", "pbkdf2_sha256$10000$salt$00"));
        assert!(!verify("plystra-demo", &ALICE.replace("v=19", "v=16")));
        assert!(!verify("plystra-demo", &ALICE.replace("m=65536", "m=1024")), "memory below 19 MiB");
        assert!(!verify("plystra-demo", &ALICE.replace("t=3", "t=11")));
        assert!(!verify("plystra-demo", &ALICE.replace("p=2", "p=17")));
        assert!(
            !verify("plystra-demo", "argon2id$v=19$m=65536,t=3,p=2$c2FsdA$ChTdO8Md0I+wjbQpSbWY+0dkIjCUtkCEQ4taCPbznTU"),
            "short salt"
        );
        assert!(!is_supported(
            "argon2i$v=19$m=65536,t=3,p=2$cGx5c3RyYS1hbGljZS12MQ$ChTdO8Md0I+wjbQpSbWY+0dkIjCUtkCEQ4taCPbznTU"
        ));
        assert!(is_supported(ALICE));
    }
}
