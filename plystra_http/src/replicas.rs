//! Read replicas with bounded staleness. DATABASE_URL is the primary; PLYSTRA_REPLICA_URLS names hot standbys
//! of it (streaming replicas). The route table says whether a route reads ([`Load::Reads`]), writes
//! ([`Load::Writes`]) or decides ([`Load::Decides`]: a read unless its audit mode writes a row); [`route`] sends a
//! read to a replica that is fresh enough and everything else to the primary.
//!
//! **Lag is measured, never assumed.** Every PLYSTRA_REPLICA_POLL_MS a background task samples the primary's
//! WAL position (`pg_current_wal_lsn()`, at time t) and then each replica's replay position
//! (`pg_last_wal_replay_lsn()`). Every commit acknowledged before t lies at or below the primary's position at
//! t, so a replica that has replayed past that position holds everything the primary had at t: the replica is
//! *fresh as of* the latest sample it has replayed past. A replica answers only while `now - fresh_as_of` is
//! within PLYSTRA_REPLICA_MAX_LAG_MS. Replay timestamps (`pg_last_xact_replay_timestamp()`) are not used: on a
//! primary with no writes they stop moving, and an idle, fully caught-up replica would look ever more stale.
//! A replica that cannot be reached, is not in recovery (promoted, or not a standby at all), or stops being
//! polled ages out by itself. (The write position is sampled, not the insert position: at a page boundary the
//! insert position points past the next page's header, which an idle replica never replays. The price: with
//! `synchronous_commit = off` a commit is acknowledged before its WAL is written, so the bound can be exceeded
//! by up to `wal_writer_delay`.)
//!
//! **Read-your-writes.** Every answer of a write route carries `Plystra-Consistency-Token`: an opaque encoding
//! of the primary's WAL insert position taken after the handler committed (at or past its commit record, even
//! an asynchronous one; at a page boundary a little past it, so that such a token may be answered by the
//! primary until more WAL is written). A
//! request that sends it back is answered by a replica only if that replica was measured to have replayed at
//! least that far; otherwise the primary answers. A malformed token is refused with 400.
//!
//! **Nothing is lost to a replica.** A read answered by a replica with a server error (the replica died or
//! was cut off mid-request) or 401 (a credential created on the primary and not yet replayed) is asked again of
//! the primary, with the same body; a replica that failed is skipped until its next good poll. The writes a
//! read makes go to the primary: an API key's last use (`protection::record_last_use`), and decisions are reads
//! only while no audit row is written (AUDIT_WRITE_MODE manual or disabled_for_dev, and the database role may
//! set the mode); logins, refreshes, lock-out counts and the per-address budget live on write routes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use deadpool_postgres::Pool;

use crate::app::AppState;
use crate::config::{AuditMode, Config};
use crate::db::{self, AuditModeStatus};
use crate::error::ApiError;
use crate::extract::BODY_LIMIT_BYTES;

/// Request and answer header: the commit position a read must see (opaque to clients).
pub const CONSISTENCY_TOKEN_HEADER: &str = "plystra-consistency-token";
/// Answer header naming the database that answered, when PLYSTRA_REPLICA_SERVED_BY_HEADER is on.
pub const SERVED_BY_HEADER: &str = "plystra-served-by";
/// The token's fixed prefix (a version, so that its encoding can change).
const TOKEN_PREFIX: &str = "pct1_";
/// How long a read waits for a replica connection before the primary answers instead.
const REPLICA_CHECKOUT_TIMEOUT: Duration = Duration::from_secs(1);

/// What a route does to the database (declared in the route table, the one place that says it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Writes nothing (its credential's bookkeeping is written to the primary apart): a replica may answer.
    Reads,
    /// Writes: the primary answers, and the answer carries a consistency token.
    Writes,
    /// A decision: a read while decisions write no audit row, otherwise the primary answers.
    Decides,
}

impl Load {
    /// The OpenAPI extension value (`x-plystra-load`).
    pub fn name(self) -> &'static str {
        match self {
            Load::Reads => "read",
            Load::Writes => "write",
            Load::Decides => "decision",
        }
    }
}

/// A commit position (a PostgreSQL LSN) as the opaque token clients carry.
pub fn encode_token(lsn: u64) -> String {
    format!("{TOKEN_PREFIX}{lsn:016x}")
}

