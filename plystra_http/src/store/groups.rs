//! The store of groups.

use crate::error::Entity;
use crate::store::crud::View;

pub static VIEW: View = View {
    entity: Entity::Group,
    table: "groups",
    select: include_str!("groups/select.sql"),
    space_column: Some("t.space_id"),
    soft_delete: true,
    order_column: "t.path",
    default_limit: 200,
};

/// The Space of a live (not soft-deleted) Group.
pub async fn space_of_live(
    client: &(impl tokio_postgres::GenericClient + Sync),
    group_id: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(client.query_opt(include_str!("groups/space_of_live.sql"), &[&group_id]).await?.map(|r| r.get(0)))
}
