//! The store of user_members.

use crate::error::Entity;
use crate::store::crud::View;

pub static VIEW: View = View {
    entity: Entity::UserMember,
    table: "user_members",
    select: include_str!("user_members/select.sql"),
    space_column: Some("t.space_id"),
    soft_delete: true,
    order_column: "t.id",
    default_limit: 50,
};

/// The bindings `user_id` may act through (`plystra.usable_bindings`), with their user's e-mail, Member's
/// name and Space's name, in v1.0's order.
pub async fn usable_of_user(
    client: &(impl tokio_postgres::GenericClient + Sync),
    user_id: &str,
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    client.query(include_str!("user_members/usable_of_user.sql"), &[&user_id]).await
}

/// Of the bindings `ids`, the id of the primary one, else of the oldest.
pub async fn default_of(
    client: &(impl tokio_postgres::GenericClient + Sync),
    ids: &[&str],
) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(client.query_opt(include_str!("user_members/default_of.sql"), &[&ids]).await?.map(|r| r.get(0)))
}

/// The user and Member of a live binding in a Space (`None`: no such binding there).
pub async fn in_space(
    client: &impl deadpool_postgres::GenericClient,
    id: &str,
    space_id: &str,
) -> Result<Option<(String, String)>, tokio_postgres::Error> {
    Ok(crate::db::query_opt_cached(client, include_str!("user_members/in_space.sql"), &[&id, &space_id])
        .await?
        .map(|r| (r.get(0), r.get(1))))
}

/// The live bindings of a Space matching every field given (two at most, to tell one from several).
pub async fn matching_in_space(
    client: &impl deadpool_postgres::GenericClient,
    space_id: &str,
    id: &Option<String>,
    user_id: &Option<String>,
    member_id: &Option<String>,
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    crate::db::query_cached(
        client,
        include_str!("user_members/matching_in_space.sql"),
        &[&space_id, id, user_id, member_id],
    )
    .await
}

/// Whether the user has a live binding (of any status) in the Space.
pub async fn user_known_in_space(
    client: &impl deadpool_postgres::GenericClient,
    user_id: &str,
    space_id: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client.query_opt(include_str!("user_members/user_known_in_space.sql"), &[&user_id, &space_id]).await?.is_some())
}
