-- Not a target, evidence for one: the example policy's predicate rewritten so that the planner can drive the
-- scan from the reachable groups (an array InitPlan, usable as an index condition on (space_id, group_id))
-- instead of visiting every row of the Space. Run as the table owner, as a plain WHERE clause, in the same
-- transaction shape. (The whole-Space arm of the policy is left out: these actors hold no space-scope grant.)
\set r random(0, :rlsk - 1)
\set s random(0, :spaces - 1)
\set i (100 * :r + 11) * :spaces + :s
BEGIN;
SELECT plystra.set_actor('bu_' || :i, 'bm_' || :i, 'bum_' || :i, 'bsp_' || :s);
SELECT count(*), sum(amount_cents) FROM app.invoices
 WHERE space_id = (SELECT plystra.actor_space_id())
   AND (   group_id = ANY (ARRAY(SELECT plystra.reachable_groups('invoice', 'read')))
        OR owner_member_id = (SELECT plystra.reachable_owner('invoice', 'read')));
COMMIT;
