//! The audit writer: a background worker that writes decision audit rows in its own transactions, so a row
//! survives the caller's rollback, and that confirms each row durable (committed) before the decision returns,
//! so that every answer a client received has its row even if the server is killed right after.
//!
//! Backends append a record to a ring buffer in shared memory and sleep on a condition variable; the worker
//! drains what is queued, inserts it in one transaction (group commit: one WAL flush for many decisions),
//! seals each row into its Space's hash chain as it goes (`crate::audit_append`), then publishes the highest
//! committed sequence number and wakes the waiters. Every second it also seals rows written by ordinary
//! transactions (`plystra.seal_audit`). A row the database refuses fails only its own decision
//! (`append_contained`): the writer and the batch's other rows go on.
//!
//! The writer is shared by every tenant of its database, so no request may hold it. There are two rings, two
//! lanes: single decisions, and the records of requests of many decisions (`plystra.check_batch`, the front's
//! batches and AuthZEN evaluations). Each drain takes every single decision queued and at most
//! `BULK_ROWS_PER_DRAIN` records of the other lane, so a decision never waits behind another request's thousand
//! rows, only behind one bounded step of them (an attack on the running front: one key's 1,000-item batches made
//! another tenant's single check wait 1.1 s at the median). The single lane needs no bound: a backend queues one
//! single decision at a time and waits for it, so it never holds more than the server has backends. Sealing a backlog
//! of rows written by ordinary transactions (a bulk import's management rows) goes the same way, `SEAL_ROWS_PER_STEP`
//! rows a transaction with the queue drained between steps (it was 10,000 rows in one call: an import of 20,000 rows
//! held every tenant's audited decisions for up to 20 s).
//!
//! It needs `shared_preload_libraries = 'plystra'` and serves the one database named by
//! `plystra.audit_writer_database`. Anywhere else (not preloaded, another database, a hot standby) decisions
//! are audited inside the caller's transaction, as plain SQL would, and those rows are sealed later.

use std::ffi::CString;
use std::ptr::{addr_of_mut, null_mut};
use std::time::{Duration, Instant};

use pgrx::bgworkers::{BackgroundWorker, BackgroundWorkerBuilder, SignalWakeFlags};
use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, PgLogLevel, PgSqlErrorCode};

/// Each lane's ring buffer capacity. A record is a decision's audit row (`plystra_core::audit_chain::AuditRecord`, a
/// few KiB).
const QUEUE_BYTES: usize = 4 << 20;
/// The lane of single decisions (a delivery of one record) and the lane of requests of many decisions.
const SINGLE: usize = 0;
const BULK: usize = 1;
/// At most this many records of the bulk lane go into one of the writer's transactions (and at most
/// `BULK_BYTES_PER_DRAIN` of them, but always one): the longest a single decision waits behind another request's
/// batch. About 10-20 ms of the writer's time at full size (it spends 150-300 µs a row).
const BULK_ROWS_PER_DRAIN: usize = 64;
const BULK_BYTES_PER_DRAIN: usize = 512 << 10;
/// How many rows written by ordinary transactions the writer seals in one transaction before it looks at its queue.
/// A row's hash is over its whole trace: 200 rows of 21 KB traces took 0.7 s a step in a debug build (an attack
/// on the writer), the longest a decision then waited; 50 keeps a step near a bulk step's time.
const SEAL_ROWS_PER_STEP: i32 = 50;
/// Records are 16-byte aligned; a header holds the payload length and the record's sequence number.
const HEADER: usize = 16;
/// A header with this length means "the rest of the buffer is unused, continue at its start".
const WRAP: u32 = u32::MAX;
/// Larger records (a decision with a huge number of grants) are refused, and the decision with them (`audit.rs`): a
/// row written in the caller's transaction instead would not survive its rollback. The size is the binary record's
/// (its trace in jsonb's form, somewhat larger than the trace's JSON text).
const MAX_RECORD: usize = QUEUE_BYTES / 8;
/// How long a backend waits for the writer's confirmation before it gives up with an error.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(30);
/// How often the writer seals rows that ordinary transactions wrote.
const SEAL_EVERY: Duration = Duration::from_secs(1);
/// How often the writer makes the audit log's monthly partitions ahead (`plystra.ensure_audit_partitions`).
const PARTITIONS_EVERY: Duration = Duration::from_secs(3600);
/// How long an upkeep step (sealing, making partitions) waits for any lock before it leaves its work for a later
/// turn (`upkeep_step`): every audited decision waits for this writer meanwhile.
const UPKEEP_LOCK_TIMEOUT: Duration = Duration::from_millis(200);
/// How often an upkeep step that keeps failing says so in the server log.
const UPKEEP_WARN_EVERY: Duration = Duration::from_secs(60);
/// When a month could not be made, how soon the upkeep tries again: soon, as a missing month sends its rows to the
/// DEFAULT partition, and every row there moves (under the log's exclusive lock) when the month is made; not at
/// every turn, as each try may cost the writer `UPKEEP_LOCK_TIMEOUT` while the log is held.
const PARTITIONS_RETRY: Duration = Duration::from_secs(10);
/// How many months after the current one get a partition ahead of time.
const PARTITION_MONTHS_AHEAD: i32 = 3;
const TRANCHE: &std::ffi::CStr = c"plystra_audit_writer";
/// How many refused rows the queue remembers for their waiters (see `Queue::refused`).
const REFUSED_ROWS: usize = 64;
/// How much of the database's message a refused row keeps for its decision's error.
const REFUSED_MESSAGE: usize = 240;

/// A row the database refused while the rest of its batch was committed: its decision fails with this error.
#[repr(C)]
#[derive(Clone, Copy)]
struct RefusedRow {
    seq: u64,
    sqlstate: i32,
    len: u16,
    message: [u8; REFUSED_MESSAGE],
}

