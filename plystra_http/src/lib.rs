//! Plystra's REST front: a thin axum service over the `plystra` PostgreSQL extension. Every decision and every
//! data invariant lives in the database; this crate turns HTTP requests into SQL calls carrying the request's
//! identity, and SQL answers into v1.0's envelope.

pub mod api;
pub mod app;
pub mod auth;
pub mod body_budget;
pub mod client_ip;
pub mod config;
pub mod console;
pub mod db;
pub mod db_errors;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod lanes;
pub mod ledger;
pub mod metrics;
pub mod migrate;
pub mod openapi;
pub mod pipeline;
pub mod protection;
pub mod replicas;
pub mod request_context;
pub mod routes;
pub mod standing;
pub mod store;
pub mod telemetry;
