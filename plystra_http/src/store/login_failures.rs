//! The store of login_failures: the per-address (and per-client-address) failed-login budget.

use tokio_postgres::{Error, GenericClient, Row};

/// Reserves one attempt for `email` in one statement (the row is locked by the upsert, so concurrent
/// attempts are counted one after another): `email_key`, attempts in the window, seconds locked, new row.
pub async fn reserve_attempt(
    client: &(impl GenericClient + Sync),
    email: &str,
    max_failures: i32,
    window_secs: f64,
    lockout_secs: f64,
) -> Result<Row, Error> {
    client
        .query_one(
            include_str!("login_failures/reserve_attempt.sql"),
            &[&email, &max_failures, &window_secs, &lockout_secs],
        )
        .await
}

/// The count and the seconds left of a client address's window, while the window lasts.
pub async fn address_budget(
    client: &(impl GenericClient + Sync),
    key: &str,
    window_secs: f64,
) -> Result<Option<Row>, Error> {
    client.query_opt(include_str!("login_failures/address_budget.sql"), &[&key, &window_secs]).await
}

/// Counts one new address row against the client address `key`.
pub async fn count_address(client: &(impl GenericClient + Sync), key: &str, window_secs: f64) -> Result<u64, Error> {
    client.execute(include_str!("login_failures/count_address.sql"), &[&key, &window_secs]).await
}

/// Takes back the count of one new address row from the client address `key` (that login succeeded), while its
/// window lasts.
pub async fn uncount_address(client: &(impl GenericClient + Sync), key: &str, window_secs: f64) -> Result<u64, Error> {
    client.execute(include_str!("login_failures/uncount_address.sql"), &[&key, &window_secs]).await
}

/// Deletes the rows whose window ran out and whose lock-out (if any) ended.
pub async fn prune(client: &(impl GenericClient + Sync), window_secs: f64) -> Result<u64, Error> {
    client.execute(include_str!("login_failures/prune.sql"), &[&window_secs]).await
}

/// Forgets an address's failures (a successful login).
pub async fn clear(client: &(impl GenericClient + Sync), email_key: &str) -> Result<u64, Error> {
    client.execute(include_str!("login_failures/clear.sql"), &[&email_key]).await
}