impl RefusedRow {
    /// The row of `seq`, keeping what fits of `message`, cut on a character boundary (the waiter prints it back).
    fn new(seq: u64, sqlstate: i32, message: &str) -> RefusedRow {
        let mut n = message.len().min(REFUSED_MESSAGE);
        while !message.is_char_boundary(n) {
            n -= 1;
        }
        let mut row = RefusedRow { seq, sqlstate, len: n as u16, message: [0; REFUSED_MESSAGE] };
        row.message[..n].copy_from_slice(&message.as_bytes()[..n]);
        row
    }
}

pub static AUDIT_WRITER_DATABASE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(c"plystra"));

#[repr(C)]
struct Queue {
    lock: *mut pg_sys::LWLock,
    /// Broadcast when a writer starts or stops, and when space is freed for a backend that found the buffer full.
    progress: pg_sys::ConditionVariable,
    /// Broadcast when a drain's records are committed: `committed[k % 2]` for the k-th drain. A record queued
    /// after drain k is taken by drain k + 1, so its backend sleeps on that one's variable and is not woken by
    /// the commit of the batch before (at 16 clients a batch held 5.4 records on average, so most of the
    /// waiters are queued behind the batch that commits; each spurious wake-up is a signal and a context switch).
    committed: [pg_sys::ConditionVariable; 2],
    /// How many drains the writers have made (the number of the batch that takes what is queued now, minus one).
    drains: u64,
    /// Broadcast when a drain that took records of the bulk lane is committed (its waiters' records may take several
    /// drains: each looks at its own seq when woken).
    bulk_committed: pg_sys::ConditionVariable,
    /// A backend found a buffer full and waits for the next drain to free space.
    space_wanted: bool,
    worker_pid: i32,
    worker_latch: *mut pg_sys::Latch,
    database: pg_sys::Oid,
    /// Bumped each time a writer starts: records queued under an older generation are lost with its writer.
    generation: u64,
    /// Seqs are numbered across both lanes (a refused row is known by its seq alone); within a lane they rise in
    /// the order the writer commits them, so each lane's highest committed seq says which of its records are.
    next_seq: u64,
    /// The WAL position of the writer's latest commit. The writer commits asynchronously; a waiting backend
    /// flushes WAL up to here itself before it returns, so many backends share one flush (as commits do).
    committed_lsn: u64,
    /// Records with seq in (their lane's committed_seq, failed_seq] were drained but not committed: their writer
    /// died.
    failed_seq: u64,
    /// Rows the database refused (the rest of their batch committed), in a ring: `refused_count` entries were
    /// ever written, entry k at `refused[k % REFUSED_ROWS]`. A waiter whose seq is at most `refused_evicted` and
    /// that does not find itself there looks for its row in the log itself (`audit`): found, it is answered; not
    /// found, it fails (never an answer without its row).
    refused: [RefusedRow; REFUSED_ROWS],
    refused_count: u64,
    refused_evicted: u64,
    /// The highest seq ever refused: a waiter whose every seq is above it has nothing to look for.
    refused_last: u64,
    lanes: [Lane; 2],
}

/// One lane's ring of records and what of it is committed.
#[repr(C)]
struct Lane {
    committed_seq: u64,
    head: u64,
    tail: u64,
    /// Records ever queued in this lane, and ever taken out of it (by a drain, or dropped when a writer starts):
    /// their difference is how many wait in the ring (`plystra.audit_writer_stats`).
    queued_records: u64,
    taken_records: u64,
    /// Rows of this lane a writer committed.
    committed_records: u64,
    buf: [u8; QUEUE_BYTES],
}

static mut QUEUE: *mut Queue = null_mut();

const fn align16(n: usize) -> usize {
    (n + 15) & !15
}

