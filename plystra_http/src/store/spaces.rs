//! The store of spaces.

use crate::error::Entity;
use crate::store::crud::View;

pub static VIEW: View = View {
    entity: Entity::Space,
    table: "spaces",
    select: include_str!("spaces/select.sql"),
    space_column: None,
    soft_delete: true,
    order_column: "t.id",
    default_limit: 50,
};

/// One row if the Space exists and is not soft-deleted (`$1`: its id).
pub const LIVE: &str = include_str!("spaces/live.sql");

/// The Space's id and name (soft-deleted or not).
pub async fn name_of(
    client: &(impl tokio_postgres::GenericClient + Sync),
    id: &str,
) -> Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
    client.query_opt(include_str!("spaces/name_of.sql"), &[&id]).await
}
