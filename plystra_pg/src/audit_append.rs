//! The audit writer's append: a drained batch of decision rows sealed into their Spaces' hash chains and inserted
//! by one statement, in the writer's transaction.
//!
//! Each record arrives with its trace already in jsonb's binary form (`plystra_core::audit_chain::AuditRecord`,
//! written by the deciding backend); the trace datum is a copy of those bytes. Each row's hash is computed here
//! (`plystra_core::audit_chain`, the same bytes as `plystra.audit_row_hash`, which stays the definition
//! verification uses), over the trace's text as PostgreSQL prints that jsonb (`JsonbToCString`, what the SQL
//! definition's `::text` calls). The plpgsql `plystra.append_audit` did the same work by rendering every row back
//! to JSON text for the hash and parsing it again: about half of the writer's time in profiles.

use std::cell::OnceCell;
use std::collections::HashMap;

use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient};
use pgrx::{datum::DatumWithOid, pg_sys, IntoDatum, PgBuiltInOids, PgOid};
use plystra_core::audit_chain::{row_hash, AuditRecord};

/// PostgreSQL's timestamps count microseconds from 2000-01-01; the hash counts them from 1970-01-01.
const UNIX_EPOCH_IN_PG_US: i64 = 946_684_800_000_000;

/// The sealers' lock: the body of `plystra.audit_sealer_lock()` (`pg_tests` holds the two texts equal), run by the
/// writer inside its own statement. Called as a SQL function it was planned again on every batch, and its pinned
/// search_path set and reset (10% of the writer's samples for batches of one row in a profile).
macro_rules! sealer_lock {
    () => {
        "EXISTS (SELECT 1 FROM plystra.audit_sealer FOR UPDATE SKIP LOCKED)"
    };
}
#[cfg(any(test, feature = "pg_test"))]
pub(crate) const SEALER_LOCK_EXPR: &str = sealer_lock!();

/// Takes the sealers' lock if it is free and reads the chain heads of the batch's Spaces ($1) when it was taken:
/// one row when it was not (sealing false), else one row a known head (or one row with NULL heads). The lock is
/// evaluated once (a materialised CTE), so a batch never sees it taken and not taken.
const LOCK_AND_HEADS_SQL: &str = concat!(
    "WITH l AS MATERIALIZED (SELECT ",
    sealer_lock!(),
    " AS sealing) \
     SELECT l.sealing, h.space_key, h.chain_position, h.row_hash FROM l \
     LEFT JOIN plystra.audit_chain_heads h ON l.sealing AND h.space_key = ANY ($1::text[])"
);

/// Inserts the batch ($1 to $18, one array a column) and saves the chain heads it advanced ($19 to $21; empty
/// when the batch is not sealed), in one statement. The arrays are unnested in the select lists (a ProjectSet
/// node walks them in step: they have one length) rather than in `ROWS FROM`, whose function scan materialises
/// each array into a tuplestore of its own on every execution (4.7% of the writer's samples for batches of one
/// row in a profile).
const INSERT_ROWS_SQL: &str = "WITH saved_heads AS (\
     INSERT INTO plystra.audit_chain_heads AS h (space_key, chain_position, row_hash) \
     SELECT pg_catalog.unnest($19::text[]), pg_catalog.unnest($20::bigint[]), pg_catalog.unnest($21::text[]) \
     ON CONFLICT (space_key) DO UPDATE SET chain_position = excluded.chain_position, row_hash = excluded.row_hash) \
     INSERT INTO plystra.audit_logs (id, space_id, actor_user_id, actor_member_id, \
     actor_user_member_id, action, resource_type, resource_id, decision, deny_code, trace, request_id, ip_address, \
     user_agent, created_at, chain_position, prev_hash, row_hash) \
     SELECT pg_catalog.unnest($1::text[]), pg_catalog.unnest($2::text[]), \
     pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::text[]), pg_catalog.unnest($5::text[]), \
     pg_catalog.unnest($6::text[]), pg_catalog.unnest($7::text[]), pg_catalog.unnest($8::text[]), \
     pg_catalog.unnest($9::text[]), pg_catalog.unnest($10::text[]), pg_catalog.unnest($11::jsonb[]), \
     pg_catalog.unnest($12::text[]), pg_catalog.unnest($13::text[]), pg_catalog.unnest($14::text[]), \
     pg_catalog.unnest($15::timestamptz[]), pg_catalog.unnest($16::bigint[]), pg_catalog.unnest($17::text[]), \
     pg_catalog.unnest($18::text[])";

