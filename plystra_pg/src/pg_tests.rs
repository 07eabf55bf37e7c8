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
}
