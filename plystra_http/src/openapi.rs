//! The OpenAPI 3.1 document, generated from the handlers' annotations and the route table, served at
//! /api/v1/openapi.json and committed as `plystra_http/openapi.json` (a test keeps the file current).

use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi as OpenApiDoc, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::routes::RouteDef;

#[derive(OpenApi)]
#[openapi(
    info(title = "Plystra Core API", version = "1.0.0",
         description = "Identity, authorization and audit core. Decisions run inside PostgreSQL (the plystra extension); this is its REST front."),
    tags(
        (name = "System", description = "Health, readiness, version, metrics"),
        (name = "Auth", description = "Password sessions and the caller's acting context"),
        (name = "Admin", description = "AdminGrants and API keys"),
        (name = "Authz", description = "Authorization decisions and their traces"),
        (name = "AuthZEN", description = "The OpenID AuthZEN Authorization API 1.0: evaluations, searches, PDP metadata"),
        (name = "Audit", description = "The append-only AuditLog"),
        (name = "Core", description = "Users, Spaces, Groups, Members, UserMembers, Roles, MemberRoles, Permissions, RolePermissions, Resources"),
        (name = "Registry", description = "Resource Registry: resource types, actions, mappings"),
    ),
    components(schemas(crate::error::ErrorEnvelope, crate::envelope::Pagination)),
    modifiers(&SecuritySchemes)
)]
pub struct ApiDoc;

/// The security scheme names operations refer to.
pub const SESSION: &str = "session";
pub const API_KEY: &str = "api_key";

/// The two credentials the front accepts (see `auth::credential`): a session's access token as a bearer token,
/// and an API key, in its own header or as a bearer token.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut OpenApiDoc) {
        let components = doc.components.get_or_insert_with(Default::default);
        let mut bearer = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build();
        bearer.description = Some(
            "`Authorization: Bearer ply_at_…`: a session's access token (POST /api/v1/auth/login). An API key is \
             also accepted here (`Authorization: Bearer ply_ak_…`), or as the whole header value \
             (`Authorization: ply_ak_…`, as AuthZEN policy enforcement points send it)."
                .into(),
        );
        components.add_security_scheme(SESSION, SecurityScheme::Http(bearer));
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Plystra-API-Key",
                "An API key (`ply_ak_…`), shown once when it is created (POST /api/v1/api-keys).",
            ))),
        );
    }
}

/// Which credentials an operation takes: none for public routes and for the two that present their own
/// (login with a password, refresh with a refresh token); a session only for the routes that act on the
/// caller's session; a session or an API key everywhere else.
fn credentials_for(access: crate::protection::Access, operation_id: &str) -> &'static [&'static str] {
    use crate::protection::Access;
    match (access, operation_id) {
        (Access::Public, _) | (Access::Own, "login" | "refresh_session") => &[],
        (Access::Own, "get_admin_me") | (Access::Admin(..) | Access::Decision(_), _) => &[SESSION, API_KEY],
        (Access::Own, _) => &[SESSION],
    }
}

