-- Plystra Core schema, version 018: resources are also found by a hash index on their id.
--
-- Every decision reads its target resource by id, and a batch reads one for each of its items. Through the
-- primary key's btree that is a descent of three or four levels with a text comparison at every step; through a
-- hash index it is one bucket page and a comparison of 32-bit hash codes (measured on a million resources: about
-- 3.8 against 5.9 to 7.3 µs a lookup through the executor). The decision's probe reads this index when it exists
-- and the primary key otherwise (a schema not yet updated), and, as a hash index holds only hash codes, takes a
-- row only when its id equals the one asked for (`plystra_pg/src/probe.rs`). The primary key stays: it is what
-- makes the id unique. The cost is one more index entry for each resource written.

CREATE INDEX resources_id_hash ON plystra.resources USING hash (id);
