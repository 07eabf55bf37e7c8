-- The per-statement memo of the actor's reach (plystra_pg/src/statement_cache.rs): a policy's lookups share
-- one context load, and the memo never answers from a state it did not see. REPEATABLE READ keeps the
-- snapshot's transaction numbers fixed, so each test below isolates one part of the memo's key: the command
-- id (a write), the subtransaction (a rolled-back block) and the statement's clock (an expiry).
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS pgtap;
BEGIN ISOLATION LEVEL REPEATABLE READ;
\ir ../../sql/examples/invoices_rls.sql
SELECT plan(4);
SELECT plystra.set_actor('user_alice', 'member_finance_reviewer', 'um_alice_finance_reviewer', 'space_acme');

-- The reads are plain WHERE clauses as the owner: the function is called per row, so every call after the
-- first is a memo hit within its statement.
CREATE FUNCTION pg_temp.reachable_rows() RETURNS bigint LANGUAGE sql STABLE AS $$
    SELECT count(*) FROM app.invoices WHERE group_id = ANY (plystra.reachable_group_ids('invoice', 'read'))
$$;

-- One top-level statement (one statement timestamp), a write between two reads: the command id differs.
CREATE FUNCTION pg_temp.before_and_after_revoke() RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE before bigint;
BEGIN
    before := pg_temp.reachable_rows();
    UPDATE plystra.user_members SET status = 'revoked' WHERE id = 'um_alice_finance_reviewer';
    RETURN ARRAY[before, pg_temp.reachable_rows()];
END $$;
SAVEPOINT s;
SELECT is(pg_temp.before_and_after_revoke(), ARRAY[4, 0]::bigint[],
          'within one statement, a revoke between two reads is seen by the second (command id)');
ROLLBACK TO SAVEPOINT s;

-- A block that revokes, reads, then fails: the read after it must not reuse the failed block's answer
-- (same statement, same snapshot numbers, same command id; only the subtransaction differs).
CREATE FUNCTION pg_temp.around_a_failed_revoke() RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE inside bigint;
BEGIN
    BEGIN
        UPDATE plystra.user_members SET status = 'revoked' WHERE id = 'um_alice_finance_reviewer';
        inside := pg_temp.reachable_rows();
        RAISE EXCEPTION 'undo';
    EXCEPTION WHEN raise_exception THEN
        NULL;
    END;
    RETURN ARRAY[inside, pg_temp.reachable_rows()];
END $$;
SELECT is(pg_temp.around_a_failed_revoke(), ARRAY[0, 4]::bigint[],
          'after a rolled-back block the revoke is undone for the memo too (subtransaction)');

-- A binding that expires between two statements of the same snapshot: the clock differs.
SAVEPOINT s;
UPDATE plystra.user_members SET expires_at = clock_timestamp() + interval '1 second'
 WHERE id = 'um_alice_finance_reviewer';
-- No write between the two reads (pgTAP's is() writes its results, so they are compared afterwards).
SELECT pg_temp.reachable_rows() AS before_expiry \gset
SELECT pg_sleep(1.2);
SELECT pg_temp.reachable_rows() AS after_expiry \gset
ROLLBACK TO SAVEPOINT s;
-- Compared after the rollback: pgTAP keeps its test counter in a table, so a test inside a rolled-back
-- savepoint would be forgotten by finish().
SELECT is(:before_expiry::bigint, 4::bigint, 'before its expiry the binding reaches the Finance invoices');
SELECT is(:after_expiry::bigint, 0::bigint, 'after its expiry it reaches nothing (statement clock)');

SELECT * FROM finish();
ROLLBACK;
