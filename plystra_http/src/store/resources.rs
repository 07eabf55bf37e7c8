//! The store of resources.

use crate::error::Entity;
use crate::store::crud::View;

pub static VIEW: View = View {
    entity: Entity::Resource,
    table: "resources",
    select: include_str!("resources/select.sql"),
    space_column: Some("t.space_id"),
    soft_delete: true,
    order_column: "t.id",
    default_limit: 50,
};

/// The type of a live resource in a Space (`None`: no such resource there).
pub async fn type_in_space(
    client: &impl deadpool_postgres::GenericClient,
    id: &str,
    space_id: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(crate::db::query_opt_cached(client, include_str!("resources/type_in_space.sql"), &[&id, &space_id])
        .await?
        .map(|r| r.get(0)))
}

/// Whether a live resource of this type and id is in the Space.
pub async fn exists_in_space(
    client: &impl deadpool_postgres::GenericClient,
    id: &str,
    resource_type: &str,
    space_id: &str,
) -> Result<bool, tokio_postgres::Error> {
    let sql = include_str!("resources/exists_in_space.sql");
    Ok(crate::db::query_opt_cached(client, sql, &[&id, &resource_type, &space_id]).await?.is_some())
}

/// The Space of a live resource (`None`: no such resource).
pub async fn space_of_live(
    client: &impl deadpool_postgres::GenericClient,
    resource_type: &str,
    id: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(crate::db::query_opt_cached(client, include_str!("resources/space_of_live.sql"), &[&resource_type, &id])
        .await?
        .map(|r| r.get(0)))
}
