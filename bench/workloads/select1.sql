-- Floor: the cheapest statement there is.
-- The \set is not used by the query: pgbench (15) reads the clock lazily and only re-reads it after a
-- meta-command, so a script made of one SQL statement logs most latencies as 0 µs. This keeps --log honest.
\set r 1
SELECT 1;
