//! The store of roles.

use crate::error::Entity;
use crate::store::crud::View;

pub static VIEW: View = View {
    entity: Entity::Role,
    table: "roles",
    select: include_str!("roles/select.sql"),
    space_column: Some("t.space_id"),
    soft_delete: true,
    order_column: "t.id",
    default_limit: 50,
};

/// The Space of a Role (`None`: no such Role, or an instance Role).
pub async fn space_of(
    client: &(impl tokio_postgres::GenericClient + Sync),
    role_id: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(client.query_opt(include_str!("roles/space_of.sql"), &[&role_id]).await?.and_then(|r| r.get(0)))
}
