//! The store of role_permissions.

use crate::error::Entity;
use crate::store::crud::View;

pub static VIEW: View = View {
    entity: Entity::RolePermission,
    table: "role_permissions",
    select: include_str!("role_permissions/select.sql"),
    space_column: Some("r.space_id"),
    soft_delete: true,
    order_column: "t.id",
    default_limit: 50,
};

/// Soft-deletes a live RolePermission (in its Role's Space, when given): how many rows it changed.
pub async fn soft_delete(
    client: &(impl tokio_postgres::GenericClient + Sync),
    id: &str,
    space_id: Option<&str>,
) -> Result<u64, tokio_postgres::Error> {
    client.execute(include_str!("role_permissions/soft_delete.sql"), &[&id, &space_id]).await
}
