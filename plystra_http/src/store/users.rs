//! The store of users.

use crate::error::Entity;
use crate::store::crud::View;

pub static VIEW: View = View {
    entity: Entity::User,
    table: "users",
    select: include_str!("users/select.sql"),
    space_column: None,
    soft_delete: true,
    order_column: "t.id",
    default_limit: 50,
};

/// The live user whose `lower(email)` is `email_key` (lower() on both sides, in PostgreSQL only), with its
/// password hash: for login only.
pub async fn for_login(
    client: &(impl tokio_postgres::GenericClient + Sync),
    email_key: &str,
) -> Result<Option<tokio_postgres::Row>, tokio_postgres::Error> {
    client.query_opt(include_str!("users/for_login.sql"), &[&email_key]).await
}

/// Records a successful login.
pub async fn touch_last_login(
    client: &(impl tokio_postgres::GenericClient + Sync),
    user_id: &str,
) -> Result<u64, tokio_postgres::Error> {
    client.execute(include_str!("users/touch_last_login.sql"), &[&user_id]).await
}
