UPDATE plystra.role_permissions AS t SET deleted_at = now(), updated_at = now()
WHERE t.id = $1 AND t.deleted_at IS NULL
  AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM plystra.roles r WHERE r.id = t.role_id AND r.space_id = $2))
