//! The store of permissions.

use crate::error::Entity;
use crate::store::crud::View;

pub static VIEW: View = View {
    entity: Entity::Permission,
    table: "permissions",
    select: include_str!("permissions/select.sql"),
    space_column: None,
    soft_delete: true,
    order_column: "t.id",
    default_limit: 50,
};
