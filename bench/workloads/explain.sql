-- plystra.explain, the full decision-time trace (audit per plystra.audit_mode).
-- The request mix (identical in check.sql, allowed.sql and explain.sql; bench/run checks that it is).
-- Variables from bench/run (pgbench -D): spaces, breadth, depth, members, resq (resources a Space), gs (groups a
-- Space), alevels (anchor levels). bench/generate.sql explains the arithmetic; in short, actor i is the User,
-- Member and binding bu_/bm_/bum_<i> of Space i % spaces, whose reader grant is anchored at level la, index ka.
\set i random(0, :members - 1)
\set s :i % :spaces
\set t :i / :spaces
\set la 1 + :t % :alevels
\set ka (:t / :alevels) % int(pow(:breadth, :la))
\set kind random(1, 100)
-- 55%: a resource under the actor's reader anchor (allowed, unless the binding or member is unusable);
-- otherwise any resource of the actor's Space (allowed only if the anchor's subtree happens to cover it).
\if :kind <= 55
\set lp :la + random(0, :depth - :la)
\set span int(pow(:breadth, :lp - :la))
\set g int((pow(:breadth, :lp) - :breadth) / (:breadth - 1)) + :ka * :span + random(0, :span - 1)
\else
\set g random(0, :gs - 1)
\endif
\set j (random(0, (:resq - 1 - :g) / :gs) * :gs + :g) * :spaces + :s
\set a 1
-- 5% a resource that does not exist, 5% one of the next Space, 5% reject (granted to nobody), 5% approve.
\if :kind > 95
\set j :j + :spaces * :resq
\elif :kind > 90
\set j :j - :s + (:s + 1) % :spaces
\elif :kind > 85
\set a 2
\elif :kind > 80
\set a 3
\endif
SELECT plystra.explain(jsonb_build_object('actor', jsonb_build_object('user_id', 'bu_' || :i, 'member_id', 'bm_' || :i, 'user_member_id', 'bum_' || :i, 'space_id', 'bsp_' || :s), 'resource_type', 'invoice', 'resource_id', 'bres_' || :j, 'action', (ARRAY['read', 'reject', 'approve'])[:a::int]));
