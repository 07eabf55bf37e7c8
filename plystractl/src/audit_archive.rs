//! Audit retention for `plystractl audit`: archiving whole monthly partitions of `plystra.audit_logs` to a file,
//! verifying such a file without a database, dropping archived partitions, and making partitions ahead.
//!
//! # The archive file (format `plystra-audit-archive`, version 1)
//!
//! JSON lines, UTF-8, each line ending in `\n`:
//!
//! 1. a header: `{"format":"plystra-audit-archive","version":1,"hash":"sha256(plystra.audit_hash_input)",
//!    "created_at":…,"before":…,"database":…,"partitions":[{"name","from","to","rows"}]}`;
//! 2. one line per audit row, ordered by chain (`space_key`, `''` for the instance-level chain) then chain
//!    position: `{"seq","space_key","chain_position","row_hash","hashed","check"}`. `hashed` is the exact text the
//!    row's hash is taken over (`plystra.audit_hash_input`: the row's every column but `seq` and the chain
//!    columns, its chain position and previous hash), so `row_hash` = SHA-256(`hashed`) verifies offline and the row
//!    can be read back from it; `check` is the SHA-256 of `seq`, `space_key`, `chain_position`, `row_hash` and
//!    `hashed` joined by `\n`, so that an edit of any field names its line;
//! 3. a trailer: `{"end":"plystra-audit-archive","rows":N,"runs":[{"space_key","from_position",
//!    "continues_from_hash","to_position","to_hash","rows"}],"sha256":…}` where `runs` are the contiguous runs of
//!    each chain in the file (`continues_from_hash` is the hash the run's first link continues from: `''` for a
//!    chain's first link, else the previous link's, live or archived before) and `sha256` is the SHA-256 of every
//!    byte before the trailer.
//!
//! The database keeps, per archive, the file's SHA-256 (`plystra.audit_archives`) and the last link of each run
//! (`plystra.audit_archived_links`), from which the live chain continues.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use crate::commands::{CliError, CliResult};

pub const FORMAT: &str = "plystra-audit-archive";
pub const VERSION: i64 = 1;
/// The first element of every hashed row: the chain's hash version (migrations/004_audit_chain.sql).
const CHAIN_TAG: &str = "plystra-audit-chain-v1";
const FETCH_ROWS: i64 = 5000;

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn line_check(seq: i64, space_key: &str, position: i64, row_hash: &str, hashed: &str) -> String {
    sha256_hex(format!("{seq}\n{space_key}\n{position}\n{row_hash}\n{hashed}").as_bytes())
}

/// A contiguous run of one chain in an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub space_key: String,
    pub from_position: i64,
    pub continues_from_hash: String,
    pub to_position: i64,
    pub to_hash: String,
    pub rows: i64,
}

impl Run {
    fn to_json(&self) -> Value {
        json!({"space_key": self.space_key, "from_position": self.from_position,
               "continues_from_hash": self.continues_from_hash, "to_position": self.to_position,
               "to_hash": self.to_hash, "rows": self.rows})
    }
}

/// Builds the runs while rows arrive in (space_key, position) order, and checks each row's links.
#[derive(Default)]
struct Runs {
    runs: Vec<Run>,
}

impl Runs {
    /// Adds one link; the error says what is wrong with it.
    fn push(&mut self, space_key: &str, position: i64, prev_hash: &str, row_hash: &str) -> Result<(), String> {
        if let Some(last) = self.runs.last_mut() {
            if last.space_key == space_key {
                if position <= last.to_position {
                    return Err(format!("chain position {position} is not after {} (out of order)", last.to_position));
                }
                if position == last.to_position + 1 {
                    if prev_hash != last.to_hash {
                        return Err("prev_hash does not match the previous row's hash".into());
                    }
                    last.to_position = position;
                    last.to_hash = row_hash.to_string();
                    last.rows += 1;
                    return Ok(());
                }
            } else if space_key < last.space_key.as_str() {
                return Err(format!("chain {space_key:?} comes after chain {:?} (out of order)", last.space_key));
            }
        }
        if position < 1 {
            return Err(format!("chain position {position} is not positive"));
        }
        if position == 1 && !prev_hash.is_empty() {
            return Err("the chain's first link has a prev_hash".into());
        }
        self.runs.push(Run {
            space_key: space_key.to_string(),
            from_position: position,
            continues_from_hash: prev_hash.to_string(),
            to_position: position,
            to_hash: row_hash.to_string(),
            rows: 1,
        });
        Ok(())
    }
}

