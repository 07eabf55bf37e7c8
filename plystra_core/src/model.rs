//! The decision context as plain structs: what the loader brings from the database (or what a caller
//! supplies inline), before any rule is applied. Field names follow the trace document of Plystra v1.0.

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
    pub actor: Actor,
    pub registry: Registry,
    /// `None` when the resource does not exist (or was never looked up because the registry rejected it).
    pub target: Option<Target>,
    /// Active, not-deleted grants only, sorted by role key, resource, action, scope (then grant id).
    pub candidates: Vec<Candidate>,
    /// "Now" for expiry checks, in microseconds since the Unix epoch (the statement's timestamp).
    pub now_micros: i64,
}
