//! The store of the migration ledger: the installed extension and the migrations it recorded.

use tokio_postgres::{Client, Error, Row};

/// The installed `plystra` extension's version (`None`: not installed).
pub async fn installed_version(client: &Client) -> Result<Option<String>, Error> {
    Ok(client.query_opt(include_str!("ledger/installed_version.sql"), &[]).await?.map(|r| r.get(0)))
}

/// `plystra.schema_migrations`: version, name, checksum, in version order.
pub async fn applied(client: &Client) -> Result<Vec<Row>, Error> {
    client.query(include_str!("ledger/applied.sql"), &[]).await
}

/// Installs the extension when it is not (every bundled migration), then updates it along its upgrade path.
pub async fn install_or_update(client: &Client) -> Result<(), Error> {
    client.batch_execute(include_str!("ledger/create_extension.sql")).await?;
    client.batch_execute(include_str!("ledger/update_extension.sql")).await
}
