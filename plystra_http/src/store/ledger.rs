//! The store of the migration ledger: the installed extension and the migrations it recorded.

use deadpool_postgres::GenericClient;
use tokio_postgres::{Error, Row};

/// The installed `plystra` extension's version (`None`: not installed).
pub async fn installed_version(client: &impl GenericClient) -> Result<Option<String>, Error> {
    Ok(client.query_opt(include_str!("ledger/installed_version.sql"), &[]).await?.map(|r| r.get(0)))
}

/// `plystra.schema_migrations`: version, name, checksum, in version order.
pub async fn applied(client: &impl GenericClient) -> Result<Vec<Row>, Error> {
    client.query(include_str!("ledger/applied.sql"), &[]).await
}