/// Called from `_PG_init`. The queue and the worker exist only when the library is preloaded.
pub fn init() {
    // A postmaster-level setting can only be defined while the postmaster loads the library.
    if !unsafe { pg_sys::process_shared_preload_libraries_in_progress } {
        return;
    }
    GucRegistry::define_string_guc(
        c"plystra.audit_writer_database",
        c"The database whose decision audit rows the audit writer (a background worker) writes.",
        c"Needs shared_preload_libraries = 'plystra'. Empty: no writer; decisions are audited in the caller's transaction.",
        &AUDIT_WRITER_DATABASE,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    if AUDIT_WRITER_DATABASE.get().is_some_and(|db| !db.as_bytes().is_empty()) {
        BackgroundWorkerBuilder::new("plystra audit writer")
            .set_type("plystra audit writer")
            .set_library("plystra")
            .set_function("plystra_audit_writer_main")
            .enable_spi_access()
            .set_restart_time(Some(Duration::from_secs(2)))
            .load();
    }
}

/// The queue's share of the library's shared memory (`shmem`).
pub fn request_shmem() {
    // SAFETY: called from the shared-memory request hook.
    unsafe {
        pg_sys::RequestAddinShmemSpace(size_of::<Queue>());
        pg_sys::RequestNamedLWLockTranche(TRANCHE.as_ptr(), 1);
    }
}

/// Attaches to the queue, making it when this is the first process to (`shmem`: under AddinShmemInitLock).
pub fn attach_shmem() {
    let (base, found) = crate::shmem::region(c"plystra audit queue", size_of::<Queue>());
    let q = base.cast::<Queue>();
    // SAFETY: the region holds a Queue; only its header needs values, the buffer is written before it is read.
    unsafe {
        if !found {
            (*q).lock = &raw mut (*pg_sys::GetNamedLWLockTranche(TRANCHE.as_ptr())).lock;
            pg_sys::ConditionVariableInit(addr_of_mut!((*q).progress));
            pg_sys::ConditionVariableInit(addr_of_mut!((*q).committed[0]));
            pg_sys::ConditionVariableInit(addr_of_mut!((*q).committed[1]));
            pg_sys::ConditionVariableInit(addr_of_mut!((*q).bulk_committed));
            (*q).drains = 0;
            (*q).space_wanted = false;
            (*q).worker_pid = 0;
            (*q).worker_latch = null_mut();
            (*q).database = pg_sys::InvalidOid;
            (*q).generation = 0;
            (*q).next_seq = 0;
            (*q).committed_lsn = 0;
            (*q).failed_seq = 0;
            (*q).refused_count = 0;
            (*q).refused_evicted = 0;
            (*q).refused_last = 0;
            for lane in 0..2 {
                (*q).lanes[lane].committed_seq = 0;
                (*q).lanes[lane].head = 0;
                (*q).lanes[lane].tail = 0;
                (*q).lanes[lane].queued_records = 0;
                (*q).lanes[lane].taken_records = 0;
                (*q).lanes[lane].committed_records = 0;
            }
        }
        QUEUE = q;
    }
}

/// The queue, when this process has one (the library was preloaded).
fn queue() -> Option<*mut Queue> {
    let q = unsafe { QUEUE };
    (!q.is_null()).then_some(q)
}

struct Locked(*mut Queue);

impl Locked {
    fn exclusive(q: *mut Queue) -> Self {
        unsafe { pg_sys::LWLockAcquire((*q).lock, pg_sys::LWLockMode::LW_EXCLUSIVE) };
        Locked(q)
    }
    /// For reading only (`plystra.audit_writer_stats`): the `&mut` that `q` hands out must not be written through.
    fn shared(q: *mut Queue) -> Self {
        unsafe { pg_sys::LWLockAcquire((*q).lock, pg_sys::LWLockMode::LW_SHARED) };
        Locked(q)
    }
    fn q(&mut self) -> &mut Queue {
        unsafe { &mut *self.0 }
    }
}

impl Drop for Locked {
    fn drop(&mut self) {
        // During an ERROR, PostgreSQL releases every LWLock itself.
        unsafe {
            if pg_sys::LWLockHeldByMe((*self.0).lock) {
                pg_sys::LWLockRelease((*self.0).lock);
            }
        }
    }
}

fn broadcast(q: *mut Queue) {
    unsafe { pg_sys::ConditionVariableBroadcast(addr_of_mut!((*q).progress)) };
}

/// The condition variable on which the backends waiting for drain `drain` sleep.
fn committed_cv(q: *mut Queue, drain: u64) -> *mut pg_sys::ConditionVariable {
    unsafe { addr_of_mut!((*q).committed[(drain % 2) as usize]) }
}

/// Wakes every waiter, whatever it waits for (a writer started or stopped).
fn broadcast_all(q: *mut Queue) {
    broadcast(q);
    for k in 0..2 {
        unsafe { pg_sys::ConditionVariableBroadcast(committed_cv(q, k)) };
    }
    unsafe { pg_sys::ConditionVariableBroadcast(addr_of_mut!((*q).bulk_committed)) };
}

/// What happened to a record handed to the writer.
pub enum Delivery {
    /// Committed by the writer before this returned.
    Committed,
    /// The writer's commit that took these rows (by position) is flushed, but more rows were refused since than the
    /// queue remembers: whether each was committed or refused is no longer known here. The caller must look
    /// for them in the log before answering.
    Unconfirmed(Vec<usize>),
    /// No writer serves this database: the caller writes the row itself.
    NotAvailable,
    /// A writer serves this database but the record (this many bytes) is over its limit. The caller must
    /// fail the decision: writing the row in its own transaction would let a rollback erase it.
    TooLarge(usize),
}

/// Appends audit rows (records, built by `make_payloads` only if a writer serves this database) for the
/// writer and waits until they are committed: one decision's row, or the rows of a batch of decisions
/// (`plystra.check_batch`), each its own row. Raises an ERROR when the writer dies or does not confirm in time:
/// a decision must not be returned without its row.
///
/// A batch's rows are all queued in the bulk lane, then the backend waits once, for the last (one wait and one WAL
/// flush for the batch instead of one per row; the writer commits them in steps of `BULK_ROWS_PER_DRAIN`, in
/// order). `Committed` means every row is committed; an ERROR, that the batch was not answered (some rows may be
/// committed without an answer, never the reverse). `TooLarge` is checked for every row before any is queued.
pub fn deliver_all(make_payloads: impl FnOnce() -> Vec<Vec<u8>>) -> Delivery {
    let Some(q) = queue() else {
        return Delivery::NotAvailable;
    };
    // Only build the records (the rows, traces encoded as jsonb) when a writer serves this database.
    let serves = {
        let mut g = Locked::exclusive(q);
        let qq = g.q();
        qq.worker_pid != 0 && qq.database == unsafe { pg_sys::MyDatabaseId }
    };
    if !serves {
        return Delivery::NotAvailable;
    }
    let payloads = make_payloads();
    if let Some(large) = payloads.iter().map(Vec::len).find(|&n| n > MAX_RECORD) {
        return Delivery::TooLarge(large);
    }
    let lane = if payloads.len() > 1 { BULK } else { SINGLE };
    let started = Instant::now();
    unsafe { pg_sys::ConditionVariablePrepareToSleep(addr_of_mut!((*q).progress)) };
    // (seq, generation, the drain that takes it) of the last record queued, and every record's seq.
    let mut last: Option<(u64, u64, u64)> = None;
    let mut seqs = Vec::with_capacity(payloads.len());
    for (i, payload) in payloads.iter().enumerate() {
        let total = HEADER + align16(payload.len());
        let (seq, generation, drain) = loop {
            let mut g = Locked::exclusive(q);
            let qq = g.q();
            if qq.worker_pid == 0 || qq.database != unsafe { pg_sys::MyDatabaseId } {
                drop(g);
                unsafe { pg_sys::ConditionVariableCancelSleep() };
                if i == 0 {
                    return Delivery::NotAvailable;
                }
                // Rows of this batch are queued already: writing the rest here would split the batch's record.
                audit_unavailable(
                    "the audit writer stopped before it recorded this batch; the decisions were not made",
                );
            }
            let ring = &mut qq.lanes[lane];
            let phys = (ring.head % QUEUE_BYTES as u64) as usize;
            let wrap_waste = if phys + total > QUEUE_BYTES { QUEUE_BYTES - phys } else { 0 };
            let used = (ring.head - ring.tail) as usize;
            if QUEUE_BYTES - used >= total + wrap_waste {
                if wrap_waste > 0 {
                    write_header(ring, phys, WRAP, 0);
                    ring.head += wrap_waste as u64;
                }
                qq.next_seq += 1;
                let seq = qq.next_seq;
                let ring = &mut qq.lanes[lane];
                let at = (ring.head % QUEUE_BYTES as u64) as usize;
                write_header(ring, at, payload.len() as u32, seq);
                ring.buf[at + HEADER..at + HEADER + payload.len()].copy_from_slice(payload);
                ring.head += total as u64;
                ring.queued_records += 1;
                break (seq, qq.generation, qq.drains + 1);
            }
            // Full: the writer frees space as it drains (a batch may fill the queue itself: wake the writer).
            qq.space_wanted = true;
            let latch = qq.worker_latch;
            drop(g);
            unsafe { pg_sys::SetLatch(latch) };
            wait_a_little(unsafe { addr_of_mut!((*q).progress) }, started);
        };
        if last.is_some_and(|(_, g, _)| g != generation) {
            unsafe { pg_sys::ConditionVariableCancelSleep() };
            audit_unavailable("the audit writer stopped before it recorded this batch; the decisions were not made");
        }
        last = Some((seq, generation, drain));
        seqs.push(seq);
    }
    let Some((seq, generation, drain)) = last else {
        unsafe { pg_sys::ConditionVariableCancelSleep() };
        return Delivery::Committed;
    };
    {
        let mut g = Locked::exclusive(q);
        let latch = g.q().worker_latch;
        drop(g);
        unsafe { pg_sys::SetLatch(latch) };
    }
    // The writer commits a lane in sequence order, so the last row committed means every row of this batch is. A
    // single decision is taken by the next drain, whose commit wakes only its own waiters; a batch's last row may
    // take several drains, so its backend wakes at each drain of the bulk lane.
    let cv = if lane == SINGLE { committed_cv(q, drain) } else { unsafe { addr_of_mut!((*q).bulk_committed) } };
    unsafe { pg_sys::ConditionVariablePrepareToSleep(cv) };
    let (lsn, lost) = loop {
        {
            let mut g = Locked::exclusive(q);
            let qq = g.q();
            let committed_seq = qq.lanes[lane].committed_seq;
            if qq.generation != generation || (qq.failed_seq >= seq && committed_seq < seq) {
                drop(g);
                unsafe { pg_sys::ConditionVariableCancelSleep() };
                audit_unavailable(
                    "the audit writer stopped before it recorded this decision (or batch); it was not answered",
                );
            }
            if committed_seq >= seq {
                match refused_among(qq, &seqs) {
                    Fate::Committed => break (qq.committed_lsn, Vec::new()),
                    Fate::Unknown(lost) => break (qq.committed_lsn, lost),
                    Fate::Refused(refused) => {
                        drop(g);
                        unsafe { pg_sys::ConditionVariableCancelSleep() };
                        row_refused(*refused);
                    }
                }
            }
        }
        wait_a_little(cv, started);
    };
    unsafe { pg_sys::ConditionVariableCancelSleep() };
    // Durable before the answer: a crash before this flush loses the row, but then no answer was given either.
    unsafe { pg_sys::XLogFlush(lsn) };
    if lost.is_empty() {
        Delivery::Committed
    } else {
        Delivery::Unconfirmed(lost)
    }
}

/// The audit row could not be recorded now, so the decision is not given: SQLSTATE 57P03 (cannot connect now),
/// a condition to retry, never an internal error. The REST front answers it 503 AUDIT_UNAVAILABLE with
/// Retry-After.
fn audit_unavailable(message: &str) -> ! {
    pgrx::pg_sys::panic::ErrorReport::new(
        PgSqlErrorCode::ERRCODE_CANNOT_CONNECT_NOW,
        format!("plystra: {message}"),
        "plystra audit writer",
    )
    .set_detail("audit unavailable")
    .set_hint("Retry the decision: the audit writer restarts by itself.")
    .report(PgLogLevel::ERROR);
    unreachable!("ERROR-level reports do not return")
}

/// What became of a committed drain's rows for one waiter.
enum Fate {
    Committed,
    /// The first of its rows the database refused (boxed: a refused row carries its message).
    Refused(Box<RefusedRow>),
    /// The positions of its rows the ring may have lost (none of the others was refused).
    Unknown(Vec<usize>),
}

/// The fate of the rows `seqs` once their drain is committed: refused (the first found in the ring), committed, or
/// unknown for a seq at most `refused_evicted` that the ring no longer holds.
fn refused_among(q: &Queue, seqs: &[u64]) -> Fate {
    // Refusals are rare: almost every waiter leaves here, whatever the size of its batch.
    if seqs.iter().all(|&seq| seq > q.refused_last) {
        return Fate::Committed;
    }
    let kept = q.refused_count.min(REFUSED_ROWS as u64);
    let mut lost = Vec::new();
    for (at, &seq) in seqs.iter().enumerate() {
        let found = (q.refused_count - kept..q.refused_count)
            .map(|k| q.refused[(k % REFUSED_ROWS as u64) as usize])
            .find(|r| r.seq == seq);
        if let Some(row) = found {
            return Fate::Refused(Box::new(row));
        }
        if seq <= q.refused_evicted {
            lost.push(at);
        }
    }
    if lost.is_empty() {
        Fate::Committed
    } else {
        Fate::Unknown(lost)
    }
}

/// A row of this decision is not in the log, and the queue no longer holds why: refused, as [`row_refused`].
pub fn refusal_forgotten() -> ! {
    row_refused(RefusedRow::new(0, 0, "more rows were refused since than the queue remembers"))
}

/// The database refused this decision's audit row (its batch's other rows were committed): the decision is not
/// given, with the database's own SQLSTATE and message. Input cannot cause this (every field is bounded before
/// the row is queued): it is a defect or a constraint an operator added, contained to the one decision.
fn row_refused(row: RefusedRow) -> ! {
    let message = String::from_utf8_lossy(&row.message[..row.len as usize]).into_owned();
    let code =
        if row.sqlstate == 0 { PgSqlErrorCode::ERRCODE_INTERNAL_ERROR } else { PgSqlErrorCode::from(row.sqlstate) };
    pgrx::pg_sys::panic::ErrorReport::new(
        code,
        format!("plystra: the audit row of this decision was refused, so it was not made: {message}"),
        "plystra audit writer",
    )
    .set_detail("audit row refused")
    .report(PgLogLevel::ERROR);
    unreachable!("ERROR-level reports do not return")
}

fn wait_a_little(cv: *mut pg_sys::ConditionVariable, started: Instant) {
    if started.elapsed() > CONFIRM_TIMEOUT {
        unsafe { pg_sys::ConditionVariableCancelSleep() };
        audit_unavailable("the audit writer did not confirm the audit row in time; the decision was not made");
    }
    unsafe {
        pg_sys::ConditionVariableTimedSleep(cv, 100, pg_sys::PG_WAIT_EXTENSION);
    }
}

fn write_header(ring: &mut Lane, at: usize, len: u32, seq: u64) {
    ring.buf[at..at + 4].copy_from_slice(&len.to_ne_bytes());
    ring.buf[at + 8..at + 16].copy_from_slice(&seq.to_ne_bytes());
}

fn read_header(ring: &Lane, at: usize) -> (u32, u64) {
    let len = u32::from_ne_bytes(ring.buf[at..at + 4].try_into().expect("4 bytes"));
    let seq = u64::from_ne_bytes(ring.buf[at + 8..at + 16].try_into().expect("8 bytes"));
    (len, seq)
}

/// What one drain took: its number, and each lane's records (seqs and `AuditRecord`s as bytes, in seq order).
struct Drained {
    number: u64,
    seqs: [Vec<u64>; 2],
    rows: Vec<Vec<u8>>,
    /// The bulk lane still holds records after this drain.
    bulk_left: bool,
}

/// Takes every record of the single lane and a bounded step of the bulk lane out of the buffers (single decisions
/// first: they are what a caller waits for alone).
fn drain(q: *mut Queue) -> Option<Drained> {
    let mut g = Locked::exclusive(q);
    let qq = g.q();
    if qq.lanes.iter().all(|ring| ring.head == ring.tail) {
        return None;
    }
    let mut rows = Vec::new();
    let mut seqs: [Vec<u64>; 2] = [Vec::new(), Vec::new()];
    for lane in [SINGLE, BULK] {
        let ring = &mut qq.lanes[lane];
        let mut bytes = 0;
        while ring.tail < ring.head {
            if lane == BULK
                && !seqs[BULK].is_empty()
                && (seqs[BULK].len() >= BULK_ROWS_PER_DRAIN || bytes >= BULK_BYTES_PER_DRAIN)
            {
                break;
            }
            let at = (ring.tail % QUEUE_BYTES as u64) as usize;
            let (len, seq) = read_header(ring, at);
            if len == WRAP {
                ring.tail += (QUEUE_BYTES - at) as u64;
                continue;
            }
            rows.push(ring.buf[at + HEADER..at + HEADER + len as usize].to_vec());
            seqs[lane].push(seq);
            ring.taken_records += 1;
            bytes += len as usize;
            ring.tail += (HEADER + align16(len as usize)) as u64;
        }
    }
    let bulk_left = qq.lanes[BULK].tail < qq.lanes[BULK].head;
    qq.drains += 1;
    let number = qq.drains;
    let space_wanted = std::mem::take(&mut qq.space_wanted);
    drop(g);
    if space_wanted {
        broadcast(q);
    }
    Some(Drained { number, seqs, rows, bulk_left })
}

#[pg_guard]
unsafe extern "C-unwind" fn on_writer_exit(_code: i32, _arg: pg_sys::Datum) {
    if let Some(q) = queue() {
        let mut g = Locked::exclusive(q);
        let qq = g.q();
        if qq.worker_pid == unsafe { pg_sys::MyProcPid } {
            // Whatever was drained but not confirmed is lost with this writer: its waiters must hear it.
            qq.worker_pid = 0;
            qq.failed_seq = qq.next_seq;
        }
        drop(g);
        broadcast_all(q);
    }
}

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn plystra_audit_writer_main(_arg: pg_sys::Datum) {
    BackgroundWorker::attach_signal_handlers(SignalWakeFlags::SIGHUP | SignalWakeFlags::SIGTERM);
    keep_freed_memory();
    let database = AUDIT_WRITER_DATABASE.get().map(|c| c.to_string_lossy().into_owned()).unwrap_or_default();
    BackgroundWorker::connect_worker_to_spi(Some(&database), None);
    let Some(q) = queue() else { return };
    unsafe { pg_sys::before_shmem_exit(Some(on_writer_exit), pg_sys::Datum::from(0)) };
    {
        let mut g = Locked::exclusive(q);
        let qq = g.q();
        qq.generation += 1;
        // Anything left in the buffer belonged to a writer that is gone; its waiters fail on the new generation.
        qq.failed_seq = qq.next_seq;
        for ring in &mut qq.lanes {
            ring.tail = ring.head;
            ring.taken_records = ring.queued_records;
        }
        qq.worker_pid = unsafe { pg_sys::MyProcPid };
        qq.worker_latch = unsafe { pg_sys::MyLatch };
        qq.database = unsafe { pg_sys::MyDatabaseId };
    }
    broadcast_all(q);
    // Commit without waiting for the WAL flush: each waiting backend flushes up to the commit itself, so the
    // writer is never idle during an fsync and concurrent decisions share flushes.
    BackgroundWorker::transaction(|| Spi::run("SET synchronous_commit = off").expect("SET synchronous_commit"));
    log!("plystra audit writer started for database \"{database}\"");

    let mut last_seal = Instant::now();
    // A seal step sealed all it may: more rows wait, sealed at the next turn of the loop, not a second later.
    let mut seal_backlog = false;
    let mut upkeep = ensure_partitions();
    let mut last_partitions = Instant::now();
    while BackgroundWorker::wait_latch(Some(SEAL_EVERY)) {
        if let Some(Drained { number, seqs, rows, bulk_left }) = drain(q) {
            let all_seqs: Vec<u64> = seqs.iter().flatten().copied().collect();
            let refused = append_contained(&all_seqs, &rows);
            let lsn = unsafe { pg_sys::XactLastCommitEnd };
            {
                let mut g = Locked::exclusive(q);
                let qq = g.q();
                for (ring, taken) in qq.lanes.iter_mut().zip(&seqs) {
                    let refused_here = refused.iter().filter(|row| taken.contains(&row.seq)).count();
                    ring.committed_records += (taken.len() - refused_here) as u64;
                }
                for row in refused {
                    let at = (qq.refused_count % REFUSED_ROWS as u64) as usize;
                    if qq.refused_count >= REFUSED_ROWS as u64 {
                        qq.refused_evicted = qq.refused_evicted.max(qq.refused[at].seq);
                    }
                    qq.refused_last = qq.refused_last.max(row.seq);
                    qq.refused[at] = row;
                    qq.refused_count += 1;
                }
                for (ring, taken) in qq.lanes.iter_mut().zip(&seqs) {
                    if let Some(&last) = taken.last() {
                        ring.committed_seq = ring.committed_seq.max(last);
                    }
                }
                qq.committed_lsn = qq.committed_lsn.max(lsn);
            }
            if !seqs[SINGLE].is_empty() {
                unsafe { pg_sys::ConditionVariableBroadcast(committed_cv(q, number)) };
            }
            if !seqs[BULK].is_empty() {
                unsafe { pg_sys::ConditionVariableBroadcast(addr_of_mut!((*q).bulk_committed)) };
            }
            if bulk_left {
                // The rest of the bulk lane is taken at the next turn, with whatever single decisions came meanwhile.
                unsafe { pg_sys::SetLatch(pg_sys::MyLatch) };
            }
        }
        if seal_backlog || last_seal.elapsed() >= SEAL_EVERY {
            last_seal = Instant::now();
            seal_backlog = seal_step() >= SEAL_ROWS_PER_STEP;
            // Another turn at once: for the backlog, and for a decision whose wake-up a lock wait of the step took
            // (such a wait sleeps on this latch).
            unsafe { pg_sys::SetLatch(pg_sys::MyLatch) };
        }
        if upkeep.due(last_partitions.elapsed()) {
            last_partitions = Instant::now();
            upkeep = ensure_partitions();
            // A decision that queued its row while the upkeep waited for a lock set this latch, and that wait
            // (which sleeps on the same latch) took the wake-up: look at the queue again now, not a SEAL_EVERY later.
            unsafe { pg_sys::SetLatch(pg_sys::MyLatch) };
        }
    }
    // Exit code 1 asks the postmaster to start a new writer after the restart time: a SIGTERM can come from
    // DROP DATABASE ... WITH (FORCE) or pg_terminate_backend, not only from a shutdown (which starts nothing).
    log!("plystra audit writer stopping");
    unsafe { pg_sys::proc_exit(1) };
}

/// Seals up to `SEAL_ROWS_PER_STEP` rows written by ordinary transactions, in a transaction of its own: how many it
/// sealed (0 when the function is not installed yet, another sealer holds the chains, or the step could not have
/// its locks in time: the rows wait for a later turn, unsealed).
fn seal_step() -> i32 {
    upkeep_step(Upkept::Seal, 0, || {
        let installed =
            Spi::get_one::<bool>("SELECT pg_catalog.to_regprocedure('plystra.seal_audit(integer)') IS NOT NULL")
                .ok()
                .flatten()
                .unwrap_or(false);
        if !installed {
            return 0;
        }
        Spi::get_one_with_args::<i32>("SELECT plystra.seal_audit($1)", &[SEAL_ROWS_PER_STEP.into()])
            .expect("plystra audit writer: seal_audit must succeed")
            .unwrap_or(0)
    })
}

/// The writer's upkeep steps, each with its own rate of complaint.
#[derive(Clone, Copy)]
enum Upkept {
    Seal = 0,
    Partitions = 1,
}

/// When each upkeep step last complained in the server log (the writer is one thread).
static LAST_UPKEEP_WARNING: [std::sync::Mutex<Option<Instant>>; 2] =
    [std::sync::Mutex::new(None), std::sync::Mutex::new(None)];

/// Runs an upkeep step in a transaction of its own that waits at most `UPKEEP_LOCK_TIMEOUT` for each lock; when the
/// step fails (a lock held by another session: a partition under VACUUM FULL or CLUSTER, an operator's LOCK TABLE
/// of the log; or anything else), it is rolled back, said in the server log at most every `UPKEEP_WARN_EVERY`, and
/// `fallback` is returned. Sealing and making partitions can wait; the decisions behind this writer cannot: a seal
/// step read every partition of the log, and used to wait, with every audited decision behind it, for as long as
/// any partition was held; and an upkeep error ended the writer, whose restart failed every waiting decision.
fn upkeep_step<T>(step: Upkept, fallback: T, f: impl FnOnce() -> T) -> T {
    // SAFETY: the writer's loop runs outside any transaction; this is its memory context between steps.
    let context = unsafe { pg_sys::CurrentMemoryContext };
    let outcome = pg_sys::PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
        Ok(BackgroundWorker::transaction(std::panic::AssertUnwindSafe(|| {
            Spi::run(&format!("SET LOCAL lock_timeout = '{}ms'", UPKEEP_LOCK_TIMEOUT.as_millis()))
                .expect("plystra audit writer: SET LOCAL lock_timeout");
            f()
        })))
    }))
    .catch_others(|caught| Err(caught_error(caught).1))
    .execute();
    match outcome {
        Ok(value) => value,
        Err(message) => {
            abort_failed_transaction(context);
            let mut last = LAST_UPKEEP_WARNING[step as usize].lock().unwrap_or_else(|e| e.into_inner());
            if last.is_none_or(|at| at.elapsed() >= UPKEEP_WARN_EVERY) {
                *last = Some(Instant::now());
                let what = match step {
                    Upkept::Seal => "sealing audit rows",
                    Upkept::Partitions => "making the audit log's partitions",
                };
                warning!("plystra audit writer: {what} is left for a later turn: {message}");
            }
            fallback
        }
    }
}