/// What a verified archive holds.
#[derive(Debug)]
pub struct ArchiveSummary {
    pub rows: i64,
    pub runs: Vec<Run>,
    pub partitions: Vec<String>,
    pub file_sha256: String,
}

/// Verifies an archive file without a database: its layout, every row's hash and link, the runs and row count the
/// trailer states, and the SHA-256 of its content. The error names the first bad line and its byte offset. Reads
/// the file as a stream (an archive may be larger than memory).
pub fn verify_archive_file(path: &Path) -> Result<ArchiveSummary, CliError> {
    let file = File::open(path).map_err(|e| CliError(format!("cannot read {}: {e}", path.display())))?;
    verify_archive(file).map_err(|e| match e {
        Failure::Io(e) => CliError(format!("cannot read {}: {e}", path.display())),
        Failure::Bad(e) => e,
    })
}

/// The same, over bytes in memory (the tests' way in).
#[cfg(test)]
fn verify_archive_bytes(bytes: &[u8]) -> Result<ArchiveSummary, CliError> {
    verify_archive(std::io::Cursor::new(bytes)).map_err(|e| match e {
        Failure::Io(e) => CliError(format!("cannot read the archive: {e}")),
        Failure::Bad(e) => e,
    })
}

enum Failure {
    Io(std::io::Error),
    Bad(CliError),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Io(e)
    }
}

impl From<CliError> for Failure {
    fn from(e: CliError) -> Self {
        Failure::Bad(e)
    }
}

fn last_line(offset: u64, what: &str) -> CliError {
    CliError(format!("archive's last line (byte {offset}): {what}"))
}

fn at(line: usize, offset: u64, what: String) -> CliError {
    CliError(format!("archive line {line} (byte {offset}): {what}"))
}

