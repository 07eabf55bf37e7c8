//! Standing: how far a user's (or a credential's) admin authority reaches, as one ordered rank. It is defined
//! here once and used by every route that changes a user (password, e-mail, status, profile): nobody changes a
//! user whose standing is above or equal to their own, API keys never set passwords, and a super admin's account
//! is changed only by that user or another super admin.
//!
//! Ranks, highest first: `SuperAdmin` (an active `instance_super_admin` grant) > `Instance` (an active
//! `instance_admin` grant) > `Space` (an active `space_admin` grant) > `Group` (an active `group_admin` grant) >
//! `None`. A user's rank is that of their highest active grant (status active, not revoked, deleted or expired),
//! whether or not the account itself is active: a disabled super admin is still a super admin's account, and
//! only a super admin may restore it or reset its password. An API key's rank is its level (`instance`, `space`,
//! `group`; never a super admin), and never above its creator's current rank.

use deadpool_postgres::GenericClient;

use crate::auth::credential::Credential;
use crate::db;
use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Rank {
    None = 0,
    Group = 1,
    Space = 2,
    Instance = 3,
    SuperAdmin = 4,
}

impl Rank {
    fn from_i32(n: i32) -> Rank {
        match n {
            4 => Rank::SuperAdmin,
            3 => Rank::Instance,
            2 => Rank::Space,
            1 => Rank::Group,
            _ => Rank::None,
        }
    }

    /// The rank of an API key's level.
    pub fn of_key_level(level: &str) -> Rank {
        match level {
            "instance" => Rank::Instance,
            "space" => Rank::Space,
            "group" => Rank::Group,
            _ => Rank::None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Rank::SuperAdmin => "instance_super_admin",
            Rank::Instance => "instance_admin",
            Rank::Space => "space_admin",
            Rank::Group => "group_admin",
            Rank::None => "none",
        }
    }
}

/// A user's standing.
pub async fn of_user(client: &impl GenericClient, user_id: &str) -> Result<Rank, ApiError> {
    // The highest active AdminGrant (the account's own status is not looked at, see the module doc).
    Ok(Rank::from_i32(crate::store::standing::user_rank(client, user_id).await.map_err(db::internal)?))
}

/// A credential's standing: a session's user's, or an API key's level capped by its creator's current standing
/// (a key with no creator user, inserted by the database owner, has its level's).
pub async fn of_credential(client: &impl GenericClient, credential: &Credential) -> Result<Rank, ApiError> {
    match credential {
        Credential::Session(s) => of_user(client, &s.user_id).await,
        Credential::ApiKey(k) => {
            let level = Rank::of_key_level(&k.level).min(Rank::Instance);
            match &k.created_by_user_id {
                Some(creator) => Ok(level.min(of_user(client, creator).await?)),
                None => Ok(level),
            }
        }
    }
}

/// What a caller wants to do to a user account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserChange {
    /// A password or password hash is set.
    pub sets_password: bool,
}

/// The rule, pure: may a caller of `caller` rank (acting as `caller_user`, for a session) change the account of
/// `target_user` whose rank is `target`? `Err` says why not.
pub fn may_change_user(
    caller_is_key: bool,
    caller_user: Option<&str>,
    caller: Rank,
    target_user: &str,
    target: Rank,
    change: UserChange,
) -> Result<(), &'static str> {
    if caller_is_key && change.sets_password {
        return Err("API keys never set passwords; a password is set by the user or by an administrator's session.");
    }
    if !caller_is_key && caller_user == Some(target_user) {
        return Ok(());
    }
    if caller == Rank::SuperAdmin {
        return Ok(());
    }
    if target == Rank::SuperAdmin {
        return Err("A super admin's account is changed only by that user or another super admin.");
    }
    if caller > target {
        Ok(())
    } else {
        Err("The caller's standing must be above the target user's to change that account.")
    }
}

/// Refuses (403 ADMIN_PERMISSION_REQUIRED, with both standings in the details) a change of `target_user` by the
/// request's credential unless [`may_change_user`] allows it.
pub async fn require_over_user(
    client: &impl GenericClient,
    credential: &Credential,
    target_user: &str,
    change: UserChange,
) -> Result<(), ApiError> {
    let caller = of_credential(client, credential).await?;
    let target = of_user(client, target_user).await?;
    let is_key = matches!(credential, Credential::ApiKey(_));
    may_change_user(is_key, credential.user_id(), caller, target_user, target, change).map_err(|message| {
        ApiError::admin_permission_required("users:manage", message).with_details(serde_json::json!({
            "permission": "users:manage",
            "caller_standing": caller.name(),
            "target_standing": target.name(),
        }))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NO_PW: UserChange = UserChange { sets_password: false };
    const PW: UserChange = UserChange { sets_password: true };

    #[test]
    fn ranks_are_ordered() {
        assert!(Rank::SuperAdmin > Rank::Instance);
        assert!(Rank::Instance > Rank::Space);
        assert!(Rank::Space > Rank::Group);
        assert!(Rank::Group > Rank::None);
        assert_eq!(Rank::of_key_level("instance"), Rank::Instance);
        assert_eq!(Rank::of_key_level("bogus"), Rank::None);
    }

    #[test]
    fn nobody_changes_an_equal_or_higher_standing() {
        let s = |caller, target, change| may_change_user(false, Some("u_caller"), caller, "u_target", target, change);
        assert!(s(Rank::Instance, Rank::None, PW).is_ok());
        assert!(s(Rank::Instance, Rank::Space, NO_PW).is_ok());
        assert!(s(Rank::Instance, Rank::Instance, NO_PW).is_err(), "equal standing");
        assert!(s(Rank::Instance, Rank::SuperAdmin, PW).is_err());
        assert!(s(Rank::Space, Rank::Space, NO_PW).is_err());
        assert!(s(Rank::SuperAdmin, Rank::SuperAdmin, PW).is_ok(), "a super admin for a super admin");
        assert!(s(Rank::None, Rank::None, NO_PW).is_err());
    }

    #[test]
    fn a_user_changes_their_own_account() {
        assert!(may_change_user(false, Some("u"), Rank::Instance, "u", Rank::Instance, PW).is_ok());
        assert!(may_change_user(false, Some("u"), Rank::SuperAdmin, "u", Rank::SuperAdmin, PW).is_ok());
    }

    #[test]
    fn api_keys_never_set_passwords_and_never_touch_a_super_admin() {
        let k = |caller, target, change| may_change_user(true, Some("u_creator"), caller, "u_target", target, change);
        assert!(k(Rank::Instance, Rank::None, PW).is_err());
        assert!(k(Rank::Instance, Rank::None, NO_PW).is_ok());
        assert!(k(Rank::Instance, Rank::SuperAdmin, NO_PW).is_err());
        assert!(k(Rank::Instance, Rank::Instance, NO_PW).is_err());
        // A key acts for its creator but is not the creator's session.
        assert!(may_change_user(true, Some("u"), Rank::Instance, "u", Rank::Instance, NO_PW).is_err());
    }
}