/// Inserts a drained batch so that a row the database refuses fails only its own decision. The batch is inserted in
/// one transaction, as it always was; only when that fails is the transaction rolled back and each row tried again,
/// in one retry transaction, each in a subtransaction of its own. (A subtransaction around
/// every batch cost the writer about 90 µs of CPU a batch: 1,275-1,299 audited decisions a second at 2 clients
/// against 1,500-1,779 without, `bench/results/ab-audit-containment.md`.) Before, any insert error ended the
/// writer, and with it every decision waiting on that batch, in every tenant, for the two seconds the writer takes
/// to restart. Returns the refused rows.
fn append_contained(seqs: &[u64], rows: &[Vec<u8>]) -> Vec<RefusedRow> {
    // SAFETY: the writer's loop runs outside any transaction; this is its memory context between batches.
    let context = unsafe { pg_sys::CurrentMemoryContext };
    let batch = pg_sys::PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
        BackgroundWorker::transaction(|| crate::audit_append::append(rows));
        true
    }))
    .catch_others(|caught| {
        let (_, message) = caught_error(caught);
        log!("plystra audit writer: a batch failed ({message}); each of its {} rows is tried alone", rows.len());
        false
    })
    .execute();
    if batch {
        return Vec::new();
    }
    abort_failed_transaction(context);
    let retried = pg_sys::PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
        BackgroundWorker::transaction(std::panic::AssertUnwindSafe(|| {
            // A constraint an operator made deferrable would otherwise be checked at this transaction's commit,
            // outside every row's subtransaction, and fail the whole retry (or, uncaught, stop the writer).
            Spi::run("SET CONSTRAINTS ALL IMMEDIATE").expect("SET CONSTRAINTS ALL IMMEDIATE");
            let mut refused = Vec::new();
            for (seq, row) in seqs.iter().zip(rows) {
                let Err((sqlstate, message)) =
                    in_subtransaction(|| crate::audit_append::append(std::slice::from_ref(row)))
                else {
                    continue;
                };
                log!("plystra audit writer: the audit row of queued decision {seq} was refused: {message}");
                refused.push(RefusedRow::new(*seq, sqlstate, &message));
            }
            refused
        }))
    }))
    .catch_others(|caught| {
        // Whatever failed the retry itself (its commit included): none of the batch's rows is committed, so each
        // decision fails with that error, and the writer goes on to the next batch.
        let (sqlstate, message) = caught_error(caught);
        log!("plystra audit writer: retrying a failed batch row by row failed too ({message}); its rows are refused");
        seqs.iter().map(|&seq| RefusedRow::new(seq, sqlstate, &message)).collect()
    })
    .execute();
    abort_failed_transaction(context);
    retried
}

