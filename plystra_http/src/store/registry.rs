//! The store of registry.

use crate::error::Entity;
use crate::store::crud::View;

pub static TYPES: View = View {
    entity: Entity::ResourceType,
    table: "resource_types",
    select: include_str!("registry/types_select.sql"),
    space_column: None,
    soft_delete: false,
    order_column: "t.key",
    default_limit: 50,
};

pub static ACTIONS: View = View {
    entity: Entity::ResourceAction,
    table: "resource_actions",
    select: include_str!("registry/actions_select.sql"),
    space_column: None,
    soft_delete: false,
    order_column: "t.key",
    default_limit: 50,
};

pub static MAPPINGS: View = View {
    entity: Entity::ResourceMapping,
    table: "resource_mappings",
    select: include_str!("registry/mappings_select.sql"),
    space_column: None,
    soft_delete: false,
    order_column: "t.id",
    default_limit: 50,
};

/// The action keys of a resource type after `after`, in key order.
pub async fn actions_of_type(
    client: &impl deadpool_postgres::GenericClient,
    resource_type: &str,
    after: &Option<String>,
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows =
        crate::db::query_cached(client, include_str!("registry/actions_of_type.sql"), &[&resource_type, after]).await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The id of the resource type with this key.
pub async fn type_id_of(
    client: &(impl tokio_postgres::GenericClient + Sync),
    key: &str,
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(client.query_opt(include_str!("registry/type_id_of.sql"), &[&key]).await?.map(|r| r.get(0)))
}
