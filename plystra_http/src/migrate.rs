//! Applying the migration ledger to a database: what `plystractl migrate up` runs, and what the server runs
//! before serving when PLYSTRA_SCHEMA_AUTO_APPLY is on (development only). The expected ledger is
//! [`crate::ledger`]'s, embedded at build time; the database's is `plystra.schema_migrations`.

use tokio_postgres::{Client, NoTls};

use crate::ledger::{AppliedMigration, ExpectedMigration, EXPECTED_MIGRATIONS};
use crate::store::ledger as store;

/// A command run against the database outside a request (applying migrations here, plystractl's commands)
/// failed: the message for the operator.
#[derive(Debug)]
pub struct CommandError(pub String);

impl std::fmt::Display for CommandError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<tokio_postgres::Error> for CommandError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => CommandError(format!("database error: {} ({})", db.message(), db.code().code())),
            None => CommandError(format!("database error: {e}")),
        }
    }
}

pub type CommandResult<T = ()> = Result<T, CommandError>;

/// One connection, its driver on the current runtime.
pub async fn connect(url: &str) -> CommandResult<Client> {
    let (client, conn) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|e| CommandError(format!("cannot connect to the database: {e}")))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

/// The applied ledger; empty when the extension is not installed.
pub async fn applied(client: &Client) -> CommandResult<Vec<AppliedMigration>> {
    if store::installed_version(client).await?.is_none() {
        return Ok(Vec::new());
    }
    Ok(store::applied(client).await?)
}

/// Each embedded migration's state: `applied`, `pending` or `checksum-mismatch`; then applied versions this
/// binary does not know, as `unknown`.
pub fn statuses(applied: &[AppliedMigration], expected: &[ExpectedMigration]) -> Vec<(String, String, &'static str)> {
    let mut out = Vec::new();
    for e in expected {
        let state = match applied.iter().find(|a| a.version == e.version) {
            None => "pending",
            Some(a) if a.checksum != e.checksum => "checksum-mismatch",
            Some(_) => "applied",
        };
        out.push((e.version.to_string(), e.name.to_string(), state));
    }
    for a in applied.iter().filter(|a| !expected.iter().any(|e| e.version == a.version)) {
        out.push((a.version.clone(), a.name.clone(), "unknown"));
    }
    out
}

/// Fails on a pending migration, a changed applied file, or an applied version this binary does not know.
pub fn verify(applied: &[AppliedMigration]) -> CommandResult {
    let problems: Vec<String> = statuses(applied, EXPECTED_MIGRATIONS)
        .into_iter()
        .filter(|(_, _, s)| *s != "applied")
        .map(|(v, n, s)| match s {
            "pending" => format!("migration {v} {n} is pending"),
            "checksum-mismatch" => format!("migration {v} {n} was changed after it was applied (checksum mismatch)"),
            _ => format!("migration {v} {n} is applied but unknown to this build"),
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(CommandError(problems.join("\n")))
    }
}

/// Installs the extension (every bundled migration), or updates it along the installed version's upgrade path,
/// and returns the migrations this call applied. A changed applied file stops it before anything runs.
pub async fn up(client: &Client) -> CommandResult<Vec<AppliedMigration>> {
    let before = applied(client).await?;
    if let Some((v, n, _)) =
        statuses(&before, EXPECTED_MIGRATIONS).into_iter().find(|(_, _, s)| *s == "checksum-mismatch")
    {
        return Err(CommandError(format!("migration {v} {n} was changed after it was applied (checksum mismatch)")));
    }
    install_or_update_within_lock_timeout(client).await?;
    let after = applied(client).await?;
    if let Err(e) = verify(&after) {
        return Err(CommandError(format!(
            "{e}\nthe installed plystra extension does not bundle every migration of this build: install the \
             extension built from the same release"
        )));
    }
    Ok(after.into_iter().filter(|a| !before.iter().any(|b| b.version == a.version)).collect())
}

/// How long the update waits for each table lock it needs, and how many times it tries.
const UPDATE_LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
const UPDATE_TRIES: u32 = 3;
const UPDATE_PAUSE: std::time::Duration = std::time::Duration::from_secs(2);

/// The extension's install or update, each lock waited for at most `UPDATE_LOCK_TIMEOUT`. An update changes tables
/// that every decision reads, and while its request for a table's exclusive lock waits (for a transaction left open
/// after a decision, a long report), every decision that reads the table queues behind it: the whole service stops
/// for as long as the other transaction stays. So the update gives up (the transaction rolls back whole: nothing
/// changes) and tries again, `UPDATE_TRIES` times, then fails naming the cause.
async fn install_or_update_within_lock_timeout(client: &Client) -> CommandResult {
    client.batch_execute(&format!("SET lock_timeout = '{}ms'", UPDATE_LOCK_TIMEOUT.as_millis())).await?;
    let mut tries = 0;
    let result = loop {
        tries += 1;
        match store::install_or_update(client).await {
            Err(e)
                if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) && tries < UPDATE_TRIES =>
            {
                tokio::time::sleep(UPDATE_PAUSE).await;
            }
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) => {
                break Err(CommandError(format!(
                    "the update waited {} s for a table that another session holds, {tries} times ({}); nothing \
                     changed. Every decision would have waited behind it: end the transaction that holds the table \
                     (pg_stat_activity shows it, often 'idle in transaction') and try again",
                    UPDATE_LOCK_TIMEOUT.as_secs(),
                    e.as_db_error().map(|d| d.message()).unwrap_or("lock timeout")
                )))
            }
            other => break other.map_err(CommandError::from),
        }
    };
    client.batch_execute("RESET lock_timeout").await?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_name_each_migration() {
        let expected = &[
            ExpectedMigration { version: "001", name: "a", checksum: "aa" },
            ExpectedMigration { version: "002", name: "b", checksum: "bb" },
            ExpectedMigration { version: "003", name: "c", checksum: "cc" },
        ];
        let applied = vec![
            AppliedMigration { version: "001".into(), name: "a".into(), checksum: "aa".into() },
            AppliedMigration { version: "002".into(), name: "b".into(), checksum: "zz".into() },
            AppliedMigration { version: "009".into(), name: "z".into(), checksum: "99".into() },
        ];
        let st = statuses(&applied, expected);
        let states: Vec<&str> = st.iter().map(|s| s.2).collect();
        assert_eq!(states, ["applied", "checksum-mismatch", "pending", "unknown"]);
    }
}