/// The LSN a token stands for; `None` when it is not one of ours.
pub fn decode_token(token: &str) -> Option<u64> {
    let hex = token.strip_prefix(TOKEN_PREFIX)?;
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// The request's token: `Ok(None)` without one, 400 when it is malformed (or sent twice).
fn requested_position(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let mut values = headers.get_all(CONSISTENCY_TOKEN_HEADER).iter();
    let Some(first) = values.next() else { return Ok(None) };
    let malformed = || {
        ApiError::validation(
            "Plystra-Consistency-Token",
            "Plystra-Consistency-Token is malformed: send back the value of a Plystra-Consistency-Token answer \
             header unchanged.",
        )
    };
    if values.next().is_some() {
        return Err(malformed());
    }
    first.to_str().ok().map(str::trim).and_then(decode_token).map(Some).ok_or_else(malformed)
}

/// Which database answered a request (for the served-by header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    Primary,
    Replica(usize),
}

/// A read routed to a replica: [`route`] leaves it in the request's extensions, and the request's
/// [`db::Db`] checks the replica's connection out on its first [`db::Db::connection`] (a route that never asks
/// for one costs the replica nothing). Shared by the seam's and the handler's `Db`, so that a replica that
/// failed once serves none of the request's connections, and [`route`] learns where the work ran.
#[derive(Clone)]
pub struct Routed(Arc<RoutedRead>);

struct RoutedRead {
    replicas: Arc<Replicas>,
    replica: usize,
    /// A replica connection was handed out (the request's database work ran there).
    used: AtomicBool,
    /// The checkout failed: the request's connections come from the primary.
    failed: AtomicBool,
}

impl Routed {
    fn new(replicas: Arc<Replicas>, replica: usize) -> Self {
        Routed(Arc::new(RoutedRead { replicas, replica, used: AtomicBool::new(false), failed: AtomicBool::new(false) }))
    }

    /// Whether a replica connection was handed out: the request's database work runs there (its writes must go
    /// to the primary).
    pub fn used(&self) -> bool {
        self.0.used.load(Ordering::Relaxed)
    }

