//! Prometheus metrics in the text exposition format: requests and latency by route, decisions by outcome and
//! deny code, pool usage. Kept in-process and small. Every name follows Prometheus' conventions: the `plystra_`
//! prefix, base units (`_seconds`), counters ending in `_total`, and labels of bounded cardinality only (method,
//! route template, status, decision, deny code, pool state): never a request, trace, user or other id, which
//! belong to traces and logs. v1.0's two counters are here under the prefix
//! (`plystra_authz_denies_total`, `plystra_audit_logs_written_total`); a test checks every name.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use plystra_core::contract::Decision;
use plystra_core::DenyCode;

const BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct Histogram {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    requests: BTreeMap<(String, String, u16), u64>,
    latency: BTreeMap<(String, String), Histogram>,
    /// By (decision, deny code or ""): the contract's words, so no text is copied per decision.
    decisions: BTreeMap<(&'static str, &'static str), u64>,
    audit_rows: u64,
}

#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

/// Pool usage at scrape time.
#[derive(Default)]
pub struct PoolUsage {
    pub size: usize,
    pub available: usize,
    pub max_size: usize,
    pub waiting: usize,
}

/// Single decisions sent through the serving lanes' pipelines (`pipeline`) since the server started.
pub fn render_pipelined(piped: usize) -> String {
    format!(
        "# HELP plystra_decisions_pipelined_total Single decisions sent over a serving lane's shared connection.\n\
         # TYPE plystra_decisions_pipelined_total counter\nplystra_decisions_pipelined_total {piped}\n"
    )
}

