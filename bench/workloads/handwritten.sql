-- The same decision as plystra.check, for the same request mix, written by hand as ONE prepared SQL statement
-- over the plystra tables (what a user who knows SQL would write instead of calling the extension). It returns
-- allow and the deny code, with check's codes and their precedence (plystra_core/src/decide.rs and scope.rs,
-- over the rows plystra_pg/src/loader.rs reads). Run as the owner (it reads the tables directly). bench/run
-- checks that it agrees with plystra.check on a sample of the mix, by running this very statement.
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
SELECT d.code IS NULL AS allow, d.code AS deny_code
FROM (SELECT 'bu_' || :i AS user_id, 'bm_' || :i AS member_id, 'bum_' || :i AS user_member_id, 'bsp_' || :s AS space_id, 'invoice'::text AS resource_type, 'bres_' || :j AS resource_id, (ARRAY['read', 'reject', 'approve'])[:a::int] AS action) AS q
CROSS JOIN LATERAL (
    SELECT CASE
        WHEN u.id IS NULL OR m.id IS NULL OR um.id IS NULL OR s.id IS NULL THEN 'ACTOR_NOT_FOUND'
        WHEN u.status <> 'active' THEN 'ACTOR_USER_INACTIVE'
        WHEN m.status <> 'active' THEN 'ACTOR_MEMBER_INACTIVE'
        WHEN s.status <> 'active' THEN 'SPACE_INACTIVE'
        WHEN um.status <> 'active' THEN 'USER_MEMBER_REVOKED'
        WHEN um.expires_at < statement_timestamp() THEN 'USER_MEMBER_EXPIRED'
        WHEN rt.id IS NULL THEN 'INVALID_RESOURCE_TYPE'
        WHEN NOT EXISTS (SELECT FROM plystra.resource_actions ra WHERE ra.resource_type_id = rt.id AND ra.key = q.action)
            THEN 'INVALID_RESOURCE_ACTION'
        WHEN r.id IS NULL THEN 'RESOURCE_NOT_FOUND'
        WHEN um.user_id <> u.id OR um.member_id <> m.id OR um.space_id <> q.space_id OR m.space_id <> q.space_id
          OR r.space_id <> q.space_id OR g.space_id <> q.space_id OR c.cross_space THEN 'CROSS_SPACE_VIOLATION'
        WHEN c.n = 0 THEN 'NO_MATCHING_PERMISSION'
        WHEN c.covered THEN NULL
        ELSE c.first_code
    END AS code
    FROM (SELECT) AS one
    LEFT JOIN plystra.users u ON u.id = q.user_id AND u.deleted_at IS NULL
    LEFT JOIN plystra.members m ON m.id = q.member_id AND m.deleted_at IS NULL
    LEFT JOIN plystra.user_members um ON um.id = q.user_member_id AND um.deleted_at IS NULL
    LEFT JOIN plystra.spaces s ON s.id = q.space_id AND s.deleted_at IS NULL
    LEFT JOIN plystra.resource_types rt ON rt.key = q.resource_type
    LEFT JOIN plystra.resources r ON r.id = q.resource_id AND r.resource_type = q.resource_type
                                 AND r.deleted_at IS NULL AND r.status = 'active'
    LEFT JOIN plystra.groups g ON g.id = r.group_id AND g.deleted_at IS NULL AND g.status = 'active'
    -- The candidate grants, folded: how many, whether one is cross-Space, whether one covers the target, and
    -- the first one's deny code (check's candidate order).
    LEFT JOIN LATERAL (
        SELECT count(*) AS n,
               coalesce(bool_or(ro.space_id <> q.space_id OR mr.space_id <> q.space_id
                                OR coalesce(ag.space_id <> q.space_id, false)), false) AS cross_space,
               coalesce(bool_or(CASE p.scope
                   WHEN 'self' THEN coalesce(r.owner_member_id = m.id, false)
                   WHEN 'group' THEN ag.id IS NOT NULL AND g.id = ag.id
                   WHEN 'group_tree' THEN ag.id IS NOT NULL AND g.id IS NOT NULL
                       AND (g.path = ag.path OR (g.path ~>=~ (ag.path || '.') AND g.path ~<~ (ag.path || '/')))
                   WHEN 'space' THEN r.space_id = m.space_id
                   ELSE false END), false) AS covered,
               (array_agg(CASE
                   WHEN p.scope IN ('group', 'group_tree') AND ag.id IS NULL THEN 'SCOPE_ANCHOR_MISSING'
                   WHEN p.scope IN ('group', 'group_tree') AND g.id IS NULL THEN 'TARGET_GROUP_MISSING'
                   WHEN p.scope = 'global' THEN 'GLOBAL_SCOPE_DISABLED'
                   ELSE 'SCOPE_OUT_OF_BOUNDS' END
                   ORDER BY ro.key, p.resource, p.action, p.scope, mr.id))[1] AS first_code
        FROM plystra.member_roles mr
        JOIN plystra.roles ro ON ro.id = mr.role_id AND ro.status = 'active' AND ro.deleted_at IS NULL
        JOIN plystra.role_permissions rp ON rp.role_id = ro.id AND rp.deleted_at IS NULL
        JOIN plystra.permissions p ON p.id = rp.permission_id AND p.status = 'active' AND p.deleted_at IS NULL
                                   AND p.resource = q.resource_type AND p.action = q.action
        LEFT JOIN plystra.groups ag ON ag.id = mr.scope_anchor_group_id AND ag.deleted_at IS NULL
                                   AND ag.status = 'active'
        WHERE mr.member_id = q.member_id AND mr.status = 'active' AND mr.deleted_at IS NULL
    ) AS c ON true
) AS d;