/// Rolls back the transaction an ERROR left open, as a background worker's error recovery does (pgrx has already
/// copied and flushed the error), and restores the loop's memory context. Nothing to do when none is open.
fn abort_failed_transaction(context: pg_sys::MemoryContext) {
    // SAFETY: the writer's loop, outside any statement; AbortCurrentTransaction is a no-op in the idle state.
    unsafe {
        pg_sys::AbortCurrentTransaction();
        pg_sys::MemoryContextSwitchTo(context);
    }
}

/// The SQLSTATE and message of an error caught from PostgreSQL or from this library.
fn caught_error(caught: pg_sys::panic::CaughtError) -> (i32, String) {
    match caught {
        pg_sys::panic::CaughtError::PostgresError(e)
        | pg_sys::panic::CaughtError::ErrorReport(e)
        | pg_sys::panic::CaughtError::RustPanic { ereport: e, .. } => {
            (e.sql_error_code() as i32, e.message().to_string())
        }
    }
}

/// Runs `f` in a subtransaction of the current transaction (as a PL/pgSQL block with an EXCEPTION clause does):
/// released when `f` returns, rolled back when it raises an ERROR, whose SQLSTATE and message are returned.
fn in_subtransaction(f: impl FnOnce()) -> Result<(), (i32, String)> {
    // SAFETY: called inside a transaction in the writer; the memory context and resource owner are restored on
    // both paths as PL/pgSQL's exception blocks restore them.
    unsafe {
        let context = pg_sys::CurrentMemoryContext;
        let owner = pg_sys::CurrentResourceOwner;
        pg_sys::BeginInternalSubTransaction(std::ptr::null());
        pg_sys::MemoryContextSwitchTo(context);
        let outcome = pg_sys::PgTryBuilder::new(std::panic::AssertUnwindSafe(|| {
            f();
            Ok(())
        }))
        .catch_others(|caught| Err(caught_error(caught)))
        .execute();
        if outcome.is_ok() {
            pg_sys::ReleaseCurrentSubTransaction();
        } else {
            pg_sys::MemoryContextSwitchTo(context);
            pg_sys::RollbackAndReleaseCurrentSubTransaction();
        }
        pg_sys::MemoryContextSwitchTo(context);
        pg_sys::CurrentResourceOwner = owner;
        outcome
    }
}