/// The writer's statements, planned once per writer process (an INSERT into the partitioned log with its
/// triggers costs more to plan than a small batch costs to insert).
struct Statements {
    lock_and_heads: OwnedPreparedStatement,
    insert_rows: OwnedPreparedStatement,
}

thread_local! {
    static STATEMENTS: OnceCell<Statements> = const { OnceCell::new() };
}

fn prepare(client: &mut SpiClient<'_>) -> Statements {
    let keep = |sql: &str, types: &[PgBuiltInOids]| {
        let types: Vec<PgOid> = types.iter().map(|t| PgOid::BuiltIn(*t)).collect();
        client.prepare_mut(sql, &types).expect("plystra audit writer: a statement must prepare").keep()
    };
    const TEXTS: PgBuiltInOids = PgBuiltInOids::TEXTARRAYOID;
    const JSONBS: PgBuiltInOids = PgBuiltInOids::JSONBARRAYOID;
    const INT8S: PgBuiltInOids = PgBuiltInOids::INT8ARRAYOID;
    const TIMESTAMPTZS: PgBuiltInOids = PgBuiltInOids::TIMESTAMPTZARRAYOID;
    Statements {
        lock_and_heads: keep(LOCK_AND_HEADS_SQL, &[TEXTS]),
        insert_rows: keep(
            INSERT_ROWS_SQL,
            &[
                TEXTS,
                TEXTS,
                TEXTS,
                TEXTS,
                TEXTS,
                TEXTS,
                TEXTS,
                TEXTS,
                TEXTS,
                TEXTS,
                JSONBS,
                TEXTS,
                TEXTS,
                TEXTS,
                TIMESTAMPTZS,
                INT8S,
                TEXTS,
                TEXTS,
                TEXTS,
                INT8S,
                TEXTS,
            ],
        ),
    }
}

/// A jsonb datum already built (palloc'd in the current memory context), as an array element.
#[derive(Clone, Copy)]
struct RawJsonb(pg_sys::Datum);

impl IntoDatum for RawJsonb {
    fn into_datum(self) -> Option<pg_sys::Datum> {
        Some(self.0)
    }
    fn type_oid() -> pg_sys::Oid {
        pg_sys::JSONBOID
    }
}

