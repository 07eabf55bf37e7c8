//! `#[pg_test]`s: the extension inside a real backend (started by `cargo pgrx test`).

#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use pgrx::prelude::*;
    use serde_json::{json, Value};

    fn check(doc: Value) -> Value {
        Spi::get_one_with_args::<pgrx::JsonB>("SELECT plystra.check($1)", &[pgrx::JsonB(doc).into()])
            .expect("check runs")
            .expect("check returns a document")
            .0
    }

    #[pg_test]
    fn unknown_actor_is_an_audited_deny() {
        let out = check(json!({
            "actor": {"user_id": "u", "member_id": "m", "user_member_id": "b", "space_id": "s"},
            "resource_type": "invoice", "resource_id": "i", "action": "read"
        }));
        assert_eq!(out["deny_code"], "ACTOR_NOT_FOUND");
        let id = out["audit_log_id"].as_str().expect("an audit row was written").to_string();
        let stored =
            Spi::get_one_with_args::<String>("SELECT deny_code FROM plystra.audit_logs WHERE id = $1", &[id.into()]);
        assert_eq!(stored, Ok(Some("ACTOR_NOT_FOUND".to_string())));
    }

    #[pg_test]
    #[should_panic(expected = "invalid request: actor.space_id must be a string")]
    fn malformed_request_names_the_field() {
        check(json!({
            "actor": {"user_id": "u", "member_id": "m", "user_member_id": "b", "space_id": 7},
            "resource_type": "invoice", "resource_id": "i", "action": "read"
        }));
    }

    #[pg_test]
    fn ledger_matches_bundled_migrations() {
        let mismatches = Spi::get_one::<i64>(
            "SELECT count(*) FROM plystra.bundled_migrations() b FULL JOIN plystra.schema_migrations l USING (version) \
             WHERE b.checksum IS DISTINCT FROM l.checksum",
        );
        assert_eq!(mismatches, Ok(Some(0)));
    }

    #[pg_test]
    fn the_writer_takes_the_sealers_lock_as_the_function_does() {
        // The audit writer runs the lock's statement itself (not through the SQL function): one rule, so the two
        // texts must stay equal, or a writer and a seal_audit caller could seal the same chain at once.
        let body = Spi::get_one::<String>(
            "SELECT prosrc FROM pg_proc WHERE oid = 'plystra.audit_sealer_lock()'::regprocedure",
        )
        .expect("the function exists")
        .expect("it has a body");
        let body = body.trim().trim_end_matches(';');
        assert_eq!(body, format!("SELECT {}", crate::audit_append::SEALER_LOCK_EXPR));
    }

    #[pg_test]
    fn the_plan_is_kept_across_calls() {
        // The second call reuses the backend's saved plan; both answer the same.
        let doc = json!({
            "actor": {"user_id": "u", "member_id": "m", "user_member_id": "b", "space_id": "s"},
            "resource_type": "invoice", "resource_id": "i", "action": "read"
        });
        assert_eq!(check(doc.clone())["deny_code"], check(doc)["deny_code"]);
    }

    #[pg_test]
    fn rust_and_sql_agree_on_sensitive_keys() {
        // The trace redaction (Rust) and the management-audit redaction (plystra.sensitive_key) are one rule.
        let probes = [
            "password",
            "password_hash",
            "Password_Changed_At",
            "client_secret",
            "AccessToken",
            "refresh_token",
            "api_key",
            "X_API_KEY",
            "authorization",
            "Authorization_Header",
            "key_hash",
            "number",
            "region",
            "email",
            "apikey",
            "keys",
            "hash",
            "author",
            "",
        ];
        for key in probes {
            let sql = Spi::get_one_with_args::<bool>("SELECT plystra.sensitive_key($1)", &[key.into()]);
            assert_eq!(sql, Ok(Some(plystra_core::redact::is_sensitive_key(key))), "{key:?}");
        }
    }

    #[pg_test]
    fn without_the_writer_decisions_are_audited_in_the_transaction_and_sealed_later() {
        // `cargo pgrx test` does not preload the library: no audit writer serves this database.
        assert_eq!(Spi::get_one::<bool>("SELECT plystra.audit_writer_active()"), Ok(Some(false)));
        let out = check(json!({
            "actor": {"user_id": "u2", "member_id": "m2", "user_member_id": "b2", "space_id": "s2"},
            "resource_type": "invoice", "resource_id": "i", "action": "read"
        }));
        let id = out["audit_log_id"].as_str().expect("an audit row was written").to_string();
        let unsealed = Spi::get_one_with_args::<bool>(
            "SELECT row_hash IS NULL FROM plystra.audit_logs WHERE id = $1",
            &[id.clone().into()],
        );
        assert_eq!(unsealed, Ok(Some(true)), "rows written in a transaction are sealed later");
        let sealed = Spi::get_one::<i32>("SELECT plystra.seal_audit()").expect("seal runs").expect("a count");
        assert!(sealed >= 1);
        let broken = Spi::get_one::<i64>(
            "SELECT count(*) FROM plystra.verify_audit_chain() WHERE broken_at_position IS NOT NULL",
        );
        assert_eq!(broken, Ok(Some(0)));
        let position =
            Spi::get_one_with_args::<i64>("SELECT chain_position FROM plystra.audit_logs WHERE id = $1", &[id.into()]);
        assert!(matches!(position, Ok(Some(p)) if p >= 1));
    }

    /// The demo plus a second role held through several grants, so that ordering, a Role read once for many
    /// grants, a NULL anchor and permissions of several scopes all occur.
    const VARIED_DATA: &str = "
        INSERT INTO plystra.roles (id, space_id, key, name) VALUES ('role_reader', 'space_acme', 'a_reader', 'Reader');
        INSERT INTO plystra.role_permissions (id, role_id, permission_id) VALUES
            ('rp_reader_read_tree', 'role_reader', 'perm_invoice_read_group_tree'),
            ('rp_reader_read_self', 'role_reader', 'perm_invoice_read_self'),
            ('rp_reader_approve', 'role_reader', 'perm_invoice_approve_group_tree'),
            ('rp_approver_reject', 'role_finance_approver', 'perm_invoice_reject_group_tree');
        INSERT INTO plystra.member_roles (id, member_id, role_id, space_id, scope_anchor_group_id) VALUES
            ('mr_reviewer_reader_legal', 'member_finance_reviewer', 'role_reader', 'space_acme', 'group_legal'),
            ('mr_reviewer_reader_apac', 'member_finance_reviewer', 'role_reader', 'space_acme', 'group_finance_apac'),
            ('mr_creator_reader', 'member_invoice_creator', 'role_reader', 'space_acme', NULL);
        INSERT INTO plystra.resources (id, resource_type, space_id, group_id, owner_member_id, metadata) VALUES
            ('invoice_003', 'invoice', 'space_acme', 'group_finance_emea', 'member_finance_reviewer', '{\"n\": 3}');
    ";

    #[pg_test]
    fn the_probe_loader_reads_exactly_what_the_sql_loader_read() {
        let demo = include_str!("../../sql/demo.sql").replace("BEGIN;", "").replace("COMMIT;", "");
        Spi::run(&demo).expect("the demo loads");
        Spi::run(VARIED_DATA).expect("the varied data loads");
        // Each state is compared, then the next change is applied on top of it.
        let changes = [
            "",
            "UPDATE plystra.groups SET status = 'inactive' WHERE id = 'group_finance_apac'",
            "UPDATE plystra.resources SET status = 'archived' WHERE id = 'invoice_002'",
            "UPDATE plystra.role_permissions SET deleted_at = now() WHERE id = 'rp_reader_read_self'",
            "UPDATE plystra.member_roles SET status = 'inactive' WHERE id = 'mr_reviewer_reader_legal'",
            "UPDATE plystra.user_members SET expires_at = '2999-01-01T12:34:56.789Z' \
             WHERE id = 'um_bob_finance_reviewer'",
            "UPDATE plystra.roles SET status = 'inactive' WHERE id = 'role_finance_approver'",
            "UPDATE plystra.permissions SET status = 'inactive' WHERE id = 'perm_invoice_read_group_tree'",
            "UPDATE plystra.groups SET deleted_at = now() WHERE id = 'group_legal'",
            "UPDATE plystra.users SET deleted_at = now() WHERE id = 'user_bob'",
            "UPDATE plystra.members SET status = 'inactive' WHERE id = 'member_invoice_creator'",
        ];
        let actors = [
            ("user_alice", "member_finance_reviewer", "um_alice_finance_reviewer", "space_acme"),
            ("user_bob", "member_finance_reviewer", "um_bob_finance_reviewer", "space_acme"),
            ("user_alice", "member_finance_reviewer", "um_alice_finance_reviewer_revoked", "space_acme"),
            ("user_alice", "member_finance_reviewer", "um_alice_finance_reviewer_expired", "space_acme"),
            ("user_alice", "member_invoice_creator", "um_bob_finance_reviewer", "space_other"),
            ("nobody", "no_member", "no_binding", "no_space"),
        ];
        let mut compared = 0;
        for change in changes {
            if !change.is_empty() {
                Spi::run(change).expect(change);
            }
            for (user_id, member_id, user_member_id, space_id) in actors {
                for resource_type in ["invoice", "contract"] {
                    for resource_id in ["invoice_001", "invoice_002", "invoice_003", "missing"] {
                        for action in ["read", "approve", "reject", "create", "delete", "fly"] {
                            let actor = (user_id, member_id, user_member_id, space_id);
                            let req = plystra_core::model::Request::about(actor, resource_type, resource_id, action);
                            for with_metadata in [false, true] {
                                let mut by_sql = Spi::connect(|client| {
                                    crate::loader_oracle::load_context_by_sql(client, &req, with_metadata)
                                });
                                if !with_metadata {
                                    // Only a trace shows the mapping: a decision that builds none skips it.
                                    by_sql.registry.mapping = None;
                                }
                                let by_probe = crate::loader::load_context(&req, with_metadata);
                                // Everything, the clock included (both read the statement's start time).
                                assert_eq!(by_probe, by_sql, "after {change:?}: {req:?}");
                                compared += 1;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(compared, 11 * 6 * 2 * 4 * 6 * 2);
    }

    /// The gate places a usual request's objects from the decision's loaded context, and probes only what the
    /// context lacks (it holds live rows only). Placed both ways, in every data state below (each change on top
    /// of the last: rows archived, made inactive, deleted, a resource filed under another Space's group, a
    /// binding and a member moved to another Space), every request must be placed the same.
    #[pg_test]
    fn the_gate_places_a_request_from_its_loaded_context_as_its_probes_do() {
        let demo = include_str!("../../sql/demo.sql").replace("BEGIN;", "").replace("COMMIT;", "");
        Spi::run(&demo).expect("the demo loads");
        Spi::run(VARIED_DATA).expect("the varied data loads");
        Spi::run(
            "INSERT INTO plystra.spaces (id, name, slug, type) VALUES ('space_beta', 'Beta', 'beta', 'custom');
             INSERT INTO plystra.groups (id, space_id, name, display_name, path)
                 VALUES ('group_beta', 'space_beta', 'B', 'B', 'beta');
             INSERT INTO plystra.members (id, space_id, display_name, member_type)
                 VALUES ('member_beta', 'space_beta', 'Beta', 'human');
             INSERT INTO plystra.user_members (id, user_id, member_id, space_id, relation_type)
                 VALUES ('um_alice_beta', 'user_alice', 'member_beta', 'space_beta', 'login');
             INSERT INTO plystra.resources (id, resource_type, space_id, group_id)
                 VALUES ('invoice_beta', 'invoice', 'space_beta', 'group_beta');",
        )
        .expect("a second Space loads");
        let changes = [
            "",
            "UPDATE plystra.resources SET status = 'archived' WHERE id = 'invoice_002'",
            "UPDATE plystra.resources SET deleted_at = now() WHERE id = 'invoice_003'",
            "UPDATE plystra.groups SET status = 'inactive' WHERE id = 'group_finance_apac'",
            "UPDATE plystra.groups SET deleted_at = now() WHERE id = 'group_legal_emea'",
            "UPDATE plystra.user_members SET deleted_at = now() WHERE id = 'um_bob_finance_reviewer'",
            "UPDATE plystra.members SET deleted_at = now() WHERE id = 'member_invoice_creator'",
            // What the schema's triggers refuse, as a restore or a replica could still hold it.
            "SET LOCAL session_replication_role = replica;
             UPDATE plystra.resources SET group_id = 'group_beta' WHERE id = 'invoice_001';
             UPDATE plystra.user_members SET space_id = 'space_beta' WHERE id = 'um_alice_finance_reviewer';
             UPDATE plystra.members SET space_id = 'space_beta' WHERE id = 'member_finance_reviewer';
             SET LOCAL session_replication_role = origin",
        ];
        let actors = [
            ("user_alice", "member_finance_reviewer", "um_alice_finance_reviewer", "space_acme"),
            ("user_bob", "member_finance_reviewer", "um_bob_finance_reviewer", "space_acme"),
            ("user_alice", "member_finance_reviewer", "um_alice_finance_reviewer_revoked", "space_acme"),
            ("user_alice", "member_beta", "um_alice_beta", "space_beta"),
            ("user_alice", "member_invoice_creator", "um_alice_beta", "space_acme"),
            ("nobody", "no_member", "no_binding", "no_space"),
        ];
        let (mut compared, mut from_context) = (0, 0);
        for change in changes {
            if !change.is_empty() {
                Spi::run(change).expect(change);
            }
            for (user_id, member_id, user_member_id, space_id) in actors {
                for resource_type in ["invoice", "contract"] {
                    for resource_id in ["invoice_001", "invoice_002", "invoice_003", "invoice_beta", "missing"] {
                        let actor = (user_id, member_id, user_member_id, space_id);
                        let req = plystra_core::model::Request::about(actor, resource_type, resource_id, "read");
                        let ctx = crate::loader::load_context(&req, false);
                        let args = (Some(resource_type), Some(resource_id), Some(user_member_id), Some(member_id));
                        let probed = crate::gate::placement(args.0, args.1, args.2, args.3, None);
                        let placed = crate::gate::placement(args.0, args.1, args.2, args.3, Some(&ctx));
                        assert_eq!(placed, probed, "after {change:?}: {req:?}");
                        compared += 1;
                        from_context += usize::from(ctx.target.is_some() && ctx.actor.user_member.is_some());
                    }
                }
            }
        }
        assert_eq!(compared, 8 * 6 * 2 * 5);
        assert!(from_context > 50, "the context placed {from_context} requests: the comparison must cover it");
    }

    /// The gate reads a credential by index probes (`credential::read_by_probes`); its statements stay as the
    /// oracle. Every credential below is read both ways in every data state (each change applied on top of the
    /// last), and the answers must be equal: the same live credential or none, and the same admin grants.
    #[pg_test]
    fn the_gates_probes_read_credentials_as_its_statements_do() {
        use crate::credential::{read, read_by_probes, Credential};
        let demo = include_str!("../../sql/demo.sql").replace("BEGIN;", "").replace("COMMIT;", "");
        Spi::run(&demo).expect("the demo loads");
        Spi::run(
            "INSERT INTO plystra.users (id, email) VALUES ('u_o1', 'o1@example.com'), ('u_o2', 'o2@example.com'),
                 ('u_o3', 'o3@example.com');
             INSERT INTO plystra.spaces (id, name) VALUES ('space_o', 'O');
             INSERT INTO plystra.groups (id, space_id, name, path) VALUES ('group_o', 'space_o', 'O', 'o');
             INSERT INTO plystra.admin_grants (id, user_id, level, permission_key, space_id, group_id, expires_at) VALUES
                 ('ag_o1', 'u_o1', 'instance_admin', 'authz:check', NULL, NULL, NULL),
                 ('ag_o2', 'u_o1', 'space_admin', 'users:read', 'space_acme', NULL, now() + interval '1 hour'),
                 ('ag_o3', 'u_o1', 'group_admin', 'authz:check', NULL, 'group_finance', NULL),
                 ('ag_o4', 'u_o1', 'group_admin', 'authz:read', NULL, 'group_finance_apac', NULL),
                 ('ag_o5', 'u_o1', 'space_admin', 'authz:check', 'space_acme', NULL, now() - interval '1 second'),
                 ('ag_o6', 'u_o2', 'instance_super_admin', '*', NULL, NULL, NULL),
                 ('ag_o7', 'u_o3', 'group_admin', 'authz:check', NULL, 'group_legal', NULL),
                 -- The instance keeps an active super admin whatever the changes below do to u_o2's.
                 ('ag_keep', 'user_alice', 'instance_super_admin', '*', NULL, NULL, NULL);
             INSERT INTO plystra.sessions (id, user_id, access_token_hash, refresh_token_hash, expires_at,
                                           refresh_expires_at, active_space_id, active_member_id, active_user_member_id)
             VALUES ('ses_o1', 'u_o1', 'h_ses1', 'r_ses1', now() + interval '1 hour', now() + interval '1 day',
                     'space_acme', 'member_finance_reviewer', 'um_alice_finance_reviewer'),
                    ('ses_o2', 'u_o2', 'h_ses2', 'r_ses2', now() + interval '1 hour', now() + interval '1 day',
                     NULL, NULL, NULL),
                    ('ses_o3', 'u_o3', 'h_ses3', 'r_ses3', now() - interval '1 second', now() + interval '1 day',
                     NULL, NULL, NULL),
                    ('ses_o4', 'u_o1', 'h_ses4', 'r_ses4', now() + interval '1 hour', now() + interval '1 day',
                     NULL, NULL, NULL);
             INSERT INTO plystra.api_keys (id, name, key_prefix, key_hash, level, space_id, group_id, permission_keys,
                                           created_by_user_id, expires_at) VALUES
                 ('ak_o1', 'k1', 'p1', 'h_ak1', 'instance', NULL, NULL, '[\"authz:check\"]', NULL, NULL),
                 ('ak_o2', 'k2', 'p2', 'h_ak2', 'instance', NULL, NULL, '[\"authz:check\", \"users:read\"]', 'u_o1', NULL),
                 ('ak_o3', 'k3', 'p3', 'h_ak3', 'space', 'space_acme', NULL, '[\"authz:check\"]', 'u_o2',
                  now() + interval '1 hour'),
                 ('ak_o4', 'k4', 'p4', 'h_ak4', 'group', NULL, 'group_finance', '[\"authz:check\"]', 'u_o3', NULL),
                 ('ak_o5', 'k5', 'p5', 'h_ak5', 'group', NULL, 'group_finance_apac', '[]', 'u_o1', NULL),
                 ('ak_o6', 'k6', 'p6', 'h_ak6', 'instance', NULL, NULL, '[\"authz:check\"]', 'u_o1',
                  now() - interval '1 second'),
                 ('ak_o7', 'k7', 'p7', 'h_ak7', 'space', 'space_o', NULL, '[\"authz:check\"]', 'u_o2', NULL),
                 ('ak_o8', 'k8', 'p8', 'h_ak8', 'group', NULL, 'group_o', '[\"authz:check\"]', 'u_o2', NULL);",
        )
        .expect("the credentials load");
        let mut credentials: Vec<Value> = ["h_ses1", "h_ses2", "h_ses3", "h_ses4", "h_none"]
            .iter()
            .map(|h| json!({"session_token_hashes": ["h_other", h]}))
            .collect();
        for key in 1..=9 {
            credentials.push(json!({"api_key_id": format!("ak_o{key}"), "api_key_hashes": [format!("h_ak{key}")]}));
            credentials.push(json!({"api_key_id": format!("ak_o{key}"), "api_key_hashes": ["h_ak9", "h_ses1"]}));
        }
        let changes = [
            "",
            "UPDATE plystra.spaces SET status = 'disabled' WHERE id = 'space_o'",
            "UPDATE plystra.spaces SET status = 'active', deleted_at = now() WHERE id = 'space_o'",
            "UPDATE plystra.spaces SET deleted_at = NULL WHERE id = 'space_o'",
            "UPDATE plystra.admin_grants SET status = 'revoked', revoked_at = now() WHERE id = 'ag_o1'",
            "UPDATE plystra.admin_grants SET deleted_at = now() WHERE id = 'ag_o3'",
            "UPDATE plystra.admin_grants SET status = 'inactive' WHERE id = 'ag_o6'",
            "UPDATE plystra.groups SET deleted_at = now() WHERE id = 'group_finance_apac'",
            "UPDATE plystra.users SET status = 'disabled' WHERE id = 'u_o3'",
            "UPDATE plystra.users SET deleted_at = now() WHERE id = 'u_o2'",
            "UPDATE plystra.sessions SET revoked_at = now() WHERE id = 'ses_o4'",
            "UPDATE plystra.api_keys SET status = 'revoked', revoked_at = now() WHERE id = 'ak_o2'",
            "UPDATE plystra.api_keys SET deleted_at = now() WHERE id = 'ak_o3'",
            "UPDATE plystra.api_keys SET status = 'inactive' WHERE id = 'ak_o1'",
            "UPDATE plystra.users SET status = 'disabled' WHERE id = 'u_o1'",
        ];
        // The statement's session carries its User's e-mail and status and its expiry times as text, which the
        // gate's reading leaves out.
        let comparable = |found: Option<(Credential, Vec<plystra_core::admin::Holding>)>| {
            found.map(|(mut credential, mut grants)| {
                if let Credential::Session { email, user_status, expires_at, refresh_expires_at, .. } = &mut credential
                {
                    (*email, *user_status, *expires_at, *refresh_expires_at) = (None, None, None, None);
                }
                grants.sort_by(|a, b| a.id.cmp(&b.id));
                (credential, grants)
            })
        };
        let (mut compared, mut live, mut granted) = (0, 0, 0);
        for change in changes {
            if !change.is_empty() {
                Spi::run(change).expect("the change applies");
            }
            for credential in &credentials {
                let by_statement = comparable(read(credential, "test", true));
                let by_probes = comparable(read_by_probes(credential, "test"));
                assert_eq!(by_probes, by_statement, "{credential} after {change:?}");
                compared += 1;
                live += usize::from(by_statement.is_some());
                granted += by_statement.map_or(0, |(_, grants)| grants.len());
            }
        }
        assert_eq!(compared, changes.len() * credentials.len());
        // The data reaches both answers and grants (the comparison is not only of Nones).
        assert!(live > 30 && granted > 30, "live {live}, granted {granted}");
    }
}
