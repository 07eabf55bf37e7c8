//! Core management routes for every entity: lifecycle, lists with filters, read-only aliases, and the database
//! invariants coming back as rule-named codes. Ends with a whole Space built over HTTP whose decisions follow
//! the grants made and revoked over HTTP.

mod common;

use common::*;
use serde_json::{json, Value};

async fn new_space() -> String {
    let id = unique("space_t");
    post("/api/v1/spaces", json!({"id": id, "name": "Test Space"})).await.expect_ok(201);
    id
}

async fn audit_actions(request_id: &str) -> Vec<String> {
    sql()
        .await
        .query("SELECT action FROM plystra.audit_logs WHERE request_id = $1 ORDER BY seq", &[&request_id])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test]
async fn spaces_lifecycle_and_errors() {
    let a = post("/api/v1/spaces", json!({"name": "Generated"})).await;
    let space = a.expect_ok(201).clone();
    let id = space["id"].as_str().unwrap();
    assert!(id.starts_with("space_") && id.len() == "space_".len() + 16, "{id}");
    assert_eq!(space["type"], "custom");
    assert_eq!(space["slug"], "");
    let slug = unique("slug");
    patch(&format!("/api/v1/spaces/{id}"), json!({"slug": slug})).await.expect_ok(200);
    post("/api/v1/spaces", json!({"name": "Dup", "slug": slug})).await.expect_error(409, "SPACE_CREATE_FAILED");
    assert_eq!(post(&format!("/api/v1/spaces/{id}/disable"), json!({})).await.expect_ok(200)["status"], "disabled");
    let rid = unique("req_restore");
    let a = send_to(server(), "POST", &format!("/api/v1/spaces/{id}/restore"), None, &[("X-Request-ID", &rid)]).await;
    assert_eq!(a.expect_ok(200)["status"], "active");
    assert_eq!(audit_actions(&rid).await, vec!["space.restored"]);
    assert_eq!(get(&format!("/api/v1/spaces?slug={slug}")).await.expect_ok(200).as_array().unwrap().len(), 1);
    get("/api/v1/spaces/space_missing").await.expect_error(404, "SPACE_NOT_FOUND");
    post("/api/v1/spaces", json!({})).await.expect_error(400, "VALIDATION_FAILED");
    post("/api/v1/spaces/space_missing/groups", json!({"path": "x"})).await.expect_error(404, "SPACE_NOT_FOUND");
}