    /// A connection to the replica, or `None` when it could not give one within REPLICA_CHECKOUT_TIMEOUT now or
    /// earlier in the request: it is then skipped until its next good poll, and the primary serves the request.
    pub(crate) async fn connection(&self) -> Option<deadpool_postgres::Object> {
        let r = &*self.0;
        if r.failed.load(Ordering::Relaxed) {
            return None;
        }
        let i = r.replica;
        match tokio::time::timeout(REPLICA_CHECKOUT_TIMEOUT, r.replicas.replicas[i].pool.get()).await {
            Ok(Ok(client)) => {
                r.used.store(true, Ordering::Relaxed);
                Some(client)
            }
            Ok(Err(e)) => {
                r.failed.store(true, Ordering::Relaxed);
                r.replicas.mark_down(i);
                tracing::warn!(replica = i, error = %e, "no connection to a replica; the primary answers");
                None
            }
            Err(_) => {
                r.failed.store(true, Ordering::Relaxed);
                r.replicas.mark_down(i);
                tracing::warn!(replica = i, "no replica connection in time; the primary answers");
                None
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Measured {
    /// Reachable and in recovery at the last poll, and no request failed on it since.
    up: bool,
    /// The replay position seen at the last good poll.
    replay_lsn: u64,
    /// When the primary last had no change this replica lacks (see the module comment).
    fresh_as_of: Option<Instant>,
}

struct Replica {
    pool: Pool,
    measured: Mutex<Measured>,
}

/// The replicas, their measured freshness, and the primary's recent WAL positions.
pub struct Replicas {
    replicas: Vec<Replica>,
    /// (when, the primary's WAL position then), oldest first; kept for twice the lag bound.
    primary_positions: Mutex<VecDeque<(Instant, u64)>>,
    next: AtomicUsize,
    max_lag: Duration,
    /// Decisions are reads only when they write no audit row: AUDIT_WRITE_MODE writes none and the database
    /// role could set that mode on its connections.
    audit_mode: AuditMode,
    audit_status: Arc<AuditModeStatus>,
}

impl Replicas {
    /// The replica pools (connections are made on first use; none is made here).
    pub fn new(config: &Config, audit_status: Arc<AuditModeStatus>) -> Result<Self, String> {
        let replicas = config
            .replica_urls
            .iter()
            .map(|url| {
                db::create_pool_for(config, url, config.database_pool_size, audit_status.clone())
                    .map(|pool| Replica { pool, measured: Mutex::new(Measured::default()) })
                    .map_err(|e| format!("PLYSTRA_REPLICA_URLS: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Replicas {
            replicas,
            primary_positions: Mutex::new(VecDeque::new()),
            next: AtomicUsize::new(0),
            max_lag: config.replica_max_lag,
            audit_mode: config.audit_mode,
            audit_status,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.replicas.is_empty()
    }

    fn decisions_write_nothing(&self) -> bool {
        self.audit_status.decisions_write_nothing(self.audit_mode)
    }

    /// A replica fresh enough to answer now (round robin among them), having replayed at least `position`.
    fn pick(&self, position: Option<u64>, now: Instant) -> Option<usize> {
        let n = self.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n).map(|k| (start + k) % n).find(|&i| {
            let m = *self.replicas[i].measured.lock().unwrap_or_else(|e| e.into_inner());
            m.up && m.fresh_as_of.is_some_and(|t| now.saturating_duration_since(t) <= self.max_lag)
                && position.is_none_or(|p| m.replay_lsn >= p)
        })
    }

    fn mark_down(&self, i: usize) {
        self.replicas[i].measured.lock().unwrap_or_else(|e| e.into_inner()).up = false;
    }

    /// Notes the primary's position at `at` (sampled before the replicas are asked).
    fn primary_at(&self, at: Instant, lsn: u64) {
        let mut positions = self.primary_positions.lock().unwrap_or_else(|e| e.into_inner());
        positions.push_back((at, lsn));
        // Kept for twice the bound (at least one): a replica behind every kept sample is staler than the bound.
        while positions.len() > 1
            && positions.front().is_some_and(|(t, _)| at.saturating_duration_since(*t) > 2 * self.max_lag)
        {
            positions.pop_front();
        }
    }

    /// Records a replica's replay position: it is fresh as of the latest primary sample it has replayed past.
    fn replica_at(&self, i: usize, replay_lsn: u64) {
        let fresh_as_of = {
            let positions = self.primary_positions.lock().unwrap_or_else(|e| e.into_inner());
            positions.iter().rev().find(|(_, lsn)| *lsn <= replay_lsn).map(|(t, _)| *t)
        };
        let mut m = self.replicas[i].measured.lock().unwrap_or_else(|e| e.into_inner());
        *m = Measured { up: true, replay_lsn, fresh_as_of };
    }

    /// One measurement round: the primary's position, then each replica's replay position.
    async fn poll(&self, primary: &Pool, timeout: Duration) {
        let at = Instant::now();
        let sampled = tokio::time::timeout(timeout, async {
            let client = primary.get().await.map_err(|e| e.to_string())?;
            crate::store::replication::primary_position(&client).await.map_err(|e| e.to_string())
        })
        .await;
        match sampled {
            Ok(Ok(lsn)) => self.primary_at(at, lsn as u64),
            // Without the primary's position nothing new is known; the replicas age out until it returns.
            Ok(Err(e)) => tracing::warn!(error = %e, "replica lag: the primary's WAL position could not be read"),
            Err(_) => tracing::warn!("replica lag: the primary's WAL position did not arrive in time"),
        }
        for (i, replica) in self.replicas.iter().enumerate() {
            let asked = tokio::time::timeout(timeout, async {
                let client = replica.pool.get().await.map_err(|e| e.to_string())?;
                crate::store::replication::replica_position(&client).await.map_err(|e| e.to_string())
            })
            .await;
            match asked {
                Ok(Ok((true, Some(lsn)))) => self.replica_at(i, lsn as u64),
                Ok(Ok(_)) => {
                    self.mark_down(i);
                    tracing::warn!(replica = i, "a replica is not in recovery (promoted, or not a standby): skipped");
                }
                Ok(Err(e)) => {
                    self.mark_down(i);
                    tracing::warn!(replica = i, error = %e, "a replica could not be polled: skipped");
                }
                Err(_) => {
                    self.mark_down(i);
                    tracing::warn!(replica = i, "a replica did not answer its poll in time: skipped");
                }
            }
        }
    }
}

/// Polls the replicas every PLYSTRA_REPLICA_POLL_MS for as long as the server's state lives.
pub fn start_polling(replicas: &Arc<Replicas>, primary: Pool, interval: Duration) {
    if replicas.is_empty() {
        return;
    }
    let weak: Weak<Replicas> = Arc::downgrade(replicas);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(replicas) = weak.upgrade() else { break };
            // A poll is bounded by the lag bound: a replica slower than that to answer is too slow to serve.
            replicas.poll(&primary, interval.max(Duration::from_millis(200)).min(replicas.max_lag)).await;
        }
    });
}

/// The primary's WAL insert position: at or past the commit record of everything committed before it.
async fn commit_position(primary: &Pool) -> Option<u64> {
    let client = primary.get().await.ok()?;
    let position = crate::store::replication::commit_position(&client)
        .await
        .map_err(|e| tracing::debug!(error = %e, "no commit position (the database is not a primary?)"))
        .ok()?;
    Some(position as u64)
}

/// A request with the same method, URI, headers, extensions and body (for asking the primary again).
fn copy_of(parts: &axum::http::request::Parts, body: Bytes) -> Request {
    let mut request = Request::new(Body::from(body));
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.version_mut() = parts.version;
    *request.headers_mut() = parts.headers.clone();
    *request.extensions_mut() = parts.extensions.clone();
    request
}

fn served_by(mut response: Response, served: Served, on: bool) -> Response {
    if on {
        let value = match served {
            Served::Primary => HeaderValue::from_static("primary"),
            Served::Replica(i) => {
                HeaderValue::from_str(&format!("replica-{i}")).unwrap_or(HeaderValue::from_static("replica"))
            }
        };
        response.headers_mut().insert(SERVED_BY_HEADER, value);
    }
    response
}

/// The routing layer of every route (outside the protection seam): reads to a fresh replica, everything else
/// (and every read no replica can answer correctly) to the primary; write answers carry the consistency token.
pub async fn route(load: Load, request: Request, next: Next) -> Response {
    let position = match requested_position(request.headers()) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let Some(state) = request.extensions().get::<AppState>().cloned() else {
        return next.run(request).await;
    };
    let header_on = state.config.replica_served_by_header;
    let replicas = &state.replicas;
    let reads = match load {
        Load::Reads => true,
        Load::Decides => replicas.decisions_write_nothing(),
        Load::Writes => false,
    };
    let mut request = request;
    if reads && !replicas.is_empty() {
        if let Some(i) = replicas.pick(position, Instant::now()) {
            let (parts, body) = request.into_parts();
            // The body was read in full before routing (app::read_body_first): this only takes it.
            let bytes = axum::body::to_bytes(body, BODY_LIMIT_BYTES).await.unwrap_or_default();
            // The copy is made before the routing decision goes in: asked again, the primary answers.
            let again = copy_of(&parts, bytes.clone());
            let mut first = Request::from_parts(parts, Body::from(bytes));
            let routed = Routed::new(replicas.clone(), i);
            first.extensions_mut().insert(routed.clone());
            let response = next.clone().run(first).await;
            let used = routed.used();
            let status = response.status();
            if !used || (!status.is_server_error() && status != axum::http::StatusCode::UNAUTHORIZED) {
                return served_by(response, if used { Served::Replica(i) } else { Served::Primary }, header_on);
            }
            if status.is_server_error() {
                replicas.mark_down(i);
                tracing::warn!(
                    replica = i,
                    status = status.as_u16(),
                    "a read failed on a replica; the primary answers it"
                );
            }
            request = again;
        }
    }
    let mut response = next.run(request).await;
    if load == Load::Writes && !response.status().is_server_error() {
        if let Some(lsn) = commit_position(&state.pool).await {
            if let Ok(v) = HeaderValue::from_str(&encode_token(lsn)) {
                response.headers_mut().insert(CONSISTENCY_TOKEN_HEADER, v);
            }
        }
    }
    served_by(response, Served::Primary, header_on)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_nothing_else_reads_as_one() {
        for lsn in [0u64, 1, 0x1_6B37_4D48, u64::MAX] {
            assert_eq!(decode_token(&encode_token(lsn)), Some(lsn));
        }
        for bad in [
            "",
            "pct1_",
            "pct1_0",
            "pct1_00000000000000000",
            "pct1_000000000000000g",
            "pct1_ABCDEF0000000000",
            "pct2_0000000000000001",
            "0/16B374D8",
            " pct1_0000000000000001x",
        ] {
            assert_eq!(decode_token(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_malformed_or_repeated_token_is_refused() {
        let mut headers = HeaderMap::new();
        assert_eq!(requested_position(&headers).unwrap(), None);
        headers.insert(CONSISTENCY_TOKEN_HEADER, HeaderValue::from_static("pct1_0000000000000010"));
        assert_eq!(requested_position(&headers).unwrap(), Some(16));
        headers.append(CONSISTENCY_TOKEN_HEADER, HeaderValue::from_static("pct1_0000000000000010"));
        assert_eq!(requested_position(&headers).unwrap_err().status, axum::http::StatusCode::BAD_REQUEST);
        headers.insert(CONSISTENCY_TOKEN_HEADER, HeaderValue::from_static("0/10"));
        assert_eq!(requested_position(&headers).unwrap_err().status, axum::http::StatusCode::BAD_REQUEST);
    }
}
