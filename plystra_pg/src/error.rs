//! Errors raised to SQL callers. Bad input is SQLSTATE 22023 with the field in the message and in DETAIL, so
//! that the REST front can answer 400 VALIDATION_FAILED naming it; it is never XX000.

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};
use plystra_core::request::RequestError;

pub fn raise_invalid_request(err: &RequestError, function: &'static str) -> ! {
    ErrorReport::new(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, err.to_string(), function)
        .set_detail(err.field.clone())
        .report(PgLogLevel::ERROR);
    unreachable!("ERROR-level reports do not return")
}
