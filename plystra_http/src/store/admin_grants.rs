//! The store of admin_grants.

use crate::error::Entity;
use crate::store::crud::View;

pub static VIEW: View = View {
    entity: Entity::AdminGrant,
    table: "admin_grants",
    select: include_str!("admin_grants/select.sql"),
    space_column: None,
    soft_delete: true,
    order_column: "t.id",
    default_limit: 100,
};

/// `user_id`'s active admin grants (`plystra.active_admin_grants`), read through the view's columns.
pub async fn active_of_user(
    client: &(impl tokio_postgres::GenericClient + Sync),
    user_id: &str,
) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    client.query(include_str!("admin_grants/active_of_user.sql"), &[&user_id]).await
}

/// Whether `user_id` holds an active instance super admin grant.
pub async fn is_super_admin(
    client: &(impl tokio_postgres::GenericClient + Sync),
    user_id: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client.query_one(include_str!("admin_grants/is_super_admin.sql"), &[&user_id]).await?.get(0))
}

/// Takes the transaction's lock on revocations: every instance super-admin grant's row, in id order, until the
/// transaction ends. Two revocations at once take them one after the other, so the second counts the remaining
/// super admins after the first has committed. Only roles that may update admin_grants (the REST front's, the
/// owner) may take row locks on it; the advisory lock used before could be taken, and held, by any role that can
/// connect. A table lock (used until 1.23.0) needs a table-level UPDATE, which would let the front's role take
/// ACCESS EXCLUSIVE on a table that decisions read.
pub async fn lock_super_admin_revocations(
    client: &(impl tokio_postgres::GenericClient + Sync),
) -> Result<u64, tokio_postgres::Error> {
    client.execute(include_str!("admin_grants/lock_super_admin_revocations.sql"), &[]).await
}

/// How many active instance super admin grants of active users remain besides `grant_id`.
pub async fn other_super_admins(
    client: &(impl tokio_postgres::GenericClient + Sync),
    grant_id: &str,
) -> Result<i64, tokio_postgres::Error> {
    Ok(client.query_one(include_str!("admin_grants/other_super_admins.sql"), &[&grant_id]).await?.get(0))
}
