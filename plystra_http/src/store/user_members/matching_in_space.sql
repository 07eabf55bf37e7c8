SELECT id, user_id, member_id FROM plystra.user_members
WHERE space_id = $1 AND deleted_at IS NULL AND ($2::text IS NULL OR id = $2)
  AND ($3::text IS NULL OR user_id = $3) AND ($4::text IS NULL OR member_id = $4) ORDER BY id LIMIT 2