/// Documents the credentials an operation takes and every error answer it can give, each with the error
/// envelope, so that the document lists what clients really receive. Errors the handler's annotation already
/// describes keep their description.
pub fn document_errors(def: &mut RouteDef) {
    let access = def.access;
    for item in def.route.1.paths.values_mut() {
        for (method, op) in [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("patch", &mut item.patch),
            ("delete", &mut item.delete),
        ] {
            let Some(op) = op else { continue };
            let id = op.operation_id.clone().unwrap_or_default();
            let schemes = credentials_for(access, &id);
            op.security = Some(if schemes.is_empty() {
                vec![SecurityRequirement::default()]
            } else {
                schemes.iter().map(|s| SecurityRequirement::new(*s, Vec::<String>::new())).collect()
            });
            let has_path_params = op.parameters.iter().flatten().any(|p| matches!(p.parameter_in, ParameterIn::Path));
            let writes = method != "get";
            let has_body = op.request_body.is_some();
            let mut errors: Vec<(&str, &str)> = vec![(
                "400",
                "VALIDATION_FAILED: a malformed path, query or body (details.field names it; details.allowed lists \
                 the values of a closed set)",
            )];
            if !schemes.is_empty() || id == "refresh_session" || id == "login" {
                errors.push(("401", "AUTHENTICATION_REQUIRED or SESSION_EXPIRED: no valid credential"));
            }
            if access.permission().is_some() {
                errors.push(("403", "ADMIN_PERMISSION_REQUIRED: the credential lacks the permission on this scope"));
            }
            if has_path_params || (writes && !schemes.is_empty()) {
                errors.push((
                    "404",
                    "<ENTITY>_NOT_FOUND: the row named in the path, or a row the body refers to (details.field names \
                     the field), does not exist",
                ));
            }
            if writes && matches!(access, crate::protection::Access::Admin(..)) {
                errors.push((
                    "409",
                    "<ENTITY>_CREATE_FAILED / _UPDATE_FAILED or a named rule: a conflict with stored rows",
                ));
            }
            if has_body || writes {
                errors.push(("413", "PAYLOAD_TOO_LARGE: a body over 1 MiB"));
                errors.push(("408", "REQUEST_TIMEOUT: the body did not arrive in time"));
            }
            if id == "login" {
                errors.push(("429", "LOGIN_LOCKED or LOGIN_THROTTLED: too many failed attempts"));
            }
            errors.push((
                "503",
                "DATABASE_UNAVAILABLE, NOT_READY, REQUEST_TIMEOUT or SERVER_BUSY: try again after Retry-After",
            ));
            for (status, description) in errors {
                op.responses.responses.entry(status.to_string()).or_insert_with(|| {
                    ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/json",
                            ContentBuilder::new().schema(Some(Ref::from_schema_name("ErrorEnvelope"))).build(),
                        )
                        .build()
                        .into()
                });
            }
        }
    }
}

