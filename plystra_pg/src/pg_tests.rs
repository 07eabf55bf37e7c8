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
                            let req = plystra_core::model::Request {
                                user_id: user_id.into(),
                                member_id: member_id.into(),
                                user_member_id: user_member_id.into(),
                                space_id: space_id.into(),
                                resource_type: resource_type.into(),
                                resource_id: resource_id.into(),
                                action: action.into(),
                                context: Default::default(),
                                ..Default::default()
                            };
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
}
