//! HTTP handlers, a module per concept.

pub mod admin_grants;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod authz;
pub mod authzen;
pub mod crud;
pub mod groups;
pub mod lookups;
pub mod member_roles;
pub mod members;
pub mod permissions;
pub mod registry;
pub mod resources;
pub mod role_permissions;
pub mod roles;
pub mod spaces;
pub mod system;
pub mod user_members;
pub mod users;