/// Marks each operation with the admin permission it will require (`x-plystra-permission`), or public, and where
/// that permission is checked (`x-plystra-scope`).
pub fn annotate_access(def: &mut RouteDef) {
    let value = match def.access {
        crate::protection::Access::Admin(p, _) | crate::protection::Access::Decision(p) => serde_json::json!(p),
        crate::protection::Access::Own => serde_json::json!("own-credential"),
        crate::protection::Access::Public => serde_json::json!("public"),
    };
    // Where the permission is checked: the scope the route table says the seam finds (`protection::ScopeFrom`),
    // or the request's body as a whole for a decision.
    let scope = match def.access {
        crate::protection::Access::Admin(_, from) => Some(serde_json::json!(from.describe())),
        crate::protection::Access::Decision(_) => Some(serde_json::json!("body:request")),
        _ => None,
    };
    for item in def.route.1.paths.values_mut() {
        for op in
            [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
        {
            let op: &mut Operation = op;
            let mut ext = ExtensionsBuilder::new().add("x-plystra-permission", value.clone());
            if let Some(scope) = &scope {
                ext = ext.add("x-plystra-scope", scope.clone());
            }
            let ext = ext.build();
            match &mut op.extensions {
                Some(existing) => existing.merge(ext),
                None => op.extensions = Some(ext),
            }
        }
    }
}

/// Documents what each operation does to the database (`x-plystra-load`: read, write or decision) and the
/// consistency token: a write's success answers carry `Plystra-Consistency-Token`, and a read or decision
/// accepts it back to be answered by a replica that has replayed at least that far (see `replicas`).
pub fn document_consistency(def: &mut RouteDef) {
    use crate::replicas::Load;
    use utoipa::openapi::header::HeaderBuilder;
    use utoipa::openapi::path::ParameterBuilder;
    use utoipa::openapi::{ObjectBuilder, RefOr, Required, Type};
    let load = def.load;
    let string = || ObjectBuilder::new().schema_type(Type::String).pattern(Some("^pct1_[0-9a-f]{16}$")).build();
    for item in def.route.1.paths.values_mut() {
        for op in
            [&mut item.get, &mut item.post, &mut item.put, &mut item.patch, &mut item.delete].into_iter().flatten()
        {
            let op: &mut Operation = op;
            let ext = ExtensionsBuilder::new().add("x-plystra-load", serde_json::json!(load.name())).build();
            match &mut op.extensions {
                Some(existing) => existing.merge(ext),
                None => op.extensions = Some(ext),
            }
            match load {
                Load::Reads | Load::Decides => {
                    let parameter = ParameterBuilder::new()
                        .name("Plystra-Consistency-Token")
                        .parameter_in(ParameterIn::Header)
                        .required(Required::False)
                        .description(Some(
                            "Read-your-writes: the Plystra-Consistency-Token of an earlier write's answer, sent back \
                             unchanged. The read is then answered by a replica that has replayed at least that write, \
                             or by the primary. A malformed token is refused with 400 VALIDATION_FAILED.",
                        ))
                        .schema(Some(string()))
                        .build();
                    op.parameters.get_or_insert_with(Vec::new).push(parameter);
                }
                Load::Writes => {
                    for (status, response) in op.responses.responses.iter_mut() {
                        if !status.starts_with('2') {
                            continue;
                        }
                        if let RefOr::T(response) = response {
                            response.headers.insert(
                                "Plystra-Consistency-Token".into(),
                                HeaderBuilder::new()
                                    .schema(string())
                                    .description(Some(
                                        "Opaque: the primary's position after this write committed. Send it back \
                                         on a later read to see this write (read-your-writes).",
                                    ))
                                    .build(),
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The decision contract's rules that its types' fields cannot state (the extension's request parser,
/// `plystra_core::request`, enforces them), added to its schemas wherever they are used:
/// - an actor is named by its User alone (`user_id`, optionally `space_id`: the extension resolves the binding),
///   or by the whole tuple (`user_id`, `member_id`, `space_id` and `user_member_id` or its alias `binding_id`),
///   which inline actor metadata also requires;
/// - a decision and each batch item name the action, and the resource's type and id (flat, or in `resource`).
pub fn state_decision_rules(doc: &mut OpenApiDoc) {
    use crate::api::crud::schema::{all_of, any_set_of};
    use plystra_core::request::{ACTOR_ID_FIELDS, INLINE_ACTOR_FIELDS};
    use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
    use utoipa::openapi::{RefOr, Schema};

    let text = || ObjectBuilder::new().schema_type(Type::String).min_length(Some(1));
    let absent = || ObjectBuilder::new().schema_type(Type::Null);
    // The field given as a non-empty string, flat or (`nested`) as `resource.<nested>`.
    let resource_part = |flat: &str, nested: &str| {
        let in_resource = ObjectBuilder::new().required(nested).property(nested, text());
        let any = AnyOfBuilder::new()
            .description(Some(format!("{flat}, or resource.{nested}")))
            .item(ObjectBuilder::new().required(flat).property(flat, text()))
            .item(ObjectBuilder::new().required("resource").property("resource", in_resource));
        Schema::AnyOf(any.build())
    };
    // An `anyOf` of one, not a bare object: client generators merge an `allOf`'s objects into one model and refuse
    // a nullable field narrowed to a non-null one (openapi-python-client dropped the check routes so); a rule
    // inside an `anyOf` they leave to validation.
    let action = || {
        let any = AnyOfBuilder::new()
            .description(Some("the action"))
            .item(ObjectBuilder::new().required("action").property("action", text()));
        Schema::AnyOf(any.build())
    };
    let by_user = ACTOR_ID_FIELDS
        .iter()
        .filter(|f| !matches!(**f, "user_id" | "space_id"))
        .chain(INLINE_ACTOR_FIELDS.iter())
        .fold(ObjectBuilder::new().description(Some("by its User alone")), |o, f| o.property(*f, absent()));
    let tuple = all_of(
        ObjectBuilder::new()
            .description(Some("by the whole tuple"))
            .required("member_id")
            .required("space_id")
            .property("member_id", text())
            .property("space_id", text())
            .into(),
        [any_set_of("user_member_id, or its alias binding_id", &[&["user_member_id"], &["binding_id"]])],
    );
    let actor_naming = Schema::AnyOf(
        AnyOfBuilder::new().description(Some("how the actor is named")).item(by_user).item(tuple).build(),
    );

    let Some(components) = doc.components.as_mut() else { return };
    let mut add = |name: &str, rules: Vec<Schema>| {
        if let Some(schema) = components.schemas.get_mut(name) {
            *schema = all_of(schema.clone(), rules);
        }
    };
    add("AuthzActor", vec![actor_naming]);
    add("AuthzRequest", vec![action(), resource_part("resource_type", "type"), resource_part("resource_id", "id")]);
    add("AuthzBatchItem", vec![action(), resource_part("resource_type", "type"), resource_part("resource_id", "id")]);
    if let Some(RefOr::T(Schema::AllOf(request))) = components.schemas.get_mut("AuthzRequest") {
        request.description = Some(
            "A decision: who acts (`actor`: required with an API key; a session may leave it out and acts through \
             its active binding), on which resource, doing which action."
                .into(),
        );
    }
}

/// The document as served and committed: pretty JSON with a trailing newline, each operation's extensions in
/// name order.
pub fn to_pretty_json(doc: &OpenApiDoc) -> String {
    let mut s = extensions_in_order(&doc.to_pretty_json().unwrap_or_default());
    s.push('\n');
    s
}

/// utoipa keeps an operation's extensions in a `HashMap`, which writes them in another order on each run; the
/// committed document must not change when nothing did. Each run of consecutive one-line `"x-…": "…"` members at
/// one indentation is put in name order (the commas moved so that only the last member may lack one).
fn extensions_in_order(json: &str) -> String {
    let one_line_extension = |line: &str| {
        let t = line.trim_start();
        t.starts_with("\"x-") && (t.ends_with("\",") || t.ends_with('"'))
    };
    let indent = |line: &str| line.len() - line.trim_start().len();
    let lines: Vec<&str> = json.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        if !one_line_extension(lines[i]) {
            out.push(lines[i].to_string());
            i += 1;
            continue;
        }
        let mut j = i;
        while j < lines.len() && one_line_extension(lines[j]) && indent(lines[j]) == indent(lines[i]) {
            j += 1;
        }
        let last_has_comma = lines[j - 1].ends_with(',');
        let mut members: Vec<&str> = lines[i..j].iter().map(|l| l.strip_suffix(',').unwrap_or(l)).collect();
        members.sort_unstable();
        let count = members.len();
        for (k, member) in members.into_iter().enumerate() {
            let comma = if k + 1 < count || last_has_comma { "," } else { "" };
            out.push(format!("{member}{comma}"));
        }
        i = j;
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    /// The decision contract's rules reach the schemas they belong to (a renamed schema would lose them
    /// silently; tests/contract_rules.py checks what they say against the extension's parser).
    #[test]
    fn the_decision_rules_are_in_the_document() {
        let doc = serde_json::to_value(crate::app::openapi_document()).expect("the document serialises");
        for name in ["AuthzActor", "AuthzRequest", "AuthzBatchItem"] {
            let all_of = doc["components"]["schemas"][name]["allOf"].as_array().cloned().unwrap_or_default();
            assert!(all_of.len() >= 2, "{name} carries no rule: {}", doc["components"]["schemas"][name]);
        }
    }

    #[test]
    fn extensions_are_written_in_name_order() {
        let shuffled = "{\n  \"get\": {\n    \"x-b\": \"2\",\n    \"x-c\": \"3\",\n    \"x-a\": \"1\"\n  },\n  \"x-z\": \"9\",\n  \"x-y\": \"8\",\n  \"n\": 1\n}";
        let ordered = super::extensions_in_order(shuffled);
        assert_eq!(
            ordered,
            "{\n  \"get\": {\n    \"x-a\": \"1\",\n    \"x-b\": \"2\",\n    \"x-c\": \"3\"\n  },\n  \"x-y\": \"8\",\n  \"x-z\": \"9\",\n  \"n\": 1\n}"
        );
        assert!(serde_json::from_str::<serde_json::Value>(&ordered).is_ok());
        // The whole document, twice: the same text.
        let doc = crate::app::openapi_document();
        assert_eq!(super::to_pretty_json(&doc), super::to_pretty_json(&crate::app::openapi_document()));
    }
}