/// glibc gives freed memory at the top of the heap back to the kernel once it passes a threshold, and serves
/// large requests with their own mappings: for the writer, whose every batch allocates and frees the same few
/// hundred KiB (executor state, the batch's arrays), that was a `brk` or `munmap` and its page faults on every
/// batch (about 8% of its samples for batches of one row in a profile). The writer keeps what it freed instead:
/// its footprint stays that of its largest batch (the buffer bounds a batch to a few MiB).
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn mallopt(param: std::ffi::c_int, value: std::ffi::c_int) -> std::ffi::c_int;
        }
        const M_TRIM_THRESHOLD: std::ffi::c_int = -1;
        const M_MMAP_THRESHOLD: std::ffi::c_int = -3;
        // SAFETY: mallopt only changes this process's allocator settings; called before the writer allocates.
        unsafe {
            mallopt(M_TRIM_THRESHOLD, 64 << 20);
            mallopt(M_MMAP_THRESHOLD, 16 << 20);
        }
    }
}

/// What the writer's partition upkeep found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Upkeep {
    /// `plystra.ensure_audit_partitions` does not exist yet (before migration 009): asked again at every turn of the
    /// loop, so that a fresh install gets this month's partition at once.
    NotInstalled,
    /// A month of the coming ones has no partition (it could not have the log in time): tried again after
    /// `PARTITIONS_RETRY`.
    Missing,
    /// Every coming month has its partition: looked at again after `PARTITIONS_EVERY`.
    Made,
}

