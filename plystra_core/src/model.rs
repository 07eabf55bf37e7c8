//! The decision context as plain structs: what the loader brings from the database (or what a caller
//! supplies inline), before any rule is applied. Field names follow the trace document of Plystra v1.0.

use std::rc::Rc;

use serde_json::Value;

/// The status every live entity must have.
pub const ACTIVE: &str = "active";

/// The question: can this User, acting through this Member (via this UserMember binding) inside this Space,
/// perform `action` on the resource `resource_type`/`resource_id`?
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    pub user_id: String,
    pub member_id: String,
    pub user_member_id: String,
    pub space_id: String,
    pub resource_type: String,
    pub resource_id: String,
    pub action: String,
    pub context: RequestContext,
    /// How the request named its actor: the whole tuple, or its User alone (the binding is then resolved).
    pub actor_naming: ActorNaming,
    /// What the request describes inline instead of pointing at Core rows (Context Mode).
    pub inline: Option<Box<Inline>>,
}

impl Request {
    /// The question about a resource in Core, asked by the actor its four ids name (no request context, nothing
    /// inline).
    pub fn about(
        (user_id, member_id, user_member_id, space_id): (&str, &str, &str, &str),
        resource_type: &str,
        resource_id: &str,
        action: &str,
    ) -> Request {
        Request {
            user_id: user_id.into(),
            member_id: member_id.into(),
            user_member_id: user_member_id.into(),
            space_id: space_id.into(),
            resource_type: resource_type.into(),
            resource_id: resource_id.into(),
            action: action.into(),
            ..Request::default()
        }
    }
}

/// How the acting binding was named. A request may name its actor by the User alone (`actor: {user_id}`,
/// optionally with `space_id`); the loader then picks the binding and fills in the tuple.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ActorNaming {
    /// `user_id`, `member_id`, `user_member_id` and `space_id` were all given.
    #[default]
    Tuple,
    /// Only the User (and perhaps the Space) was given; not resolved yet.
    ByUser,
    /// Named by the User, and exactly one binding was chosen: the tuple now names it.
    Resolved,
    /// Named by the User, who has no binding there: the decision is ACTOR_NOT_FOUND.
    Unbound,
    /// Named by the User, who has several bindings there and none is the one to choose: the decision is
    /// ACTOR_BINDING_AMBIGUOUS.
    Ambiguous,
}

impl ActorNaming {
    /// Whether the request named its actor by the User alone (resolved or not).
    pub fn by_user(self) -> bool {
        self != ActorNaming::Tuple
    }
}

/// Context Mode (docs/v1-reference.md §1.7): a request may describe its target, its actor and its grants inline instead of
/// pointing at Core rows. An inline target is a resource Plystra does not hold (a proposed invoice); inline
/// grants or actor metadata make the request "pure inline": the actor and its candidates come from the request,
/// and only the Resource Registry is read from Core.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Inline {
    pub resource: Option<InlineResource>,
    pub grants: Option<Vec<InlineGrant>>,
    pub actor: Option<InlineActor>,
}

impl Inline {
    /// Whether the actor and its grants come from the request (inline grants or actor metadata present).
    pub fn is_pure(&self) -> bool {
        self.grants.is_some() || self.actor.is_some()
    }
}

/// An inline target's description. A field not given is read from `metadata` through the type's mapping
/// (`space_field`, `group_field`, `owner_member_field`, `visibility_field`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InlineResource {
    pub external_id: Option<String>,
    pub space_id: Option<String>,
    pub group_id: Option<String>,
    pub group_path: Option<String>,
    pub owner_member_id: Option<String>,
    pub display_name: Option<String>,
    pub visibility: Option<String>,
    pub status: Option<String>,
    pub metadata: Option<Value>,
}

/// One inline grant: a Role's permission held through a grant anchored (for group scopes) at a group named by
/// id or by path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InlineGrant {
    pub role_id: Option<String>,
    pub role_key: Option<String>,
    pub permission_id: Option<String>,
    pub resource: String,
    pub action: String,
    pub scope: String,
    pub space_id: Option<String>,
    pub scope_anchor_group_id: Option<String>,
    pub scope_anchor_group_path: Option<String>,
}

/// Inline actor metadata: the actor's snapshot is built from the request's ids and these, statuses defaulting
/// to `active`, the relation to `external`, names to the ids.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InlineActor {
    pub user_email: Option<String>,
    pub user_status: Option<String>,
    pub member_display_name: Option<String>,
    pub member_status: Option<String>,
    pub binding_status: Option<String>,
    pub relation_type: Option<String>,
    pub space_name: Option<String>,
    pub space_status: Option<String>,
}

/// Which parts of a decision's context came from the request rather than from Core (shown in the trace as
/// `context_mode`, and so kept on the audit row).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContextMode {
    pub actor_inline: bool,
    pub target_inline: bool,
    pub grants_inline: bool,
    /// The inline resource fields not used because the resource is registered (Core's row wins).
    pub ignored: Vec<&'static str>,
}

