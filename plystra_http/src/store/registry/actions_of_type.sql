SELECT ra.key FROM plystra.resource_actions ra
JOIN plystra.resource_types rt ON rt.id = ra.resource_type_id
WHERE rt.key = $1 AND ($2::text IS NULL OR ra.key > $2) ORDER BY ra.key
