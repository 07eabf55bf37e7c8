//! A JSON value as a jsonb datum, written in jsonb's binary form by `plystra_core::jsonb` (byte for byte what
//! `jsonb_in` makes of the value's text). `pgrx::JsonB`'s conversion prints the value as text for `jsonb_in` to
//! lex, parse, sort and convert again; for a batch's answer (a hundred results, tens of kB) that round trip was a
//! sixth of the call in profiles. A jsonb argument is read the other way (`plystra_core::jsonb::decode`).

use std::ffi::CString;

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{pg_sys, PgLogLevel, PgSqlErrorCode};
use plystra_core::jsonb::{decode, encode, DecodeError, Doc, JsonbError};
use serde_json::Number;

/// The jsonb datum of `value`, allocated in the current memory context. Raises what `jsonb_in` would raise for
/// the value's text (a string holding U+0000; a value over jsonb's size limits).
pub fn to_jsonb_datum(value: &Doc<'_>) -> pg_sys::Datum {
    varlena_datum(&to_jsonb_bytes(value))
}

/// The bytes of `value`'s jsonb datum (a complete varlena, its 4-byte header included), raising as
/// [`to_jsonb_datum`] does.
pub fn to_jsonb_bytes(value: &Doc<'_>) -> Vec<u8> {
    match encode(value, &mut numeric) {
        Ok(bytes) => bytes,
        Err(JsonbError::NulInString) => refuse(
            PgSqlErrorCode::ERRCODE_UNTRANSLATABLE_CHARACTER,
            "unsupported Unicode escape sequence",
            Some("\\u0000 cannot be converted to text."),
        ),
        Err(JsonbError::TooLarge) => refuse(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            "total size of jsonb elements exceeds the maximum",
            None,
        ),
    }
}

/// A palloc'd copy of `bytes`, a complete varlena with a 4-byte header holding its length, as a datum.
pub fn varlena_datum(bytes: &[u8]) -> pg_sys::Datum {
    // SAFETY: palloc returns MAXALIGNed memory of the requested size; the copy fills it.
    unsafe {
        let datum = pg_sys::palloc(bytes.len()).cast::<u8>();
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), datum, bytes.len());
        pg_sys::Datum::from(datum)
    }
}

/// The numeric datum (4-byte header) `numeric_in` reads from a number's JSON text, as jsonb_in reads it.
fn numeric(n: &Number) -> Vec<u8> {
    let text = CString::new(n.to_string()).expect("a printed number has no NUL");
    // SAFETY: numeric_in(cstring, oid, int4) with a valid C string and no type modifier returns a palloc'd
    // numeric with a 4-byte header; its bytes are copied out before it is freed.
    unsafe {
        let datum = pgrx::fcinfo::direct_function_call::<pg_sys::Datum>(
            pg_sys::numeric_in,
            &[
                pgrx::IntoDatum::into_datum(text.as_c_str()),
                pgrx::IntoDatum::into_datum(pg_sys::InvalidOid),
                pgrx::IntoDatum::into_datum(-1i32),
            ],
        )
        .expect("numeric_in returns a value");
        let ptr = datum.cast_mut_ptr::<pg_sys::varlena>();
        let len = pgrx::varsize_any(ptr);
        let bytes = std::slice::from_raw_parts(ptr.cast::<u8>(), len).to_vec();
        pg_sys::pfree(ptr.cast());
        bytes
    }
}

fn refuse(code: PgSqlErrorCode, message: &'static str, detail: Option<&str>) -> ! {
    let mut report = ErrorReport::new(code, message, "plystra jsonb");
    if let Some(detail) = detail {
        report = report.set_detail(detail);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR-level reports do not return")
}

/// The value of jsonb argument `n` (`None` for NULL), read from its binary form: the value `serde_json` parses
/// from the argument's text, or the reason it would refuse that text.
///
/// # Safety
/// `fcinfo` is a valid call whose argument `n` exists and is declared jsonb.
pub unsafe fn jsonb_arg_value(
    fcinfo: pg_sys::FunctionCallInfo,
    n: usize,
) -> Option<Result<serde_json::Value, DecodeError>> {
    // SAFETY: a jsonb argument detoasted into one palloc'd (or in-place) varlena with a 4-byte header; its
    // content, the root container, is 4-byte aligned, and so is every numeric in it.
    unsafe {
        let datum = pgrx::fcinfo::pg_getarg_datum(fcinfo, n)?;
        let jsonb = pg_sys::pg_detoast_datum(datum.cast_mut_ptr());
        let data = std::slice::from_raw_parts(pgrx::vardata_any(jsonb).cast::<u8>(), pgrx::varsize_any_exhdr(jsonb));
        Some(decode(data, &mut |numeric| {
            let text = pg_sys::OidOutputFunctionCall(
                pg_sys::Oid::from(pg_sys::F_NUMERIC_OUT),
                pg_sys::Datum::from(numeric.as_ptr()),
            );
            std::ffi::CStr::from_ptr(text).to_string_lossy().into_owned()
        }))
    }
}