/// Where the question came from; recorded on the audit row, never used to decide.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestContext {
    pub request_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub status: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub id: String,
    pub space_id: String,
    pub display_name: String,
    pub status: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UserMember {
    pub id: String,
    pub user_id: String,
    pub member_id: String,
    pub space_id: String,
    pub relation_type: String,
    pub status: String,
    pub is_primary: bool,
    pub expires_at: Option<Timestamp>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Space {
    pub id: String,
    pub name: String,
    pub status: String,
}

/// A point in time: microseconds since the Unix epoch to compare, and its RFC 3339 text to show.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Timestamp {
    pub unix_micros: i64,
    pub rfc3339: String,
}

impl Timestamp {
    /// The instant `unix_micros`, shown as RFC 3339 UTC to the second (`2026-01-31T23:59:59Z`). The range
    /// PostgreSQL's timestamptz holds (and its ±infinity, as `infinity`/`-infinity`).
    pub fn from_unix_micros(unix_micros: i64) -> Timestamp {
        // PostgreSQL's ±infinity are i64::MAX / i64::MIN; moved to the Unix epoch they saturate (so do instants
        // in the last days of year 294276, which are shown as infinity too).
        let rfc3339 = if unix_micros == i64::MAX {
            "infinity".to_string()
        } else if unix_micros <= i64::MIN / 2 {
            "-infinity".to_string()
        } else {
            let seconds = unix_micros.div_euclid(1_000_000);
            let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
            let (year, month, day) = civil_from_days(days);
            format!(
                "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
                second_of_day / 3600,
                second_of_day / 60 % 60,
                second_of_day % 60
            )
        };
        Timestamp { unix_micros, rfc3339 }
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day): the well-known civil-from-days algorithm
/// on 400-year eras.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The actor tuple. Each part is `None` when no live row has the requested id.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Actor {
    pub user: Option<User>,
    pub member: Option<Member>,
    pub user_member: Option<UserMember>,
    pub space: Option<Space>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Resource {
    pub id: String,
    pub external_id: Option<String>,
    pub resource_type: String,
    pub space_id: String,
    pub group_id: Option<String>,
    pub owner_member_id: Option<String>,
    pub display_name: Option<String>,
    pub visibility: Option<String>,
    pub status: Option<String>,
    pub metadata: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    pub id: String,
    pub space_id: String,
    pub path: String,
    pub status: String,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    pub resource: Resource,
    pub group: Option<Group>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceType {
    pub id: String,
    pub key: String,
    pub display_name: String,
    pub description: Option<String>,
    pub status: String,
    pub source: String,
    pub metadata: Option<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceAction {
    pub id: String,
    pub resource_type_id: String,
    pub key: String,
    pub display_name: String,
    pub description: Option<String>,
    pub risk_level: String,
    pub audit_default: bool,
    pub metadata: Option<Value>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ResourceMapping {
    pub id: String,
    pub resource_type_id: String,
    pub storage_kind: String,
    pub table_name: Option<String>,
    pub id_field: String,
    pub space_field: String,
    pub group_field: Option<String>,
    pub owner_member_field: Option<String>,
    pub visibility_field: Option<String>,
    pub metadata_field: Option<String>,
    pub status: String,
    pub metadata: Option<Value>,
}

/// The Resource Registry entries for the requested type and action.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Registry {
    pub resource_type: Option<ResourceType>,
    pub action: Option<ResourceAction>,
    pub mapping: Option<ResourceMapping>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    pub id: String,
    pub key: String,
    pub space_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permission {
    pub id: String,
    pub resource: String,
    pub action: String,
    pub scope: String,
}

/// One (RolePermission × MemberRole grant) pair whose permission names the requested resource type and action.
/// The scope lives on the Permission, the anchor on the MemberRole grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub member_role_id: String,
    pub role: Role,
    pub permission: Permission,
    pub scope_anchor: Option<Group>,
    pub member_role_space_id: String,
}

/// Everything a decision needs, gathered before deciding.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Context {
    /// Shared, not copied: a backend keeps the actors it decides for (`plystra_pg`'s `actor_kept`) and hands the
    /// same one to every decision that uses it.
    pub actor: Rc<Actor>,
    pub registry: Registry,
    /// `None` when the resource does not exist (or was never looked up because the registry rejected it).
    pub target: Option<Target>,
    /// Active, not-deleted grants only, sorted by role key, resource, action, scope (then grant id).
    pub candidates: Vec<Candidate>,
    /// "Now" for expiry checks, in microseconds since the Unix epoch (the statement's timestamp).
    pub now_micros: i64,
    /// Set when any part came inline (Context Mode).
    pub context_mode: Option<ContextMode>,
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    #[test]
    fn timestamps_show_as_rfc3339_utc_to_the_second() {
        let cases = [
            (0, "1970-01-01T00:00:00Z"),
            (999_999, "1970-01-01T00:00:00Z"),
            (-1, "1969-12-31T23:59:59Z"),
            (951_782_400_000_000, "2000-02-29T00:00:00Z"),
            (1_798_761_599_000_000, "2026-12-31T23:59:59Z"),
            (4_107_542_400_000_000, "2100-03-01T00:00:00Z"),
            (-62_135_596_800_000_000, "0001-01-01T00:00:00Z"),
            (i64::MAX, "infinity"),
            (i64::MIN, "-infinity"),
        ];
        for (micros, text) in cases {
            assert_eq!(Timestamp::from_unix_micros(micros).rfc3339, text, "{micros}");
        }
    }
}
