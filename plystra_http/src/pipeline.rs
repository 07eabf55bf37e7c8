//! Decision pipelining: while decisions write no audit row, a serving lane (`lanes`) sends its single
//! decisions (`POST /api/v1/authz/check`, `/explain`, AuthZEN's `/access/v1/evaluation`) over one shared pooled
//! connection, up to DATABASE_PIPELINE_DEPTH at once, instead of one pooled connection each. tokio-postgres
//! pipelines the statements of concurrent callers of one client: they go out together, PostgreSQL's backend
//! runs them one after another without sleeping between them, and the answers come back in order, each to its
//! caller.
//!
//! Why: with a connection each, every decision wakes a backend of its own and that backend sleeps again after
//! it; on a small machine at 16 connections those wake-ups were a large part of the backends' CPU (measured in
//! `bench/results/ab-pipeline.md`).
//!
//! When it does not apply, and why:
//! - a decision that may write an audit row (AUDIT_WRITE_MODE always or deny_only, or a database role that may
//!   not set the mode: `AuditModeStatus`) waits for the audit writer's commit inside its statement; pipelined,
//!   each would wait behind the one before instead of sharing the writer's commit with it;
//! - batches, lookups and every other route keep a pooled connection each (a long statement at the head of a
//!   pipeline delays the decisions behind it);
//! - when DATABASE_PIPELINE_DEPTH decisions are already in the pipeline, when the pipeline has answered nothing for
//!   [`STALLED`] while decisions are in it, or when the lane's pool has no connection to give it, the decision
//!   takes a pooled connection as before: one slow statement holds up at most the decisions that joined before
//!   the pipeline was seen stalled, never more than the depth;
//! - a request routed to a replica, or one the protection seam handed a connection to, uses that connection.
//!
//! A lane's pipeline holds one of the lane's pooled connections from its first decision on (the pool counts it
//! as in use), so DATABASE_MAX_OPEN_CONNS still bounds the server's connections.
//!
//! Nothing a decision reads is kept: each statement runs in its own transaction with its own snapshot, exactly
//! as on a connection of its own (a revoked key is refused on the next request). A shared connection that
//! closes (its backend ended) is replaced on the next decision; one past DATABASE_CONN_MAX_LIFETIME is replaced
//! too, and goes back to the pool (which closes it) when its last decision ends.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool};

use crate::config::{AuditMode, Config};
use crate::db::AuditModeStatus;

/// One serving lane's pipeline.
pub struct Pipe {
    depth: usize,
    audit_mode: AuditMode,
    audit_status: Arc<AuditModeStatus>,
    max_lifetime: Duration,
    shared: Mutex<Option<Arc<Object>>>,
    flow: Arc<Flow>,
    /// Decisions sent through pipelines since the server started (every lane's; for `/metrics` and tests).
    piped: Arc<AtomicUsize>,
}

/// How long a pipeline may go without answering a decision before new decisions stop joining it: a statement
/// that holds the head (a lock wait, an actor with thousands of grants) delays only the decisions already behind
/// it, never the ones that come after.
const STALLED: Duration = Duration::from_millis(5);

/// What is in a lane's pipeline, and when it last moved.
struct Flow {
    in_flight: AtomicUsize,
    /// Microseconds after `epoch` of the last answer, or of a decision joining the empty pipeline.
    moved: AtomicU64,
    epoch: Instant,
}

impl Flow {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn stalled(&self) -> bool {
        self.now().saturating_sub(self.moved.load(Ordering::Relaxed)) > STALLED.as_micros() as u64
    }
}

/// A decision's place in a lane's pipeline (given back, as an answer, when dropped).
struct Place(Arc<Flow>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.moved.store(self.0.now(), Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A decision's place in a lane's pipeline and the shared connection, both given back when dropped.
pub struct Piped {
    client: Arc<Object>,
    _place: Place,
}

impl std::ops::Deref for Piped {
    type Target = Object;

    fn deref(&self) -> &Object {
        &self.client
    }
}

impl Pipe {
    /// A lane's pipeline; `piped` counts the decisions of every lane.
    pub fn new(config: &Config, audit_status: Arc<AuditModeStatus>, piped: Arc<AtomicUsize>) -> Pipe {
        Pipe {
            depth: config.database_pipeline_depth,
            audit_mode: config.audit_mode,
            audit_status,
            max_lifetime: config.database_conn_max_lifetime,
            shared: Mutex::new(None),
            flow: Arc::new(Flow { in_flight: AtomicUsize::new(0), moved: AtomicU64::new(0), epoch: Instant::now() }),
            piped,
        }
    }

    /// Decisions sent through pipelines since the server started (every lane's).
    pub fn piped(&self) -> usize {
        self.piped.load(Ordering::Relaxed)
    }

    fn usable(&self, client: &Object) -> bool {
        !client.is_closed() && Object::metrics(client).age() <= self.max_lifetime
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, Option<Arc<Object>>> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A place for one decision in this lane's pipeline, or `None` when the decision should take a pooled
    /// connection (see the module comment). `pool` is the lane's own.
    pub async fn join(&self, pool: &Pool) -> Option<Piped> {
        if self.depth == 0 || !self.audit_status.decisions_write_nothing(self.audit_mode) {
            return None;
        }
        let ahead = self.flow.in_flight.fetch_add(1, Ordering::Relaxed);
        if ahead >= self.depth || (ahead > 0 && self.flow.stalled()) {
            self.flow.in_flight.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        if ahead == 0 {
            self.flow.moved.store(self.flow.now(), Ordering::Relaxed);
        }
        let place = Place(self.flow.clone());
        let current = self.shared().clone().filter(|c| self.usable(c));
        let client = match current {
            Some(client) => client,
            None => {
                // Zero wait: when the lane's pool has nothing free, this decision takes the usual path (which
                // waits, borrows from another lane, or answers 503).
                let now = deadpool_postgres::Timeouts { wait: Some(Duration::ZERO), ..pool.timeouts() };
                let fresh = Arc::new(pool.timeout_get(&now).await.ok()?);
                let mut shared = self.shared();
                match shared.as_ref().filter(|c| self.usable(c)) {
                    // Another decision replaced it meanwhile: the one taken here goes back to the pool.
                    Some(client) => client.clone(),
                    None => {
                        *shared = Some(fresh.clone());
                        fresh
                    }
                }
            }
        };
        self.piped.fetch_add(1, Ordering::Relaxed);
        Some(Piped { client, _place: place })
    }
}