#[tokio::test]
async fn groups_follow_the_path_rules() {
    let s = new_space().await;
    let base = format!("/api/v1/spaces/{s}/groups");
    let root = post(&base, json!({"id": unique("g_root"), "path": "ops"})).await.expect_ok(201).clone();
    assert_eq!(root["name"], "Ops", "name defaults to the title-cased last label");
    assert_eq!(root["depth"], 0);
    assert_eq!(root["sort_order"], 1000);
    let child = post(&base, json!({"path": "ops.east", "parent_id": root["id"]})).await.expect_ok(201).clone();
    assert_eq!(child["parent_group_id"], root["id"]);
    assert_eq!(child["parent_id"], root["id"]);
    assert_eq!(child["depth"], 1);

    let e = post(&base, json!({"path": "legal.east", "parent_group_id": root["id"]})).await;
    e.expect_error(400, "GROUP_PATH_PARENT_MISMATCH");
    let e = post(&base, json!({"path": "Not Valid"})).await;
    assert_eq!(e.expect_error(400, "GROUP_PATH_INVALID")["details"]["field"], "path");
    post(&base, json!({"path": "ops"})).await.expect_error(409, "GROUP_CREATE_FAILED");
    let other = new_space().await;
    let foreign = post(&format!("/api/v1/spaces/{other}/groups"), json!({"path": "ops"})).await.expect_ok(201).clone();
    let e = post(&base, json!({"path": "ops.west", "parent_group_id": foreign["id"]})).await;
    e.expect_error(400, "CROSS_SPACE_VIOLATION");

    let gid = child["id"].as_str().unwrap();
    patch(&format!("{base}/{gid}"), json!({"path": "ops.north"})).await.expect_error(409, "GROUP_PATH_IMMUTABLE");
    let p =
        patch(&format!("{base}/{gid}"), json!({"display_name": "East", "sort_order": 5})).await.expect_ok(200).clone();
    assert_eq!(p["display_name"], "East");
    assert_eq!(p["path"], "ops.east");
    // An integer written with a zero fraction is the same integer (JSON Schema's `integer`); a fraction, or a
    // number past 32 bits, is a 400 naming the field.
    let p = patch(&format!("{base}/{gid}"), json!({"sort_order": 7.0})).await.expect_ok(200).clone();
    assert_eq!(p["sort_order"], 7);
    for bad in [json!(7.5), json!(2147483648_i64), json!("7")] {
        let e = patch(&format!("{base}/{gid}"), json!({ "sort_order": bad })).await;
        assert_eq!(e.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "sort_order", "{bad}");
    }
    let tree = get(&format!("{base}/tree")).await.expect_ok(200).clone();
    let paths: Vec<&str> = tree.as_array().unwrap().iter().map(|g| g["path"].as_str().unwrap()).collect();
    assert_eq!(paths, vec!["ops", "ops.east"]);
    assert_eq!(get(&format!("/api/v1/groups/{gid}")).await.expect_ok(200)["id"], gid);
    get(&format!("/api/v1/spaces/{other}/groups/{gid}")).await.expect_error(404, "GROUP_NOT_FOUND");
    assert_eq!(post(&format!("{base}/{gid}/disable"), json!({})).await.expect_ok(200)["status"], "disabled");
    assert_eq!(get(&format!("{base}?status=disabled")).await.expect_ok(200).as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn members_roles_and_aliases() {
    let s = new_space().await;
    let m = post(&format!("/api/v1/spaces/{s}/members"), json!({"display_name": "Clerk"})).await.expect_ok(201).clone();
    let mid = m["id"].as_str().unwrap();
    assert_eq!(m["member_type"], "human");
    assert_eq!(get(&format!("/api/v1/members/{mid}")).await.expect_ok(200)["display_name"], "Clerk");
    patch(&format!("/api/v1/spaces/{s}/members/{mid}"), json!({"display_name": "Senior Clerk"})).await.expect_ok(200);
    assert_eq!(
        post(&format!("/api/v1/spaces/{s}/members/{mid}/disable"), json!({})).await.expect_ok(200)["status"],
        "disabled"
    );
    post(&format!("/api/v1/spaces/{s}/members"), json!({})).await.expect_error(400, "VALIDATION_FAILED");

    let r = post(&format!("/api/v1/spaces/{s}/roles"), json!({"key": "invoice_clerk"})).await.expect_ok(201).clone();
    assert_eq!(r["name"], "Invoice Clerk");
    post(&format!("/api/v1/spaces/{s}/roles"), json!({"key": "invoice_clerk"}))
        .await
        .expect_error(409, "ROLE_CREATE_FAILED");
    let rid = r["id"].as_str().unwrap();
    assert_eq!(get(&format!("/api/v1/roles/{rid}")).await.expect_ok(200)["key"], "invoice_clerk");
    assert_eq!(
        get(&format!("/api/v1/spaces/{s}/roles?key=invoice_clerk")).await.expect_ok(200).as_array().unwrap().len(),
        1
    );
    assert_eq!(
        post(&format!("/api/v1/spaces/{s}/roles/{rid}/disable"), json!({})).await.expect_ok(200)["status"],
        "disabled"
    );
    get("/api/v1/roles/role_missing").await.expect_error(404, "ROLE_NOT_FOUND");
    get("/api/v1/members/member_missing").await.expect_error(404, "MEMBER_NOT_FOUND");
}

#[tokio::test]
async fn user_members_bind_within_one_space() {
    let s = new_space().await;
    let other = new_space().await;
    let m = post(&format!("/api/v1/spaces/{s}/members"), json!({"display_name": "Binder"})).await.expect_ok(201)["id"]
        .clone();
    let foreign = post(&format!("/api/v1/spaces/{other}/members"), json!({"display_name": "Elsewhere"}))
        .await
        .expect_ok(201)["id"]
        .clone();
    let base = format!("/api/v1/spaces/{s}/user-members");
    let um = post(&base, json!({"user_id": "user_bob", "member_id": m, "relation_type": "login", "is_primary": true, "expires_at": "2099-01-01T00:00:00Z"}))
        .await
        .expect_ok(201)
        .clone();
    assert_eq!(um["email"], "bob@example.com");
    assert_eq!(um["member_display_name"], "Binder");
    assert_eq!(um["expires_at"], "2099-01-01T00:00:00Z");
    assert!(um["id"].as_str().unwrap().starts_with("um_"));
    let e = post(&base, json!({"user_id": "user_bob", "member_id": foreign, "relation_type": "login"})).await;
    assert_eq!(e.expect_error(400, "CROSS_SPACE_VIOLATION")["details"]["rule"], "user_members_member_same_space");
    let e = post(&base, json!({"user_id": "user_nobody", "member_id": m, "relation_type": "login"})).await;
    assert_eq!(e.expect_error(404, "USER_NOT_FOUND")["details"]["field"], "user_id");
    let e = post(&base, json!({"user_id": "user_bob", "member_id": m})).await;
    assert_eq!(e.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "relation_type");
    let e =
        post(&base, json!({"user_id": "user_bob", "member_id": m, "relation_type": "x", "expires_at": "soon"})).await;
    assert_eq!(e.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "expires_at");

    let id = um["id"].as_str().unwrap();
    assert_eq!(
        get(&format!("{base}?user_id=user_bob&relation_type=login")).await.expect_ok(200).as_array().unwrap().len(),
        1
    );
    assert_eq!(get(&format!("{base}?status=revoked")).await.expect_ok(200).as_array().unwrap().len(), 0);
    let revoked =
        post(&format!("{base}/{id}/revoke"), json!({"revoked_reason": "left the team"})).await.expect_ok(200).clone();
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(revoked["revoked_reason"], "left the team");
    assert!(revoked["revoked_at"].is_string());
    assert_eq!(get(&format!("/api/v1/user-members/{id}")).await.expect_ok(200)["status"], "revoked");
    get(&format!("/api/v1/spaces/{other}/user-members/{id}")).await.expect_error(404, "USER_MEMBER_NOT_FOUND");
}

#[tokio::test]
async fn member_roles_anchor_in_the_same_space() {
    let s = new_space().await;
    let other = new_space().await;
    let m = post(&format!("/api/v1/spaces/{s}/members"), json!({"display_name": "Approver"})).await.expect_ok(201)
        ["id"]
        .clone();
    let r = post(&format!("/api/v1/spaces/{s}/roles"), json!({"key": "approver"})).await.expect_ok(201)["id"].clone();
    let g = post(&format!("/api/v1/spaces/{s}/groups"), json!({"path": "finance"})).await.expect_ok(201)["id"].clone();
    let fg =
        post(&format!("/api/v1/spaces/{other}/groups"), json!({"path": "finance"})).await.expect_ok(201)["id"].clone();
    let mr = post(
        &format!("/api/v1/spaces/{s}/member-roles"),
        json!({"member_id": m, "role_id": r, "scope_anchor_group_id": g}),
    )
    .await
    .expect_ok(201)
    .clone();
    assert_eq!(mr["scope_anchor_path"], "finance");
    assert_eq!(mr["role_key"], "approver");
    assert_eq!(mr["member_display_name"], "Approver");
    let e = post(
        &format!("/api/v1/spaces/{s}/member-roles"),
        json!({"member_id": m, "role_id": r, "scope_anchor_group_id": fg}),
    )
    .await;
    assert_eq!(e.expect_error(400, "CROSS_SPACE_VIOLATION")["details"]["rule"], "member_roles_anchor_same_space");
    post(
        &format!("/api/v1/spaces/{s}/member-roles"),
        json!({"member_id": m, "role_id": r, "scope_anchor_group_id": g}),
    )
    .await
    .expect_error(409, "MEMBER_ROLE_CREATE_FAILED");
    let id = mr["id"].as_str().unwrap();
    let via_alias = get(&format!("/api/v1/spaces/{s}/member-role-grants/{id}")).await.expect_ok(200).clone();
    assert_eq!(via_alias["id"], id);
    assert_eq!(
        ids(get(&format!("/api/v1/spaces/{s}/member-role-grants?member_id={}", m.as_str().unwrap()))
            .await
            .expect_ok(200)),
        vec![id.to_string()]
    );
    let second = post(&format!("/api/v1/spaces/{s}/member-role-grants"), json!({"member_id": m, "role_id": r}))
        .await
        .expect_ok(201)
        .clone();
    assert_eq!(second["scope_anchor_group_id"], "");
    assert_eq!(
        post(&format!("/api/v1/spaces/{s}/member-roles/{id}/revoke"), json!({})).await.expect_ok(200)["status"],
        "revoked"
    );
    let sid = second["id"].as_str().unwrap();
    assert_eq!(
        post(&format!("/api/v1/spaces/{s}/member-role-grants/{sid}/revoke"), json!({})).await.expect_ok(200)["status"],
        "revoked"
    );
    assert_eq!(
        get(&format!("/api/v1/spaces/{s}/member-roles?status=revoked")).await.expect_ok(200).as_array().unwrap().len(),
        2
    );
    get(&format!("/api/v1/spaces/{other}/member-roles/{id}")).await.expect_error(404, "MEMBER_ROLE_NOT_FOUND");
}

#[tokio::test]
async fn permissions_and_role_permissions() {
    let res = unique("doc");
    let p = post(
        "/api/v1/permissions",
        json!({"resource": res, "action": "read", "scope": "space", "audit_space_id": "space_acme"}),
    )
    .await
    .expect_ok(201)
    .clone();
    assert_eq!(p["status"], "active");
    let g = post("/api/v1/permissions", json!({"resource": res, "action": "read", "scope": "global"}))
        .await
        .expect_ok(201)
        .clone();
    assert_eq!(g["status"], "disabled", "global scope is always stored disabled");
    post("/api/v1/permissions", json!({"resource": res, "action": "read", "scope": "space"}))
        .await
        .expect_error(409, "PERMISSION_CREATE_FAILED");
    let e = post("/api/v1/permissions", json!({"resource": res, "action": "read", "scope": "planet"})).await;
    assert_eq!(e.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "scope");
    assert_eq!(get(&format!("/api/v1/permissions?resource={res}")).await.expect_ok(200).as_array().unwrap().len(), 2);
    let pid = p["id"].as_str().unwrap();
    assert_eq!(
        patch(&format!("/api/v1/permissions/{pid}"), json!({"description": "read docs"})).await.expect_ok(200)
            ["description"],
        "read docs"
    );

    let s = new_space().await;
    let r = post(&format!("/api/v1/spaces/{s}/roles"), json!({"key": "reader"})).await.expect_ok(201)["id"].clone();
    let rp = post("/api/v1/role-permissions", json!({"role_id": r, "permission_id": pid})).await.expect_ok(201).clone();
    assert_eq!(rp["space_id"], s.as_str());
    assert_eq!(rp["role_key"], "reader");
    assert_eq!(rp["resource"], res.as_str());
    assert!(rp["deleted_at"].is_null());
    let rpid = rp["id"].as_str().unwrap();
    let rid = unique("req_rp_delete");
    let deleted =
        send_to(server(), "DELETE", &format!("/api/v1/role-permissions/{rpid}"), None, &[("X-Request-ID", &rid)]).await;
    assert!(deleted.expect_ok(200)["deleted_at"].is_string(), "the soft-deleted row is returned");
    assert_eq!(audit_actions(&rid).await, vec!["role_permission.deleted"]);
    get(&format!("/api/v1/role-permissions/{rpid}")).await.expect_error(404, "ROLE_PERMISSION_NOT_FOUND");
    send("DELETE", &format!("/api/v1/role-permissions/{rpid}"), None)
        .await
        .expect_error(404, "ROLE_PERMISSION_NOT_FOUND");
    // Granting the pair again brings the same row back.
    let again = post(&format!("/api/v1/spaces/{s}/role-permissions"), json!({"role_id": r, "permission_id": pid}))
        .await
        .expect_ok(201)
        .clone();
    assert_eq!(again["id"], rpid);
    assert!(again["deleted_at"].is_null());
    assert_eq!(ids(get(&format!("/api/v1/spaces/{s}/role-permissions")).await.expect_ok(200)), vec![rpid.to_string()]);
    get(&format!("/api/v1/spaces/{s}/role-permissions/{rpid}")).await.expect_ok(200);
    let other = new_space().await;
    get(&format!("/api/v1/spaces/{other}/role-permissions/{rpid}"))
        .await
        .expect_error(404, "ROLE_PERMISSION_NOT_FOUND");
    post(&format!("/api/v1/spaces/{other}/role-permissions"), json!({"role_id": r, "permission_id": pid}))
        .await
        .expect_error(400, "CROSS_SPACE_VIOLATION");
    send("DELETE", &format!("/api/v1/spaces/{other}/role-permissions/{rpid}"), None)
        .await
        .expect_error(404, "ROLE_PERMISSION_NOT_FOUND");
    assert!(send("DELETE", &format!("/api/v1/spaces/{s}/role-permissions/{rpid}"), None).await.expect_ok(200)
        ["deleted_at"]
        .is_string());
    let e = post("/api/v1/role-permissions", json!({"role_id": r, "permission_id": "perm_missing"})).await;
    assert_eq!(e.expect_error(404, "PERMISSION_NOT_FOUND")["details"]["field"], "permission_id");
    assert_eq!(
        post(&format!("/api/v1/permissions/{pid}/disable"), json!({})).await.expect_ok(200)["status"],
        "disabled"
    );
}

#[tokio::test]
async fn the_resource_registry_upserts_by_key() {
    let key = format!("t{}", &unique("x")[2..]).replace('_', "");
    let first =
        post("/api/v1/resource-types", json!({"key": key, "display_name": "Thing"})).await.expect_ok(201).clone();
    let again = post("/api/v1/resource-types", json!({"key": key, "display_name": "Thing v2", "description": "d"}))
        .await
        .expect_ok(201)
        .clone();
    assert_eq!(first["id"], again["id"]);
    assert_eq!(again["display_name"], "Thing v2");
    assert_eq!(again["source"], "core");
    assert_eq!(get(&format!("/api/v1/resource-types/{key}")).await.expect_ok(200)["description"], "d");
    get("/api/v1/resource-types/nope").await.expect_error(404, "RESOURCE_TYPE_NOT_FOUND");
    post("/api/v1/resource-types", json!({"key": key})).await.expect_error(400, "VALIDATION_FAILED");

    let a = post(&format!("/api/v1/resource-types/{key}/actions"), json!({"key": "open", "display_name": "Open"}))
        .await
        .expect_ok(201)
        .clone();
    assert_eq!(a["risk_level"], "normal");
    assert_eq!(a["audit_default"], true);
    let a2 = post(
        &format!("/api/v1/resource-types/{key}/actions"),
        json!({"key": "open", "display_name": "Open it", "risk_level": "high"}),
    )
    .await
    .expect_ok(201)
    .clone();
    assert_eq!(a2["id"], a["id"]);
    assert_eq!(a2["risk_level"], "high");
    let e = post(
        &format!("/api/v1/resource-types/{key}/actions"),
        json!({"key": "close", "display_name": "Close", "risk_level": "extreme"}),
    )
    .await;
    assert_eq!(e.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "risk_level");
    assert_eq!(get(&format!("/api/v1/resource-types/{key}/actions")).await.expect_ok(200).as_array().unwrap().len(), 1);
    post("/api/v1/resource-types/nope/actions", json!({"key": "open", "display_name": "Open"}))
        .await
        .expect_error(404, "RESOURCE_TYPE_NOT_FOUND");

    get(&format!("/api/v1/resource-types/{key}/mapping")).await.expect_error(404, "RESOURCE_MAPPING_NOT_FOUND");
    let m = send("PUT", &format!("/api/v1/resource-types/{key}/mapping"), Some(json!({"table_name": "resources"})))
        .await
        .expect_ok(200)
        .clone();
    assert_eq!(m["storage_kind"], "internal_table");
    assert_eq!(m["id_field"], "id");
    assert_eq!(m["space_field"], "space_id");
    let m2 = patch(&format!("/api/v1/resource-types/{key}/mapping"), json!({"group_field": "group_id"}))
        .await
        .expect_ok(200)
        .clone();
    assert_eq!(m2["id"], m["id"]);
    assert_eq!(m2["group_field"], "group_id");
    post(&format!("/api/v1/resource-types/{key}/mapping"), json!({"status": "active"})).await.expect_ok(200);
    assert_eq!(get(&format!("/api/v1/resource-types/{key}/mapping")).await.expect_ok(200)["id"], m["id"]);
    assert!(get("/api/v1/resource-types")
        .await
        .expect_ok(200)
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["key"] == "invoice"));
}

#[tokio::test]
async fn resources_live_in_one_space() {
    let s = new_space().await;
    let other = new_space().await;
    let g = post(&format!("/api/v1/spaces/{s}/groups"), json!({"path": "finance"})).await.expect_ok(201)["id"].clone();
    let fg =
        post(&format!("/api/v1/spaces/{other}/groups"), json!({"path": "finance"})).await.expect_ok(201)["id"].clone();
    let base = format!("/api/v1/spaces/{s}/resources");
    let r =
        post(&base, json!({"resource_type": "invoice", "group_id": g, "display_name": "INV-9", "metadata": {"n": 9}}))
            .await
            .expect_ok(201)
            .clone();
    let id = r["id"].as_str().unwrap();
    assert!(id.starts_with("invoice_"), "{id}");
    assert_eq!(r["group_path"], "finance");
    assert_eq!(r["space_name"], "Test Space");
    assert_eq!(r["visibility"], "private");
    let e = post(&base, json!({"resource_type": "invoice", "group_id": fg})).await;
    assert_eq!(e.expect_error(400, "CROSS_SPACE_VIOLATION")["details"]["rule"], "resources_group_same_space");
    // Ids are instance-wide: a group or member that exists in another Space and one that exists nowhere must get
    // the same answer, or a tenant learns another tenant's ids.
    for (field, elsewhere) in [("group_id", fg.as_str().unwrap()), ("owner_member_id", "member_finance_reviewer")] {
        let exists = post(&base, json!({"resource_type": "invoice", field: elsewhere})).await;
        let missing = post(&base, json!({"resource_type": "invoice", field: unique("nowhere")})).await;
        assert_eq!(exists.status, missing.status, "{field}: {} / {}", exists.text, missing.text);
        assert_eq!(exists.body["error"]["code"], missing.body["error"]["code"], "{field}");
        assert_eq!(exists.body["error"]["message"], missing.body["error"]["message"], "{field}");
        assert_eq!(exists.body["error"]["details"], missing.body["error"]["details"], "{field}");
    }
    let e = post(&base, json!({"resource_type": "unregistered"})).await;
    assert_eq!(e.expect_error(404, "RESOURCE_TYPE_NOT_FOUND")["details"]["field"], "resource_type");
    post(&base, json!({"resource_type": "invoice", "metadata": [1]})).await.expect_error(400, "VALIDATION_FAILED");
    post(&base, json!({"resource_type": "invoice", "space_id": other})).await.expect_error(400, "VALIDATION_FAILED");

    assert_eq!(get(&format!("/api/v1/resources/invoice/{id}")).await.expect_ok(200)["id"], id);
    get(&format!("/api/v1/resources/contract/{id}")).await.expect_error(404, "RESOURCE_NOT_FOUND");
    assert_eq!(ids(get(&format!("{base}?resource_type=invoice")).await.expect_ok(200)), vec![id.to_string()]);
    assert_eq!(ids(get(&format!("/api/v1/resources?space_id={s}")).await.expect_ok(200)), vec![id.to_string()]);
    let p = patch(&format!("{base}/{id}"), json!({"display_name": "INV-9b"})).await.expect_ok(200).clone();
    assert_eq!(p["display_name"], "INV-9b");
    assert_eq!(post(&format!("{base}/{id}/archive"), json!({})).await.expect_ok(200)["status"], "archived");
    get(&format!("/api/v1/spaces/{other}/resources/{id}")).await.expect_error(404, "RESOURCE_NOT_FOUND");

    let e = post("/api/v1/resources", json!({"resource_type": "invoice"})).await;
    assert_eq!(e.expect_error(400, "VALIDATION_FAILED")["details"]["field"], "space_id");
    let x = post("/api/v1/resources", json!({"resource_type": "invoice", "space_id": other, "id": unique("inv")}))
        .await
        .expect_ok(201)
        .clone();
    assert_eq!(x["space_id"], other.as_str());
}

#[tokio::test]
async fn a_space_built_over_http_decides_by_its_grants() {
    let s = new_space().await;
    let user = unique("user_e2e");
    post("/api/v1/users", json!({"id": user, "email": format!("{user}@example.com")})).await.expect_ok(201);
    let member = post(&format!("/api/v1/spaces/{s}/members"), json!({"display_name": "Reviewer"})).await.expect_ok(201)
        ["id"]
        .clone();
    let binding = post(
        &format!("/api/v1/spaces/{s}/user-members"),
        json!({"user_id": user, "member_id": member, "relation_type": "login"}),
    )
    .await
    .expect_ok(201)["id"]
        .clone();
    let root =
        post(&format!("/api/v1/spaces/{s}/groups"), json!({"path": "finance"})).await.expect_ok(201)["id"].clone();
    let apac = post(&format!("/api/v1/spaces/{s}/groups"), json!({"path": "finance.apac", "parent_group_id": root}))
        .await
        .expect_ok(201)["id"]
        .clone();
    let role =
        post(&format!("/api/v1/spaces/{s}/roles"), json!({"key": "approver"})).await.expect_ok(201)["id"].clone();
    post(
        &format!("/api/v1/spaces/{s}/role-permissions"),
        json!({"role_id": role, "permission_id": "perm_invoice_approve_group_tree"}),
    )
    .await
    .expect_ok(201);
    let resource =
        post(&format!("/api/v1/spaces/{s}/resources"), json!({"resource_type": "invoice", "group_id": apac}))
            .await
            .expect_ok(201)["id"]
            .clone();

    let check = || {
        let body = json!({
            "actor": {"user_id": user, "member_id": member, "user_member_id": binding, "space_id": s},
            "resource_type": "invoice", "resource_id": resource, "action": "approve"
        });
        async move { post("/api/v1/authz/check", body).await.expect_ok(200).clone() }
    };
    let before = check().await;
    assert_eq!(before["deny_code"], "NO_MATCHING_PERMISSION");
    let grant = post(
        &format!("/api/v1/spaces/{s}/member-roles"),
        json!({"member_id": member, "role_id": role, "scope_anchor_group_id": root}),
    )
    .await
    .expect_ok(201)["id"]
        .clone();
    assert_eq!(check().await["decision"], "allow");
    post(&format!("/api/v1/spaces/{s}/member-roles/{}/revoke", grant.as_str().unwrap()), json!({}))
        .await
        .expect_ok(200);
    assert_eq!(check().await["deny_code"], "NO_MATCHING_PERMISSION");
}
