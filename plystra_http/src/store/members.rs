//! The store of members.

use crate::error::Entity;
use crate::store::crud::View;

pub static VIEW: View = View {
    entity: Entity::Member,
    table: "members",
    select: include_str!("members/select.sql"),
    space_column: Some("t.space_id"),
    soft_delete: true,
    order_column: "t.id",
    default_limit: 50,
};

/// The Member's id and display name (soft-deleted or not).
pub async fn display_name_of(
    client: &(impl tokio_postgres::GenericClient + Sync),
    id: &str,
) -> Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
    client.query_opt(include_str!("members/display_name_of.sql"), &[&id]).await
}