fn verify_archive<R: Read + Seek>(mut r: R) -> Result<ArchiveSummary, Failure> {
    let len = r.seek(SeekFrom::End(0))?;
    // The trailer (the last line) is read first: a row line that starts a run the trailer does not state marks
    // where links were taken out, and the error can name that line.
    let mut last = [0u8; 1];
    if len > 0 {
        r.seek(SeekFrom::End(-1))?;
        r.read_exact(&mut last)?;
    }
    if len == 0 || last[0] != b'\n' {
        return Err(last_line(len, "the file does not end with a newline (cut short?)").into());
    }
    let mut trailer_off = 0u64;
    let mut pos = len - 1;
    let mut chunk = vec![0u8; 64 * 1024];
    'find: while pos > 0 {
        let start = pos.saturating_sub(chunk.len() as u64);
        let n = (pos - start) as usize;
        r.seek(SeekFrom::Start(start))?;
        r.read_exact(&mut chunk[..n])?;
        if let Some(i) = chunk[..n].iter().rposition(|b| *b == b'\n') {
            trailer_off = start + i as u64 + 1;
            break 'find;
        }
        pos = start;
    }
    let mut trailer_bytes = vec![0u8; (len - 1 - trailer_off) as usize];
    r.seek(SeekFrom::Start(trailer_off))?;
    r.read_exact(&mut trailer_bytes)?;
    let trailer: Value =
        serde_json::from_slice(&trailer_bytes).map_err(|e| last_line(trailer_off, &format!("not valid JSON: {e}")))?;
    if trailer.get("end").and_then(Value::as_str) != Some(FORMAT) {
        return Err(last_line(trailer_off, "not the archive's trailer (cut short?)").into());
    }
    let stated: Vec<Value> = trailer.get("runs").and_then(Value::as_array).cloned().unwrap_or_default();
    let run_starts: std::collections::HashSet<(String, i64)> = stated
        .iter()
        .filter_map(|r| Some((r.get("space_key")?.as_str()?.to_string(), r.get("from_position")?.as_i64()?)))
        .collect();

    r.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new((&mut r).take(trailer_off));
    let mut content_sha = Sha256::new();
    let mut buf = Vec::new();
    let mut n = 0usize;
    let mut off = 0u64;
    let mut partitions: Vec<(String, i64)> = Vec::new();
    let mut runs = Runs::default();
    let mut rows = 0i64;
    loop {
        buf.clear();
        let read = reader.read_until(b'\n', &mut buf)?;
        if read == 0 {
            break;
        }
        content_sha.update(&buf);
        n += 1;
        let line_off = off;
        off += read as u64;
        let text = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let value: Value = serde_json::from_slice(text).map_err(|e| at(n, line_off, format!("not valid JSON: {e}")))?;
        if n == 1 {
            if value.get("format").and_then(Value::as_str) != Some(FORMAT)
                || value.get("version").and_then(Value::as_i64) != Some(VERSION)
            {
                return Err(at(1, 0, format!("not a {FORMAT} version {VERSION} header")).into());
            }
            partitions = value
                .get("partitions")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|p| {
                            (
                                p.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
                                p.get("rows").and_then(Value::as_i64).unwrap_or(-1),
                            )
                        })
                        .collect()
                })
                .ok_or_else(|| at(1, 0, "the header lists no partitions".into()))?;
            continue;
        }
        check_row(&value, n, line_off, &mut runs, &run_starts)?;
        rows += 1;
    }
    if n == 0 {
        return Err(at(1, 0, "an archive has a header and a trailer at least".into()).into());
    }
    let tn = n + 1;
    if hex::encode(content_sha.finalize()) != trailer.get("sha256").and_then(Value::as_str).unwrap_or_default() {
        return Err(at(
            tn,
            trailer_off,
            "the SHA-256 of the content does not match the trailer's (the file was edited)".into(),
        )
        .into());
    }
    if trailer.get("rows").and_then(Value::as_i64) != Some(rows) {
        return Err(at(tn, trailer_off, format!("the trailer states another row count than the file's {rows}")).into());
    }
    let found: Vec<Value> = runs.runs.iter().map(Run::to_json).collect();
    if stated != found {
        return Err(at(tn, trailer_off, "the trailer states other chain runs than the rows form".into()).into());
    }
    if partitions.iter().map(|p| p.1).sum::<i64>() != rows {
        return Err(at(1, 0, format!("the header's partition row counts do not add up to the file's {rows}")).into());
    }
    // The whole file's SHA-256, as plystra.audit_archives records it.
    r.seek(SeekFrom::Start(0))?;
    let mut whole = Sha256::new();
    std::io::copy(&mut r, &mut whole)?;
    Ok(ArchiveSummary {
        rows,
        runs: runs.runs,
        partitions: partitions.into_iter().map(|p| p.0).collect(),
        file_sha256: hex::encode(whole.finalize()),
    })
}

