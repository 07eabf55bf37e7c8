//! Plystra's decision core: plain Rust over plain structs, with no database and no clock.
//!
//! The extension (`plystra_pg`) loads a [`model::Context`] in one query, calls [`decide::decide`], and writes
//! the audit row; each step is separate so this part can be tested exhaustively without PostgreSQL.

pub mod admin;
pub mod audit_chain;
pub mod closed_sets;
pub mod contract;
pub mod decide;
pub mod deny;
pub mod inline;
pub mod jsonb;
pub mod model;
pub mod reach;
pub mod redact;
pub mod replay;
pub mod request;
pub mod scope;
pub mod trace;

#[cfg(test)]
mod demo_tests;

pub use decide::{decide, Outcome};
pub use deny::DenyCode;
