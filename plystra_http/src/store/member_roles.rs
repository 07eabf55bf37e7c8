//! The store of member_roles.

use crate::error::Entity;
use crate::store::crud::View;

pub static VIEW: View = View {
    entity: Entity::MemberRole,
    table: "member_roles",
    select: include_str!("member_roles/select.sql"),
    space_column: Some("t.space_id"),
    soft_delete: true,
    order_column: "t.id",
    default_limit: 50,
};
