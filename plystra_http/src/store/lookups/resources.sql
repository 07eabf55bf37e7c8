SELECT id FROM plystra.lookup_resources($1, $2) AS id WHERE $3::text IS NULL OR id > $3 ORDER BY id LIMIT $4
