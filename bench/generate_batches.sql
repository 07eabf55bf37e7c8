-- The documents bench/workloads/check_batch.sql sends to plystra.check_batch: :batches batch documents of :items
-- items each, drawn once at load time (setseed(:seed)) into bench.batches, so that the measured statement does
-- no more than fetch one by its key. Drawing 100 items in SQL inside the measured statement cost about 2.5 times
-- one check (0.85 ms against 0.32 ms at 2 clients, measured when this file was written), which the batch's
-- figure then carried and the check's did not.
--
-- Each batch is one actor drawn as in check.sql (i uniform over the members; its Space s = i % spaces, reader
-- anchor level la = 1 + t % alevels and index ka = (t / alevels) % breadth^la, t = i / spaces); each item's
-- resource and action follow check.sql's mix with the same arithmetic: 55% a resource under the actor's reader
-- anchor (a group at a random level lp >= la of the anchor's subtree), otherwise any resource of its Space; then
-- 5% a resource that does not exist, 5% one of the next Space, 5% reject, 5% approve.
--
-- Variables (bench/harness.py): spaces, breadth, depth, members, resq, gs (groups a Space), alevels, items,
-- batches, seed. Loaded after bench/generate.sql, into the schema bench the harness creates.

\set ON_ERROR_STOP 1
SET max_parallel_workers_per_gather = 0;   -- one process: random() is drawn in a fixed order
SELECT setseed(:seed);

CREATE TABLE bench.batches (k int PRIMARY KEY, doc jsonb NOT NULL);

INSERT INTO bench.batches (k, doc)
SELECT a.k,
       jsonb_build_object('actor', jsonb_build_object('user_id', 'bu_' || a.i, 'member_id', 'bm_' || a.i,
                                                      'user_member_id', 'bum_' || a.i, 'space_id', 'bsp_' || a.s),
                          'items', items.list)
FROM (
    SELECT k, i, i % :spaces AS s, 1 + (i / :spaces) % :alevels AS la,
           ((i / :spaces) / :alevels) % power(:breadth, 1 + (i / :spaces) % :alevels)::int AS ka
    FROM (SELECT k, floor(random() * :members)::int AS i FROM generate_series(0, :batches - 1) AS k) AS drawn
    ORDER BY k
) AS a,
LATERAL (
    SELECT jsonb_agg(jsonb_build_object(
               'resource_type', 'invoice',
               'resource_id', 'bres_' || CASE WHEN kind > 95 THEN j + :spaces * :resq
                                             WHEN kind > 90 THEN j - a.s + (a.s + 1) % :spaces
                                             ELSE j END,
               'action', (ARRAY['read', 'reject', 'approve'])[CASE WHEN kind > 90 THEN 1 WHEN kind > 85 THEN 2
                                                                  WHEN kind > 80 THEN 3 ELSE 1 END])
               ORDER BY n) AS list
    FROM (
        SELECT n, kind,
               (floor(random() * ((:resq - 1 - g) / :gs + 1))::int * :gs + g) * :spaces + a.s AS j
        FROM (
            SELECT n, kind,
                   CASE WHEN kind <= 55
                        THEN (power(:breadth, lp)::int - :breadth) / (:breadth - 1)
                             + a.ka * power(:breadth, lp - a.la)::int
                             + floor(random() * power(:breadth, lp - a.la))::int
                        ELSE floor(random() * :gs)::int END AS g
            FROM (
                SELECT n, 1 + floor(random() * 100)::int AS kind,
                       a.la + floor(random() * (:depth - a.la + 1))::int AS lp
                FROM generate_series(1, :items) AS n
            ) AS drawn
        ) AS placed
    ) AS item
) AS items;

ANALYZE bench.batches;
