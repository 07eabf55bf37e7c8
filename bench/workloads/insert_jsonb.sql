-- Floor for audited decisions: one autocommitted row with a small JSONB document (fsync and synchronous_commit on).
\set r random(1, 1000000000)
INSERT INTO bench.floor_insert (doc) VALUES (jsonb_build_object('request_id', 'req_' || :r, 'decision', 'allow', 'action', 'invoice.read'));
