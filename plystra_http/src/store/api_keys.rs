//! The store of api_keys.

use crate::error::Entity;
use crate::store::crud::View;

pub static VIEW: View = View {
    entity: Entity::ApiKey,
    table: "api_keys",
    select: include_str!("api_keys/select.sql"),
    space_column: None,
    soft_delete: true,
    order_column: "t.id",
    default_limit: 100,
};

/// The key's expiry (`None`: it never expires). An error when there is no such key.
pub async fn expiry_of(
    client: &(impl tokio_postgres::GenericClient + Sync),
    key_id: &str,
) -> Result<Option<time::OffsetDateTime>, tokio_postgres::Error> {
    client.query_one(include_str!("api_keys/expiry_of.sql"), &[&key_id]).await?.try_get(0)
}

/// Records the key's use unless it was recorded within the minute: whether it wrote.
pub async fn record_last_use(
    client: &impl deadpool_postgres::GenericClient,
    key_id: &str,
) -> Result<u64, tokio_postgres::Error> {
    crate::db::execute_cached(client, include_str!("api_keys/record_last_use.sql"), &[&key_id]).await
}