impl Upkeep {
    /// Whether the upkeep is due, `since` its last run.
    fn due(self, since: Duration) -> bool {
        match self {
            Upkeep::NotInstalled => true,
            Upkeep::Missing => since >= PARTITIONS_RETRY,
            Upkeep::Made => since >= PARTITIONS_EVERY,
        }
    }
}

/// Whether this month and the next `PARTITION_MONTHS_AHEAD` each lie in one monthly partition.
const COMING_MONTHS_MADE_SQL: &str = "SELECT pg_catalog.bool_and(EXISTS (     SELECT 1 FROM plystra.audit_partitions() p WHERE NOT p.is_default AND p.range_from <= m.start AND p.range_to > m.start))      FROM (SELECT (pg_catalog.date_trunc('month', pg_catalog.now() AT TIME ZONE 'UTC')                    + pg_catalog.make_interval(months => i)) AT TIME ZONE 'UTC' AS start            FROM pg_catalog.generate_series(0, $1) AS i) m";

/// Makes the coming months' audit partitions (a no-op when they exist, or before migration 009 is installed). The
/// function turns a month it cannot make into a WARNING, so that the writer never stops over it: that month's rows
/// go to the DEFAULT partition until it is made. Making a partition takes the log exclusively, which waits for every
/// transaction that holds any lock on it (a long report over the log, a session idle in a transaction that wrote a
/// row) while every audited decision waits for this writer: `upkeep_step` bounds the wait, and a month that cannot
/// be made in time is tried again after PARTITIONS_RETRY.
fn ensure_partitions() -> Upkeep {
    upkeep_step(Upkept::Partitions, Upkeep::Missing, || {
        let installed = Spi::get_one::<bool>(
            "SELECT pg_catalog.to_regprocedure('plystra.ensure_audit_partitions(integer)') IS NOT NULL",
        )
        .ok()
        .flatten()
        .unwrap_or(false);
        if !installed {
            return Upkeep::NotInstalled;
        }
        let coming_months_made = || {
            Spi::get_one_with_args::<bool>(COMING_MONTHS_MADE_SQL, &[PARTITION_MONTHS_AHEAD.into()])
                .expect("plystra audit writer: whether the coming months have their partitions")
                .unwrap_or(false)
        };
        if coming_months_made() {
            return Upkeep::Made;
        }
        // The log once, for every missing month: each month's maker would otherwise wait UPKEEP_LOCK_TIMEOUT in
        // turn (ensure_audit_partitions turns each month's timeout into a WARNING of its own), with every audited
        // decision behind this writer. Not had in time, the step fails as a whole (one WARNING a minute).
        Spi::run("LOCK TABLE ONLY plystra.audit_logs IN ACCESS EXCLUSIVE MODE")
            .expect("plystra audit writer: the audit log, to make its partitions");
        Spi::run_with_args(
            "SELECT count(*) FROM plystra.ensure_audit_partitions($1)",
            &[PARTITION_MONTHS_AHEAD.into()],
        )
        .expect("plystra audit writer: ensure_audit_partitions must succeed");
        if coming_months_made() {
            Upkeep::Made
        } else {
            Upkeep::Missing
        }
    })
}