/// Inserts `records` (`AuditRecord`s, in the order they were queued), sealed when this transaction gets the
/// sealer's lock (otherwise unsealed: `plystra.seal_audit` seals them within a second, and decisions never wait
/// on sealing). Must run inside a transaction; an error aborts it, and the writer with it (its waiters are told
/// their decisions were not recorded).
pub fn append(records: &[Vec<u8>]) {
    let mut rows = Vec::with_capacity(records.len());
    for (at, bytes) in records.iter().enumerate() {
        // Records are written by this library only (the queue is in shared memory), by an encoder that writes only
        // what reads back (plystra_core::audit_chain): this is a defect, not input.
        let Some(row) = AuditRecord::decode(bytes) else {
            error!(
                "plystra audit writer: queued record {at} of {} ({} bytes, first byte {:?}) is not an audit record \
                 of this library's version",
                records.len(),
                bytes.len(),
                bytes.first()
            );
        };
        rows.push(row);
    }
    Spi::connect_mut(|client| {
        STATEMENTS.with(|cell| {
            let st = cell.get_or_init(|| prepare(client));
            let mut keys: Vec<&str> = rows.iter().map(|r| r.space_id.unwrap_or("")).collect();
            keys.sort_unstable();
            keys.dedup();
            let found = client
                .update(&st.lock_and_heads, None, &[keys.clone().into()])
                .expect("plystra audit writer: the sealers' lock and the chain heads");
            // space_key -> (chain position, hash) of each chain's last link, read once per chain per batch.
            let mut heads: HashMap<String, (i64, String)> = HashMap::new();
            let mut sealing = false;
            for head in found {
                sealing = head.get::<bool>(1).ok().flatten().unwrap_or(false);
                if let Some(key) = head.get::<String>(2).ok().flatten() {
                    let pos: i64 = head.get(3).ok().flatten().unwrap_or(0);
                    let hash: String = head.get(4).ok().flatten().unwrap_or_default();
                    heads.insert(key, (pos, hash));
                }
            }
            if sealing {
                for key in keys {
                    heads.entry(key.to_owned()).or_insert((0, String::new()));
                }
            }
            let n = rows.len();
            let mut created_at = Vec::with_capacity(n);
            let mut positions: Vec<Option<i64>> = Vec::with_capacity(n);
            let mut prev_hashes: Vec<Option<String>> = Vec::with_capacity(n);
            let mut hashes: Vec<Option<String>> = Vec::with_capacity(n);
            let mut traces = Vec::with_capacity(n);
            for row in &rows {
                // clock_timestamp(), as the SQL append gave each row.
                let now = unsafe { pg_sys::GetCurrentTimestamp() };
                created_at.push(TimestampWithTimeZone::try_from(now).expect("the clock reads a finite timestamp"));
                let trace = crate::jsonb::varlena_datum(row.trace);
                if sealing {
                    let head = heads.get_mut(row.space_id.unwrap_or("")).expect("every key's head was read");
                    let position = head.0 + 1;
                    // SAFETY: `trace` is a palloc'd copy (MAXALIGNed, so its root container is aligned) of a varlena
                    // that `decode` found framed with its own length, its content written by this library's jsonb
                    // encoder; JsonbToCString returns a palloc'd C string, freed here.
                    let hash = unsafe {
                        let jsonb = trace.cast_mut_ptr::<pg_sys::Jsonb>();
                        let text = pg_sys::JsonbToCString(
                            std::ptr::null_mut(),
                            &raw mut (*jsonb).root,
                            row.trace.len() as std::ffi::c_int,
                        );
                        let hash = row_hash(
                            row,
                            std::ffi::CStr::from_ptr(text).to_bytes(),
                            now + UNIX_EPOCH_IN_PG_US,
                            position,
                            &head.1,
                        );
                        pg_sys::pfree(text.cast());
                        hash
                    };
                    positions.push(Some(position));
                    prev_hashes.push(Some(std::mem::replace(&mut head.1, hash.clone())));
                    head.0 = position;
                    hashes.push(Some(hash));
                } else {
                    positions.push(None);
                    prev_hashes.push(None);
                    hashes.push(None);
                }
                traces.push(RawJsonb(trace));
            }
            let text = |f: for<'r> fn(&'r AuditRecord<'r>) -> Option<&'r str>| -> DatumWithOid<'static> {
                rows.iter().map(f).collect::<Vec<Option<&str>>>().into()
            };
            // The heads this batch advanced (none when it is not sealed).
            let (head_keys, links): (Vec<String>, Vec<(i64, String)>) = heads.into_iter().unzip();
            let (head_positions, head_hashes): (Vec<i64>, Vec<String>) = links.into_iter().unzip();
            let args: [DatumWithOid<'_>; 21] = [
                text(|r| Some(r.id)),
                text(|r| r.space_id),
                text(|r| r.actor_user_id),
                text(|r| r.actor_member_id),
                text(|r| r.actor_user_member_id),
                text(|r| Some(r.action)),
                text(|r| r.resource_type),
                text(|r| r.resource_id),
                text(|r| Some(r.decision)),
                text(|r| r.deny_code),
                traces.into(),
                text(|r| r.request_id),
                text(|r| r.ip_address),
                text(|r| r.user_agent),
                created_at.into(),
                positions.into(),
                prev_hashes.into(),
                hashes.into(),
                head_keys.into(),
                head_positions.into(),
                head_hashes.into(),
            ];
            client.update(&st.insert_rows, None, &args).expect("plystra audit writer: inserting the rows");
        })
    });
}
