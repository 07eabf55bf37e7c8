-- plystra.check_batch: :items requests of one actor in one call (audit per plystra.audit_mode, set by the harness
-- through PGOPTIONS). The actor is drawn as in check.sql; each item's resource and action follow check.sql's mix
-- (the same arithmetic, drawn in SQL with random() because a pgbench script cannot loop): 55% a resource under the
-- actor's reader anchor, otherwise any resource of its Space; 5% a resource that does not exist, 5% one of the
-- next Space, 5% reject, 5% approve. Reported against check.sql's latency (bench/harness.py): the target is a
-- batch of 100 items in at most 10 times one check.
\set i random(0, :members - 1)
\set s :i % :spaces
\set t :i / :spaces
\set la 1 + :t % :alevels
\set ka (:t / :alevels) % int(pow(:breadth, :la))
SELECT plystra.check_batch(jsonb_build_object('actor', jsonb_build_object('user_id', 'bu_' || :i, 'member_id', 'bm_' || :i, 'user_member_id', 'bum_' || :i, 'space_id', 'bsp_' || :s), 'items', (SELECT jsonb_agg(jsonb_build_object('resource_type', 'invoice', 'resource_id', 'bres_' || CASE WHEN kind > 95 THEN j + sp * resq WHEN kind > 90 THEN j - s + (s + 1) % sp ELSE j END, 'action', (ARRAY['read', 'reject', 'approve'])[CASE WHEN kind > 90 THEN 1 WHEN kind > 85 THEN 2 WHEN kind > 80 THEN 3 ELSE 1 END])) FROM (SELECT kind, sp, resq, s, (floor(random() * ((resq - 1 - g) / gs + 1))::int * gs + g) * sp + s AS j FROM (SELECT kind, sp, resq, s, gs, CASE WHEN kind <= 55 THEN (power(b, lp)::int - b) / (b - 1) + ka * power(b, lp - la)::int + floor(random() * power(b, lp - la))::int ELSE floor(random() * gs)::int END AS g FROM (SELECT 1 + floor(random() * 100)::int AS kind, v.la + floor(random() * (v.depth - v.la + 1))::int AS lp, v.* FROM (SELECT :spaces::int AS sp, :resq::int AS resq, :s::int AS s, :gs::int AS gs, :breadth::int AS b, :depth::int AS depth, :la::int AS la, :ka::int AS ka) AS v, generate_series(1, :items::int)) AS drawn) AS placed) AS item)));