/// One row line: its fields, its hash, its check, and its link to the line before.
fn check_row(
    row: &Value,
    n: usize,
    off: u64,
    runs: &mut Runs,
    run_starts: &std::collections::HashSet<(String, i64)>,
) -> Result<(), CliError> {
    let field = |k: &str| row.get(k).ok_or_else(|| at(n, off, format!("no field {k}")));
    let seq = field("seq")?.as_i64().ok_or_else(|| at(n, off, "seq is not an integer".into()))?;
    let space_key = field("space_key")?.as_str().ok_or_else(|| at(n, off, "space_key is not text".into()))?;
    let position =
        field("chain_position")?.as_i64().ok_or_else(|| at(n, off, "chain_position is not an integer".into()))?;
    let row_hash = field("row_hash")?.as_str().ok_or_else(|| at(n, off, "row_hash is not text".into()))?;
    let hashed = field("hashed")?.as_str().ok_or_else(|| at(n, off, "hashed is not text".into()))?;
    let check = field("check")?.as_str().ok_or_else(|| at(n, off, "check is not text".into()))?;
    if sha256_hex(hashed.as_bytes()) != row_hash {
        return Err(at(n, off, format!("the row's content does not match its hash (audit row seq {seq})")));
    }
    if line_check(seq, space_key, position, row_hash, hashed) != check {
        return Err(at(n, off, format!("the line was edited: its check does not match (audit row seq {seq})")));
    }
    let content: Vec<Value> =
        serde_json::from_str(hashed).map_err(|e| at(n, off, format!("hashed is not a JSON array: {e}")))?;
    if content.len() != 18 || content[0].as_str() != Some(CHAIN_TAG) {
        return Err(at(n, off, format!("hashed is not a {CHAIN_TAG} row")));
    }
    if content[2].as_str().unwrap_or_default() != space_key || content[16].as_i64() != Some(position) {
        return Err(at(n, off, "space_key or chain_position differ from the hashed row's".into()));
    }
    let prev_hash = content[17].as_str().ok_or_else(|| at(n, off, "the hashed row has no prev_hash".into()))?;
    let before = runs.runs.len();
    runs.push(space_key, position, prev_hash, row_hash).map_err(|e| at(n, off, e))?;
    if runs.runs.len() > before && !run_starts.contains(&(space_key.to_string(), position)) {
        let label = if space_key.is_empty() { "(no space)" } else { space_key };
        return Err(at(n, off, format!("chain {label}: the links before position {position} are missing here")));
    }
    Ok(())
}

/// `plystractl audit verify --archive FILE`.
pub fn verify_archive_command(path: &Path) -> CliResult {
    let s = verify_archive_file(path)?;
    println!(
        "archive ok: {} rows from {} in {} chain runs; file sha256 {}",
        s.rows,
        s.partitions.join(", "),
        s.runs.len(),
        s.file_sha256
    );
    for r in &s.runs {
        let label = if r.space_key.is_empty() { "(no space)" } else { r.space_key.as_str() };
        println!(
            "{label}: links {}..{} ({} rows), continues from {}, last hash {}",
            r.from_position,
            r.to_position,
            r.rows,
            if r.continues_from_hash.is_empty() { "the chain's start" } else { r.continues_from_hash.as_str() },
            r.to_hash
        );
    }
    Ok(())
}

/// The file being written, beside its destination: removed whatever happens (on success the destination is a
/// hard link to it, made only when the file is complete and verified).
struct Partial {
    path: std::path::PathBuf,
}

