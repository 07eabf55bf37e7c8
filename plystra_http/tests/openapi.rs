//! The OpenAPI document: generated from the code, served, committed, and in step with the router.
//! Regenerate the committed file with `UPDATE_OPENAPI=1 cargo test -p plystra_http --test openapi`.

mod common;

use std::collections::BTreeSet;

use common::*;
use serde_json::Value;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn generated() -> Value {
    serde_json::from_str(&plystra_http::openapi::to_pretty_json(&plystra_http::app::openapi_document())).unwrap()
}

fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for m in METHODS {
            if item.get(m).is_some() {
                out.insert((m.to_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_served_document_is_openapi_3_1_and_matches_the_committed_file() {
    let a = get("/api/v1/openapi.json").await;
    assert_eq!(a.status, 200);
    let served = a.body.clone();
    assert!(served["openapi"].as_str().unwrap().starts_with("3.1"), "{}", served["openapi"]);
    assert_eq!(served, generated());
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(COMMITTED, plystra_http::openapi::to_pretty_json(&plystra_http::app::openapi_document()))
            .unwrap();
    }
    let committed: Value =
        serde_json::from_str(&std::fs::read_to_string(COMMITTED).expect("plystra_http/openapi.json is committed"))
            .expect("the committed file is JSON");
    assert!(
        committed == served,
        "plystra_http/openapi.json is stale: run `UPDATE_OPENAPI=1 cargo test -p plystra_http --test openapi` and commit it"
    );
}

#[test]
fn the_route_table_and_the_document_list_the_same_operations() {
    let mut table = BTreeSet::new();
    for def in plystra_http::routes::table() {
        for endpoint in def.endpoints() {
            assert!(table.insert(endpoint.clone()), "{endpoint:?} is in the route table twice");
        }
    }
    let doc = operations(&generated());
    let missing: Vec<_> = table.difference(&doc).collect();
    let extra: Vec<_> = doc.difference(&table).collect();
    assert!(missing.is_empty(), "routes missing from the document: {missing:?}");
    assert!(extra.is_empty(), "documented operations not in the route table: {extra:?}");
}

#[test]
fn every_route_declares_its_access() {
    let mut public = BTreeSet::new();
    for def in plystra_http::routes::table() {
        for (method, path) in def.endpoints() {
            if def.access == plystra_http::protection::Access::Own {
                // /admin/me: any credential reads its own standing (security review F17).
                assert!(
                    path.starts_with("/api/v1/auth/")
                        || path.starts_with("/api/v1/actor/")
                        || path == "/api/v1/admin/me",
                    "{path}"
                );
                continue;
            }
            match def.access.permission() {
                None => {
                    public.insert(path);
                }
                Some(p) => {
                    let (domain, action) =
                        p.split_once(':').unwrap_or_else(|| panic!("{method} {path}: bad permission {p}"));
                    assert!(
                        !domain.is_empty() && ["read", "manage", "check", "create", "revoke"].contains(&action),
                        "{method} {path}: {p}"
                    );
                    if method == "GET" {
                        assert!(action == "read", "{method} {path} needs a :read permission, has {p}");
                    }
                }
            }
        }
    }
    // And the AuthZEN metadata document, which the standard publishes for anyone to discover the endpoints.
    let expected: BTreeSet<String> =
        ["/api/v1/health", "/api/v1/ready", "/api/v1/version", "/metrics", "/.well-known/authzen-configuration"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    assert_eq!(public, expected, "only v1.0's public routes and the AuthZEN metadata are public");
    // The document says it too.
    let doc = generated();
    assert_eq!(doc["paths"]["/api/v1/users"]["get"]["x-plystra-permission"], "users:read");
    assert_eq!(doc["paths"]["/api/v1/health"]["get"]["x-plystra-permission"], "public");
}

/// The route table says what each route does to the database (a read replica may answer only a read), and the
/// document says it too, with the consistency token on reads' requests and writes' answers.
#[test]
fn every_route_declares_what_it_does_to_the_database() {
    use plystra_http::protection::Access;
    use plystra_http::replicas::Load;
    let doc = generated();
    for def in plystra_http::routes::table() {
        for (method, path) in def.endpoints() {
            match def.access {
                Access::Decision(_) => assert_eq!(def.load, Load::Decides, "{method} {path}: a decision"),
                Access::Admin(p, _) if !p.ends_with(":read") => {
                    assert_eq!(def.load, Load::Writes, "{method} {path} holds {p}: it writes")
                }
                _ => assert_ne!(def.load, Load::Decides, "{method} {path}: not a decision route"),
            }
            if method == "GET" {
                assert_eq!(def.load, Load::Reads, "{method} {path}: a GET writes nothing");
            }
            let op = &doc["paths"][&path][method.to_lowercase()];
            assert_eq!(op["x-plystra-load"], def.load.name(), "{method} {path}");
            let takes_token = op["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == "Plystra-Consistency-Token" && p["in"] == "header"));
            assert_eq!(takes_token, def.load != Load::Writes, "{method} {path}: the token parameter");
            let gives_token =
                op["responses"].as_object().unwrap().iter().any(|(status, r)| {
                    status.starts_with('2') && r["headers"]["Plystra-Consistency-Token"].is_object()
                });
            assert_eq!(gives_token, def.load == Load::Writes, "{method} {path}: the token answer header");
        }
    }
    // The session routes that write (a login, a refresh rotating its tokens, a logout, a switch) are writes.
    for path in ["/api/v1/auth/login", "/api/v1/auth/refresh", "/api/v1/auth/logout", "/api/v1/actor/switch-member"] {
        assert_eq!(doc["paths"][path]["post"]["x-plystra-load"], "write", "{path}");
    }
}

#[tokio::test]
async fn the_router_serves_exactly_the_documented_operations() {
    let doc = generated();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete =
            path.split('/').map(|seg| if seg.starts_with('{') { "probe_x" } else { seg }).collect::<Vec<_>>().join("/");
        for m in METHODS {
            let a = send(&m.to_uppercase(), &concrete, None).await;
            if item.get(m).is_some() {
                assert_ne!(a.status, 405, "{m} {path} is documented but the router refuses the method");
                assert_ne!(a.error_code(), "ROUTE_NOT_FOUND", "{m} {path} is documented but not routed");
            } else {
                assert_eq!(a.status, 405, "{m} {path} is routed but not documented: {}", a.text);
            }
        }
    }
}
