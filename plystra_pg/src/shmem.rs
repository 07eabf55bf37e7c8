//! The library's shared memory: one pair of hooks, chained once while the postmaster loads the library, for every
//! part that keeps something there (the audit writer's queue, the shared actors and groups). Each part says what it needs
//! (`request`) and attaches to what was made (`attach`), under AddinShmemInitLock, in the order listed here.

use std::ffi::CStr;

use pgrx::{pg_guard, pg_sys};

static mut PREV_REQUEST_HOOK: pg_sys::shmem_request_hook_type = None;
static mut PREV_STARTUP_HOOK: pg_sys::shmem_startup_hook_type = None;

/// Called from `_PG_init`; does nothing unless the postmaster is preloading the library.
pub fn install() {
    // SAFETY: a flag the postmaster sets while it loads shared_preload_libraries.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    // SAFETY: the hooks are chained while the postmaster loads the library, before any backend exists.
    unsafe {
        PREV_REQUEST_HOOK = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(request);
        PREV_STARTUP_HOOK = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(startup);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn request() {
    unsafe {
        if let Some(prev) = PREV_REQUEST_HOOK {
            prev();
        }
    }
    crate::audit_writer::request_shmem();
    crate::actor_shared::TIER.request_shmem();
    crate::group_shared::TIER.request_shmem();
}

#[pg_guard]
unsafe extern "C-unwind" fn startup() {
    unsafe {
        if let Some(prev) = PREV_STARTUP_HOOK {
            prev();
        }
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock; // AddinShmemInitLock
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        crate::audit_writer::attach_shmem();
        crate::actor_shared::TIER.attach_shmem();
        crate::group_shared::TIER.attach_shmem();
        pg_sys::LWLockRelease(init_lock);
    }
}

/// The named region of `bytes` bytes, and whether it was already made (by the postmaster, before a crash restart
/// made it anew, or by another process where processes do not inherit it). Called from an `attach_shmem` only.
pub fn region(name: &CStr, bytes: usize) -> (*mut u8, bool) {
    let mut found = false;
    // SAFETY: called under AddinShmemInitLock from the startup hook, with a size requested by the request hook.
    let base = unsafe { pg_sys::ShmemInitStruct(name.as_ptr(), bytes, &mut found) }.cast::<u8>();
    (base, found)
}