impl Drop for Partial {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Counts the bytes and the SHA-256 of everything written through it.
struct Hashing<W: Write> {
    inner: W,
    sha: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sha.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn io_err(path: &Path) -> impl Fn(std::io::Error) -> CliError + '_ {
    move |e| CliError(format!("cannot write {}: {e}", path.display()))
}

/// How long an archive waits for the audit log's exclusive lock to detach the partitions (`archive`).
const DETACH_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// `plystractl audit archive --before DATE --to FILE`: archives every monthly partition that ends on or before
/// DATE, whole. Verifies every chain first and changes nothing when one does not verify.
pub async fn archive(client: &mut Client, before: &str, to: &Path) -> CliResult {
    if to.exists() {
        return Err(CliError(format!("{} exists; an archive never overwrites a file", to.display())));
    }
    let tx = client.transaction().await?;
    tx.batch_execute("SET LOCAL TimeZone = 'UTC'").await?;
    let before_ts: String = match tx.query_one("SELECT $1::text::timestamptz::text", &[&before]).await {
        Ok(r) => r.get(0),
        Err(e) => {
            return Err(CliError(format!("--before {before:?} is not a date or timestamp: {}", CliError::from(e))))
        }
    };
    // Sealing waits until the archive commits; no row enters the partitions being archived.
    tx.execute("SELECT 1 FROM plystra.audit_sealer FOR UPDATE", &[]).await?;
    // The log before its partitions, as `plystra.archive_audit_partitions` and every other locker take them (held
    // partitions first, a partition's creation or a TRUNCATE of the log deadlocked with the archive); decisions go
    // on writing under this mode.
    tx.batch_execute("LOCK TABLE ONLY plystra.audit_logs IN SHARE UPDATE EXCLUSIVE MODE").await?;
    let parts = tx
        .query(
            "SELECT partition_name, range_from::text, range_to::text FROM plystra.audit_partitions()
             WHERE NOT is_default AND range_to <= $1::text::timestamptz ORDER BY range_from",
            &[&before],
        )
        .await?;
    if parts.is_empty() {
        println!("no monthly audit partition ends on or before {before_ts}; nothing archived");
        return Ok(());
    }
    let names: Vec<String> = parts.iter().map(|r| r.get(0)).collect();
    let mut header_parts = Vec::new();
    let mut total = 0i64;
    for r in &parts {
        let name: String = r.get(0);
        tx.batch_execute(&format!("LOCK TABLE plystra.\"{name}\" IN SHARE MODE")).await?;
        let counts = tx
            .query_one(
                &format!("SELECT count(*), count(*) FILTER (WHERE row_hash IS NULL) FROM plystra.\"{name}\""),
                &[],
            )
            .await?;
        let (rows, unsealed): (i64, i64) = (counts.get(0), counts.get(1));
        if unsealed > 0 {
            return Err(CliError(format!(
                "refused: partition {name} holds {unsealed} unsealed audit rows (seal them: plystractl audit seal); nothing archived"
            )));
        }
        total += rows;
        header_parts
            .push(json!({"name": name, "from": r.get::<_, String>(1), "to": r.get::<_, String>(2), "rows": rows}));
    }
    // Every chain must verify before anything is written or cut.
    let problems = tx
        .query(
            "SELECT space_key, broken_at_position, broken_audit_id, problem FROM plystra.verify_audit_chain()
             WHERE broken_at_position IS NOT NULL OR problem IS NOT NULL",
            &[],
        )
        .await?;
    if let Some(p) = problems.first() {
        let space: String = p.get(0);
        return Err(CliError(format!(
            "refused: the audit chain does not verify ({}: {} at position {} (audit row {})); nothing archived",
            if space.is_empty() { "(no space)".to_string() } else { space },
            p.get::<_, Option<String>>(3).unwrap_or_default(),
            p.get::<_, Option<i64>>(1).map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            p.get::<_, Option<String>>(2).unwrap_or_else(|| "-".into()),
        )));
    }

    let partial_path = to.with_file_name(format!(
        ".{}.partial",
        to.file_name().and_then(|n| n.to_str()).ok_or_else(|| CliError("--to must name a file".into()))?
    ));
    let file = OpenOptions::new().write(true).create_new(true).open(&partial_path).map_err(io_err(&partial_path))?;
    let _partial = Partial { path: partial_path.clone() };
    let mut out = Hashing { inner: BufWriter::new(file), sha: Sha256::new() };
    let database: String = tx.query_one("SELECT current_database()::text", &[]).await?.get(0);
    let created: String = tx.query_one("SELECT now()::text", &[]).await?.get(0);
    let header = json!({"format": FORMAT, "version": VERSION, "hash": "sha256(plystra.audit_hash_input)",
                        "created_at": created, "before": before_ts, "database": database, "partitions": header_parts});
    writeln!(out, "{header}").map_err(io_err(&partial_path))?;

    let (lo, hi): (String, String) = (parts[0].get(1), parts[parts.len() - 1].get(2));
    tx.execute(
        "DECLARE plystra_archive NO SCROLL CURSOR FOR
         SELECT a.seq, coalesce(a.space_id, ''), a.chain_position, a.row_hash, a.prev_hash,
                plystra.audit_hash_input(a, a.chain_position, a.prev_hash)
         FROM plystra.audit_logs a
         WHERE a.created_at >= $1::text::timestamptz AND a.created_at < $2::text::timestamptz
           AND a.tableoid::regclass::text = ANY (SELECT 'plystra.' || n FROM unnest($3::text[]) n)
         ORDER BY 2, 3",
        &[&lo, &hi, &names],
    )
    .await?;
    let mut runs = Runs::default();
    let mut written = 0i64;
    loop {
        let batch = tx.query(&format!("FETCH {FETCH_ROWS} FROM plystra_archive"), &[]).await?;
        if batch.is_empty() {
            break;
        }
        for r in &batch {
            let (seq, space_key, position, row_hash, prev_hash, hashed): (i64, String, i64, String, String, String) =
                (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
            runs.push(&space_key, position, &prev_hash, &row_hash)
                .map_err(|e| CliError(format!("refused: audit row seq {seq}: {e}; nothing archived")))?;
            let line = json!({"seq": seq, "space_key": space_key, "chain_position": position, "row_hash": row_hash,
                              "hashed": hashed, "check": line_check(seq, &space_key, position, &row_hash, &hashed)});
            writeln!(out, "{line}").map_err(io_err(&partial_path))?;
            written += 1;
        }
    }
    tx.batch_execute("CLOSE plystra_archive").await?;
    if written != total {
        return Err(CliError(format!("refused: read {written} rows, the partitions hold {total}; nothing archived")));
    }
    let content_sha = hex::encode(out.sha.clone().finalize());
    let trailer = json!({"end": FORMAT, "rows": written, "runs": runs.runs.iter().map(Run::to_json).collect::<Vec<_>>(),
                         "sha256": content_sha});
    writeln!(out, "{trailer}").map_err(io_err(&partial_path))?;
    let file_sha = hex::encode(out.sha.clone().finalize());
    let file = out.inner.into_inner().map_err(|e| io_err(&partial_path)(e.into_error()))?;
    file.sync_all().map_err(io_err(&partial_path))?;
    drop(file);
    // What was written is what the rows say, read back from the disk.
    verify_archive_file(&partial_path)
        .map_err(|e| CliError(format!("refused: the archive written does not verify ({e}); nothing archived")))?;

    let file_name = to.to_string_lossy().to_string();
    // Detaching takes the log exclusively, and every write to the log (the audit writer's next batch, with every
    // audited decision behind it) queues behind that request while it waits for whoever holds the log: a session
    // that read it and stays in its transaction (plystra_admin may read the log) would hold them all for as long
    // as it stays. So the archive waits for the log at most DETACH_LOCK_TIMEOUT, then gives up with nothing
    // archived.
    tx.batch_execute(&format!("SET LOCAL lock_timeout = '{}ms'", DETACH_LOCK_TIMEOUT.as_millis())).await?;
    let archive_id: i64 = match tx
        .query_one(
            "SELECT plystra.archive_audit_partitions($1, $2, $3, $4)",
            &[&names, &written, &file_name, &file_sha],
        )
        .await
    {
        Ok(row) => row.get(0),
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
            return Err(CliError(format!(
                "refused: the audit log is in use (another session holds a lock on it: pg_locks names it), and \
                 detaching the partitions waited {} s for it; nothing archived, try again",
                DETACH_LOCK_TIMEOUT.as_secs()
            )))
        }
        Err(e) => return Err(e.into()),
    };
    if std::fs::hard_link(&partial_path, to).is_err() {
        return Err(CliError(format!("cannot create {}; nothing archived", to.display())));
    }
    if let Some(dir) = to.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
    }
    if let Err(e) = tx.commit().await {
        let _ = std::fs::remove_file(to);
        return Err(CliError(format!("the archive did not commit ({}); nothing archived", CliError::from(e))));
    }
    println!(
        "archived {written} audit rows of {} to {} (sha256 {file_sha}); archive {archive_id}; detached {}",
        names.join(", "),
        to.display(),
        names.join(", ")
    );
    println!("verify the file: plystractl audit verify --archive {}", to.display());
    for n in &names {
        println!("drop when the file is stored safely: plystractl audit drop --partition {n}");
    }
    Ok(())
}

