//! The store of the migration ledger: the installed extension and the migrations it recorded.

use tokio_postgres::{Client, Error};

use crate::ledger::AppliedMigration;

/// The installed `plystra` extension's version (`None`: not installed).
pub async fn installed_version(client: &Client) -> Result<Option<String>, Error> {
    Ok(client.query_opt(include_str!("ledger/installed_version.sql"), &[]).await?.map(|r| r.get(0)))
}

/// `plystra.schema_migrations`, in version order.
pub async fn applied(client: &Client) -> Result<Vec<AppliedMigration>, Error> {
    let rows = client.query(include_str!("ledger/applied.sql"), &[]).await?;
    Ok(rows.iter().map(|r| AppliedMigration { version: r.get(0), name: r.get(1), checksum: r.get(2) }).collect())
}

/// Installs the extension when it is not (every bundled migration), then updates it along its upgrade path.
pub async fn install_or_update(client: &Client) -> Result<(), Error> {
    client.batch_execute(include_str!("ledger/create_extension.sql")).await?;
    client.batch_execute(include_str!("ledger/update_extension.sql")).await
}
