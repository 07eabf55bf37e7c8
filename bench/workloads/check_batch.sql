-- plystra.check_batch: :items requests of one actor in one call (audit per plystra.audit_mode, set by the harness
-- through PGOPTIONS). The batch documents are drawn at load time by bench/generate_batches.sql (:batches of them in
-- bench.batches; the actor drawn as in check.sql, each item's resource and action by check.sql's mix, with the
-- same arithmetic) and one is fetched here by a random key, so that the measured statement is the batch and a
-- primary-key fetch of its document. Until extension 1.5.0 this script drew its 100 items in SQL inside the
-- measured statement (jsonb_agg over random()), which alone cost about 2.5 times one check. Reported against
-- check.sql's latency (bench/harness.py): the target is a batch of 100 items in at most 10 times one check.
\set k random(0, :batches - 1)
SELECT plystra.check_batch(doc) FROM bench.batches WHERE k = :k;