/// `plystractl audit drop --partition NAME`: drops the table of an archived (detached) partition.
pub async fn drop_partition(client: &Client, name: &str) -> CliResult {
    client.execute("SELECT plystra.drop_archived_audit_partition($1)", &[&name]).await?;
    println!("dropped archived audit partition {name}");
    Ok(())
}

/// How long `audit partitions` waits for the log's exclusive lock. The same reason as `DETACH_LOCK_TIMEOUT`: while
/// it waits, every write to the log (the audit writer's batches, with every audited decision behind them) queues
/// behind its request.
const PARTITIONS_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The months (YYYY-MM, UTC) from this one to `$1` months ahead that lie in no monthly partition.
pub(crate) const MONTHS_WITHOUT_PARTITION_SQL: &str = "SELECT to_char(m.start AT TIME ZONE 'UTC', 'YYYY-MM')
     FROM (SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i)) AT TIME ZONE 'UTC' AS start
           FROM generate_series(0, $1) AS i) m
     WHERE NOT EXISTS (SELECT 1 FROM plystra.audit_partitions() p
                       WHERE NOT p.is_default AND p.range_from <= m.start AND p.range_to > m.start)
     ORDER BY m.start";

/// `plystractl audit partitions [--months-ahead N]`: makes the coming months' partitions, then lists them. When a
/// month has none, the log is locked first, once, waiting at most `PARTITIONS_LOCK_TIMEOUT` (each month's maker would
/// otherwise wait that long in turn); a month still without a partition is named and the command fails after the
/// listing: that month's rows go to the DEFAULT partition until it is made.
pub async fn partitions(client: &mut Client, months_ahead: i32) -> CliResult {
    if !(0..=120).contains(&months_ahead) {
        return Err(CliError("--months-ahead must be between 0 and 120".into()));
    }
    let months_without = |rows: Vec<tokio_postgres::Row>| rows.iter().map(|r| r.get(0)).collect::<Vec<String>>();
    let mut missing = months_without(client.query(MONTHS_WITHOUT_PARTITION_SQL, &[&months_ahead]).await?);
    let mut in_use = false;
    if !missing.is_empty() {
        let tx = client.transaction().await?;
        tx.batch_execute(&format!("SET LOCAL lock_timeout = '{}ms'", PARTITIONS_LOCK_TIMEOUT.as_millis())).await?;
        match tx.batch_execute("LOCK TABLE ONLY plystra.audit_logs IN ACCESS EXCLUSIVE MODE").await {
            Ok(()) => {
                for r in tx.query("SELECT * FROM plystra.ensure_audit_partitions($1)", &[&months_ahead]).await? {
                    println!("created {}", r.get::<_, String>(0));
                }
                tx.commit().await?;
            }
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                in_use = true;
                tx.rollback().await?;
            }
            Err(e) => return Err(e.into()),
        }
        missing = months_without(client.query(MONTHS_WITHOUT_PARTITION_SQL, &[&months_ahead]).await?);
    }
    for r in client
        .query(
            "SELECT partition_name, coalesce(to_char(range_from AT TIME ZONE 'UTC', 'YYYY-MM-DD'), ''),
                    coalesce(to_char(range_to AT TIME ZONE 'UTC', 'YYYY-MM-DD'), ''), is_default
             FROM plystra.audit_partitions()",
            &[],
        )
        .await?
    {
        let (name, from, to, default): (String, String, String, bool) = (r.get(0), r.get(1), r.get(2), r.get(3));
        if default {
            println!("attached {name} DEFAULT");
        } else {
            println!("attached {name} {from} .. {to}");
        }
    }
    for r in client
        .query(
            "SELECT p.partition_name, p.archive_id, a.file_name, p.row_count, p.dropped_at IS NOT NULL
             FROM plystra.audit_archive_partitions p JOIN plystra.audit_archives a ON a.id = p.archive_id
             ORDER BY p.range_from",
            &[],
        )
        .await?
    {
        let (name, id, file, rows, dropped): (String, i64, String, i64, bool) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        println!("{} {name} ({rows} rows, archive {id}: {file})", if dropped { "dropped" } else { "detached" });
    }
    if !missing.is_empty() {
        return Err(CliError(format!(
            "not made: the partition of {} ({}); the month's rows go to the DEFAULT partition until it is made, \
             try again",
            missing.join(", "),
            if in_use {
                format!(
                    "the audit log is in use: another session held a lock on it for {} s, pg_locks names it",
                    PARTITIONS_LOCK_TIMEOUT.as_secs()
                )
            } else {
                "the server log's WARNING says why".to_string()
            }
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small archive as `archive` writes it: two chains, one of them in two runs.
    fn sample() -> Vec<u8> {
        let mut out = Vec::new();
        let header =
            json!({"format": FORMAT, "version": VERSION, "partitions": [{"name": "audit_logs_2026_01", "rows": 4}]});
        out.extend_from_slice(format!("{header}\n").as_bytes());
        let mut runs = Runs::default();
        let mut prev: std::collections::HashMap<&str, String> = Default::default();
        for (seq, space, pos) in [(1i64, "", 1i64), (2, "", 2), (5, "space_a", 4), (6, "space_a", 5)] {
            let prev_hash =
                prev.get(space).cloned().unwrap_or_else(|| if pos == 1 { String::new() } else { "ab".repeat(32) });
            let space_json = if space.is_empty() { Value::Null } else { json!(space) };
            let hashed = json!([CHAIN_TAG, format!("audit_{seq}"), space_json, null, null, null, "invoice.read", null, null,
                                "allow", null, {"n": seq}, null, null, null, 1_700_000_000_000_000i64 + seq, pos, prev_hash])
            .to_string();
            let row_hash = sha256_hex(hashed.as_bytes());
            runs.push(space, pos, &prev_hash, &row_hash).unwrap();
            let line = json!({"seq": seq, "space_key": space, "chain_position": pos, "row_hash": row_hash, "hashed": hashed,
                              "check": line_check(seq, space, pos, &row_hash, &hashed)});
            out.extend_from_slice(format!("{line}\n").as_bytes());
            prev.insert(space, row_hash);
        }
        let trailer = json!({"end": FORMAT, "rows": 4, "runs": runs.runs.iter().map(Run::to_json).collect::<Vec<_>>(),
                             "sha256": sha256_hex(&out)});
        out.extend_from_slice(format!("{trailer}\n").as_bytes());
        out
    }

    #[test]
    fn an_intact_archive_verifies() {
        let s = verify_archive_bytes(&sample()).expect("verifies");
        assert_eq!((s.rows, s.runs.len()), (4, 2));
        assert_eq!(s.runs[1].continues_from_hash, "ab".repeat(32));
    }

    #[test]
    fn every_single_changed_byte_fails() {
        let good = sample();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x01;
            assert!(verify_archive_bytes(&bad).is_err(), "a change at byte {i} went unnoticed");
        }
    }

    #[test]
    fn a_changed_row_is_named_by_its_line() {
        let good = String::from_utf8(sample()).unwrap();
        let bad = good.replacen("invoice.read", "invoice.reaD", 3);
        let err = verify_archive_bytes(bad.as_bytes()).unwrap_err().0;
        assert!(err.starts_with("archive line 2 (byte "), "{err}");
        // A row taken out of a run: named at the line where the chain jumps.
        let lines: Vec<&str> = good.lines().collect();
        let cut = [lines[0], lines[1], lines[2], lines[4], lines[5]].join("\n") + "\n";
        let err = verify_archive_bytes(cut.as_bytes()).unwrap_err().0;
        assert!(err.starts_with("archive line 4 (byte ") && err.contains("missing"), "{err}");
    }
}