/// The audit writer's queue as operators watch it (the REST front's /metrics): whether a writer serves this
/// database, how many times a writer started, its transactions, the rows it refused, and for each lane the records
/// waiting in its ring (and their bytes, against the ring's size) and the rows committed. Counters run from the
/// server's start. In a database the writer does not serve (or has not yet served), only that (`active` false): the
/// counters are another database's audit activity, which is not this database's administrators' to see. Reads
/// under the queue's lock in shared mode; granted to plystra_admin (`apply_privileges`).
#[pg_extern(volatile, parallel_safe)]
fn audit_writer_stats() -> pgrx::JsonB {
    let Some(q) = queue() else {
        return pgrx::JsonB(serde_json::json!({"active": false, "preloaded": false}));
    };
    let mut g = Locked::shared(q);
    let qq = g.q();
    if qq.database != unsafe { pg_sys::MyDatabaseId } {
        return pgrx::JsonB(serde_json::json!({"active": false, "preloaded": true}));
    }
    let lane = |ring: &Lane| {
        serde_json::json!({
            "queued_records": ring.queued_records - ring.taken_records,
            "queued_bytes": ring.head - ring.tail,
            "capacity_bytes": QUEUE_BYTES,
            "rows_committed": ring.committed_records,
        })
    };
    let stats = serde_json::json!({
        "active": qq.worker_pid != 0,
        "preloaded": true,
        "writer_starts": qq.generation,
        "transactions": qq.drains,
        "rows_refused": qq.refused_count,
        "lanes": {"single": lane(&qq.lanes[SINGLE]), "bulk": lane(&qq.lanes[BULK])},
    });
    drop(g);
    pgrx::JsonB(stats)
}

/// Whether a writer serves this backend's database right now.
#[pg_extern(stable, parallel_safe)]
fn audit_writer_active() -> bool {
    queue().is_some_and(|q| {
        let mut g = Locked::exclusive(q);
        let qq = g.q();
        qq.worker_pid != 0 && qq.database == unsafe { pg_sys::MyDatabaseId }
    })
}
