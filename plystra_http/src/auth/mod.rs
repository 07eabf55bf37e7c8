//! Credentials (design rule 5: credentials live in the front, their data in the database): Argon2id password
//! hashing, HMAC-SHA256 of session tokens and API keys, and turning a presented credential into a
//! [`Credential`] that the protection seam checks against the extension's admin-permission functions.

pub mod credential;
pub mod password;
pub mod secrets;

pub use credential::{ApiKeyCredential, Credential, SessionCredential};
