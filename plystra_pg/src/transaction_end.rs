//! What a backend forgets when its transaction ends, in one callback registered once per backend (`_PG_init`): the
//! per-statement memos of the actor's reach (`actor_reach`), whose keys hold the transaction's start, and the mark of
//! a transaction that has written kept rows (`kept_writes`).

use pgrx::pg_sys;
use pgrx::prelude::*;

/// Registers the callback.
pub fn register() {
    // SAFETY: registers a plain C callback with no argument; it lives as long as the library (never unloaded).
    unsafe { pg_sys::RegisterXactCallback(Some(at_end), std::ptr::null_mut()) };
}

#[pg_guard]
unsafe extern "C-unwind" fn at_end(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    if matches!(
        event,
        pg_sys::XactEvent::XACT_EVENT_COMMIT
            | pg_sys::XactEvent::XACT_EVENT_ABORT
            | pg_sys::XactEvent::XACT_EVENT_PREPARE
            | pg_sys::XactEvent::XACT_EVENT_PARALLEL_COMMIT
            | pg_sys::XactEvent::XACT_EVENT_PARALLEL_ABORT
    ) {
        crate::actor_reach::forget_memos();
        crate::kept_writes::forget();
    }
}
