-- Waits up to 20 s for the audit writer to serve this database (it (re)connects a couple of seconds after the
-- database is (re)created), then asserts it does: one pgTAP assertion. Include with \ir helpers/await_audit_writer.sql.
DO $$
BEGIN
    FOR i IN 1 .. 200 LOOP
        EXIT WHEN plystra.audit_writer_active();
        PERFORM pg_sleep(0.1);
    END LOOP;
END $$;
SELECT ok(plystra.audit_writer_active(), 'the audit writer serves this database');