/// Connections closed unread because SERVER_MAX_CONNECTIONS were open (`lanes`), since the process started.
static CONNECTIONS_REFUSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts a connection closed unread at the connection limit.
pub fn connection_refused() {
    CONNECTIONS_REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Request bodies refused because HTTP_BODY_BUFFER_BYTES were being read (`app`), since the process started.
static BODIES_REFUSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Counts a request body refused at the body buffer limit.
pub fn body_refused() {
    BODIES_REFUSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// What the front refused to protect itself: connections past SERVER_MAX_CONNECTIONS, bodies past
/// HTTP_BODY_BUFFER_BYTES.
pub fn render_refusals() -> String {
    use std::sync::atomic::Ordering::Relaxed;
    format!(
        "# HELP plystra_http_connections_refused_total Connections closed unread because SERVER_MAX_CONNECTIONS \
         were open.\n\
         # TYPE plystra_http_connections_refused_total counter\nplystra_http_connections_refused_total {}\n\
         # HELP plystra_http_bodies_refused_total Request bodies answered 503 because HTTP_BODY_BUFFER_BYTES were \
         being read.\n\
         # TYPE plystra_http_bodies_refused_total counter\nplystra_http_bodies_refused_total {}\n",
        CONNECTIONS_REFUSED.load(Relaxed),
        BODIES_REFUSED.load(Relaxed)
    )
}

/// The audit chain's sealing gauges (read from the database at scrape time).
pub fn render_sealing(unsealed: i64, stale: i64) -> String {
    format!(
        "# HELP plystra_audit_unsealed_rows Audit rows not yet sealed into their hash chain.\n\
         # TYPE plystra_audit_unsealed_rows gauge\n\
         plystra_audit_unsealed_rows {unsealed}\n\
         # HELP plystra_audit_unsealed_stale_rows Audit rows unsealed for longer than plystra.audit_unsealed_alarm \
         (sealing is held back or stopped).\n\
         # TYPE plystra_audit_unsealed_stale_rows gauge\n\
         plystra_audit_unsealed_stale_rows {stale}\n"
    )
}

/// The audit writer's queue, from `plystra.audit_writer_stats()` (read from the database at scrape time): whether a
/// writer serves the database, and per lane (`single`: one decision's row; `bulk`: requests of many decisions) the
/// rows waiting for it, their bytes against the lane's ring, and the rows it committed. Alert on the queue's bytes
/// nearing its capacity (audited decisions then wait for room) or on the writer being down. A document of another
/// shape renders what it can (a missing number is left out), never a sample that was not read.
pub fn render_audit_writer(stats: &serde_json::Value) -> String {
    let number = |v: &serde_json::Value| v.as_u64();
    let mut out = String::new();
    let up = stats.get("active").and_then(serde_json::Value::as_bool).unwrap_or(false);
    let _ = write!(
        out,
        "# HELP plystra_audit_writer_up Whether the audit writer serves this database (1) or not (0).\n\
         # TYPE plystra_audit_writer_up gauge\nplystra_audit_writer_up {}\n",
        u8::from(up)
    );
    let totals: [(&str, &str, &str); 3] = [
        ("writer_starts", "plystra_audit_writer_starts_total", "Times an audit writer started since the server did."),
        ("transactions", "plystra_audit_writer_transactions_total", "Batches of queued rows the audit writer took."),
        (
            "rows_refused",
            "plystra_audit_writer_rows_refused_total",
            "Audit rows the database refused (their decisions failed).",
        ),
    ];
    for (key, name, help) in totals {
        if let Some(n) = stats.get(key).and_then(number) {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {n}\n");
        }
    }
    let lanes: [(&str, &str, &str, &str); 4] = [
        (
            "queued_records",
            "plystra_audit_writer_queue_rows",
            "gauge",
            "Audit rows waiting for the audit writer, by lane.",
        ),
        ("queued_bytes", "plystra_audit_writer_queue_bytes", "gauge", "Bytes of the audit rows waiting, by lane."),
        ("capacity_bytes", "plystra_audit_writer_queue_capacity_bytes", "gauge", "The size of each lane's queue."),
        (
            "rows_committed",
            "plystra_audit_writer_rows_committed_total",
            "counter",
            "Audit rows the audit writer committed, by lane.",
        ),
    ];
    for (key, name, kind, help) in lanes {
        let samples: Vec<(&str, u64)> = ["single", "bulk"]
            .into_iter()
            .filter_map(|lane| stats.get("lanes")?.get(lane)?.get(key).and_then(number).map(|n| (lane, n)))
            .collect();
        if samples.is_empty() {
            continue;
        }
        let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n");
        for (lane, n) in samples {
            let _ = writeln!(out, "{name}{{lane=\"{lane}\"}} {n}");
        }
    }
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

impl Metrics {
    pub fn record_request(&self, method: &str, route: &str, status: u16, latency: Duration) {
        let Ok(mut m) = self.inner.lock() else { return };
        *m.requests.entry((method.to_string(), route.to_string(), status)).or_default() += 1;
        let h = m.latency.entry((method.to_string(), route.to_string())).or_default();
        if h.counts.is_empty() {
            h.counts = vec![0; BUCKETS.len()];
        }
        let secs = latency.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    pub fn record_decision(&self, decision: Decision, deny_code: Option<DenyCode>, audited: bool) {
        let Ok(mut m) = self.inner.lock() else { return };
        *m.decisions.entry((decision.as_str(), deny_code.map_or("", DenyCode::as_str))).or_default() += 1;
        if audited {
            m.audit_rows += 1;
        }
    }

    pub fn render(&self, pool: PoolUsage) -> String {
        let Ok(m) = self.inner.lock() else {
            return String::new();
        };
        let mut out = String::new();
        out.push_str("# HELP plystra_http_requests_total HTTP requests by method, route template and status.\n");
        out.push_str("# TYPE plystra_http_requests_total counter\n");
        for ((method, route, status), n) in &m.requests {
            let _ = writeln!(
                out,
                "plystra_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        out.push_str(
            "# HELP plystra_http_request_duration_seconds HTTP request latency by method and route template.\n",
        );
        out.push_str("# TYPE plystra_http_request_duration_seconds histogram\n");
        for ((method, route), h) in &m.latency {
            let labels = format!("method=\"{}\",route=\"{}\"", escape(method), escape(route));
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "plystra_http_request_duration_seconds_bucket{{{labels},le=\"{b}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(out, "plystra_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(out, "plystra_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
            let _ = writeln!(out, "plystra_http_request_duration_seconds_count{{{labels}}} {}", h.count);
        }
        out.push_str("# HELP plystra_authz_decisions_total Authorization decisions by outcome and deny code.\n");
        out.push_str("# TYPE plystra_authz_decisions_total counter\n");
        let mut denies = 0;
        for ((decision, deny_code), n) in &m.decisions {
            if *decision == Decision::Deny.as_str() {
                denies += n;
            }
            let _ = writeln!(
                out,
                "plystra_authz_decisions_total{{decision=\"{}\",deny_code=\"{}\"}} {n}",
                escape(decision),
                escape(deny_code)
            );
        }
        out.push_str("# HELP plystra_authz_denies_total Deny decisions answered by this server.\n");
        out.push_str("# TYPE plystra_authz_denies_total counter\n");
        let _ = writeln!(out, "plystra_authz_denies_total {denies}");
        out.push_str(
            "# HELP plystra_audit_logs_written_total Decision audit rows written for this server's requests.\n",
        );
        out.push_str("# TYPE plystra_audit_logs_written_total counter\n");
        let _ = writeln!(out, "plystra_audit_logs_written_total {}", m.audit_rows);
        out.push_str("# HELP plystra_db_pool_connections Database pool connections by state.\n");
        out.push_str("# TYPE plystra_db_pool_connections gauge\n");
        let _ = writeln!(out, "plystra_db_pool_connections{{state=\"open\"}} {}", pool.size);
        let _ = writeln!(out, "plystra_db_pool_connections{{state=\"idle\"}} {}", pool.available);
        let _ = writeln!(
            out,
            "plystra_db_pool_connections{{state=\"in_use\"}} {}",
            pool.size.saturating_sub(pool.available)
        );
        let _ = writeln!(out, "plystra_db_pool_connections{{state=\"max\"}} {}", pool.max_size);
        out.push_str("# HELP plystra_db_pool_waiting Requests waiting for a pooled database connection.\n");
        out.push_str("# TYPE plystra_db_pool_waiting gauge\n");
        let _ = writeln!(out, "plystra_db_pool_waiting {}", pool.waiting);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_histograms_and_decisions() {
        let m = Metrics::default();
        m.record_request("GET", "/api/v1/health", 200, Duration::from_millis(3));
        m.record_decision(Decision::Deny, Some(DenyCode::ScopeOutOfBounds), true);
        m.record_decision(Decision::Allow, None, false);
        let text = m.render(PoolUsage { size: 2, available: 1, max_size: 20, waiting: 0 });
        assert!(text.contains("plystra_http_requests_total{method=\"GET\",route=\"/api/v1/health\",status=\"200\"} 1"));
        assert!(text.contains(
            "plystra_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/health\",le=\"0.005\"} 1"
        ));
        assert!(text.contains(
            "plystra_http_request_duration_seconds_bucket{method=\"GET\",route=\"/api/v1/health\",le=\"0.001\"} 0"
        ));
        assert!(text.contains("plystra_authz_decisions_total{decision=\"deny\",deny_code=\"SCOPE_OUT_OF_BOUNDS\"} 1"));
        assert!(text.contains("\nplystra_authz_denies_total 1\n"));
        assert!(text.contains("\nplystra_audit_logs_written_total 1\n"));
        assert!(text.contains("plystra_db_pool_connections{state=\"in_use\"} 1"));
    }

    /// Every family the server exports (the sealing gauges included) follows the naming conventions: described
    /// (HELP and TYPE), `plystra_` prefix, counters in `_total`, latencies in `_seconds`, and no id among the
    /// labels (an id as a label makes one series per request or user).
    #[test]
    fn every_metric_name_follows_the_conventions() {
        let m = Metrics::default();
        m.record_request("POST", "/api/v1/authz/check", 200, Duration::from_millis(3));
        m.record_decision(Decision::Deny, Some(DenyCode::ScopeOutOfBounds), true);
        let writer = serde_json::json!({"active": true, "preloaded": true, "writer_starts": 1, "transactions": 9,
            "rows_refused": 0, "lanes": {"single": {"queued_records": 2, "queued_bytes": 4096,
            "capacity_bytes": 4194304, "rows_committed": 7}, "bulk": {"queued_records": 0, "queued_bytes": 0,
            "capacity_bytes": 4194304, "rows_committed": 30}}});
        let text = m.render(PoolUsage { size: 1, available: 1, max_size: 20, waiting: 0 })
            + &render_sealing(0, 0)
            + &render_audit_writer(&writer);
        for family in [
            "plystra_audit_writer_up 1",
            "plystra_audit_writer_queue_rows{lane=\"single\"} 2",
            "plystra_audit_writer_rows_committed_total{lane=\"bulk\"} 30",
        ] {
            assert!(text.contains(family), "{family} missing:\n{text}");
        }
        let mut types: BTreeMap<String, String> = BTreeMap::new();
        let mut helped = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(types.insert(name.to_string(), kind.to_string()).is_none(), "{name} typed twice");
            } else if let Some(rest) = line.strip_prefix("# HELP ") {
                helped.push(rest.split_once(' ').unwrap().0.to_string());
            }
        }
        assert!(types.len() >= 8, "{text}");
        for (name, kind) in &types {
            assert!(name.starts_with("plystra_"), "{name}: no plystra_ prefix");
            assert!(helped.contains(name), "{name}: no HELP");
            match kind.as_str() {
                "counter" => assert!(name.ends_with("_total"), "{name}: a counter must end in _total"),
                "histogram" => assert!(name.ends_with("_seconds"), "{name}: a latency must be in _seconds"),
                "gauge" => assert!(!name.ends_with("_total"), "{name}: a gauge must not end in _total"),
                other => panic!("{name}: unexpected type {other}"),
            }
        }
        for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
            let name = line.split(['{', ' ']).next().unwrap();
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s).filter(|f| types.get(*f).is_some_and(|k| k == "histogram")))
                .unwrap_or(name);
            assert!(types.contains_key(family), "{name}: a sample without TYPE");
            if let Some(labels) = line.split_once('{').map(|(_, l)| l.split_once('}').unwrap().0) {
                for label in labels.split(',').map(|l| l.split_once('=').unwrap().0) {
                    assert!(!label.contains("id"), "{name}: label {label} looks like an id");
                }
            }
        }
    }
}
